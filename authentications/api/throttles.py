"""Rate limits per API key, kept in the default cache so every worker counts together.

The default cache is the database's (`createcachetable`) unless CACHE_URL names Redis: a
per-process cache would let each gunicorn worker allow the whole rate again. A key's own
rate (set in the admin) wins over BC_API_RATE_LIMIT.

One counter per key and window (a fixed window, e.g. this minute): O(1) per request in the
cache, where DRF's sliding window stores every request's time and rewrites that list on
each call. The price is the usual one of fixed windows: up to twice the rate across the
boundary of two windows.
"""

import re
import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from authentications.api.models import ApiKey
from authentications.kit.counters import UNAVAILABLE_RETRY_AFTER, CountingUnavailable, hit

_RATE = re.compile(r"[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|d|day)")


def valid_rate(rate: str) -> bool:
    return _RATE.fullmatch(rate.strip()) is not None


def key_rate(key: ApiKey) -> tuple[int, int]:
    """(requests, seconds) for `key`: its own rate, else BC_API_RATE_LIMIT."""
    rate = key.rate_limit if valid_rate(key.rate_limit) else settings.BC_API_RATE_LIMIT
    return SimpleRateThrottle.parse_rate(None, rate.strip())


class ApiKeyRateThrottle(BaseThrottle):
    """A DRF throttle: counts the key's requests in the current window, refuses past its rate."""

    timer = staticmethod(time.time)

    def allow_request(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # Refused anyway (401), before any work is done.
        allowed, seconds = key_rate(key)
        now = self.timer()
        window = int(now // seconds)
        self.retry_after = (window + 1) * seconds - now
        try:
            count = hit(f"bcconnect:api-rate:{key.prefix}:{seconds}:{window}", seconds)
        except CountingUnavailable:
            # Imported here: problems imports DRF's views, whose settings import this module.
            from authentications.api import problems

            raise problems.Problem(
                503,
                "rate_limit_unavailable",
                "The key's requests could not be counted (the rate limit's cache did not "
                "answer), so nothing was done; try again shortly.",
                headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
            ) from None
        return count <= allowed

    def wait(self):
        return self.retry_after
