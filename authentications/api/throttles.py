"""Rate limits per API key, kept in the default cache so every worker counts together.

The default cache is the database's (`createcachetable`) unless CACHE_URL names Redis: a
per-process cache would let each gunicorn worker allow the whole rate again. A key's own
rate (set in the admin) wins over BC_API_RATE_LIMIT.
"""

import re

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from authentications.api.models import ApiKey

_RATE = re.compile(r"[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|d|day)")


def valid_rate(rate: str) -> bool:
    return _RATE.fullmatch(rate.strip()) is not None


class ApiKeyRateThrottle(SimpleRateThrottle):
    """DRF's sliding-window throttle, keyed by the key's prefix, at the key's own rate."""

    scope = "api_key"

    def __init__(self):
        """The rate depends on the key: it is read in `allow_request`, not here."""

    def allow_request(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # Refused anyway (401), before any work is done.
        self.rate = key.rate_limit if valid_rate(key.rate_limit) else settings.BC_API_RATE_LIMIT
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return f"bcconnect:api-rate:{request.auth.prefix}"
