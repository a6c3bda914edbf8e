"""Per-client-IP rate limits for the public pages, kept in Django's cache.

A public link or callback must not become a way to flood Microsoft's token endpoint (and
get our app throttled) or to guess states. Fixed windows are enough for that.
"""

import time
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render


def client_ip(request):
    """REMOTE_ADDR, or the last hop of a header the operator's proxy sets."""
    header = settings.BC_CLIENT_IP_HEADER
    if header and request.META.get(header):
        return request.META[header].split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "unknown")


def _parse(rate):
    count, _, period = rate.partition("/")
    seconds = {"second": 1, "minute": 60, "hour": 3600}[period.strip() or "minute"]
    return int(count), seconds


def allow(scope, key, rate):
    """Count one hit; False once `rate` ("30/minute") is used up in the current window."""
    limit, period = _parse(rate)
    window = int(time.time() // period)
    cache_key = f"bc-rate:{scope}:{key}:{window}"
    cache.add(cache_key, 0, timeout=period + 1)
    try:
        hits = cache.incr(cache_key)
    except ValueError:  # Evicted between add and incr: start again.
        cache.set(cache_key, 1, timeout=period + 1)
        hits = 1
    return hits <= limit


def rate_limited(scope):
    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            rate = settings.BC_PUBLIC_RATE_LIMIT
            if rate and not allow(scope, client_ip(request), rate):
                response = render(
                    request,
                    "authentications/rate_limited.html",
                    status=429,
                )
                response["Retry-After"] = str(_parse(rate)[1])
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
