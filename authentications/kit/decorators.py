"""View decorators for the public pages (landing, callback, result pages).

They are opened by people outside the organisation, from email links. `public_page`: nothing
is cached, no Referer leaks the URL (which may hold a link token), and the Content Security
Policy allows no script and no third-party resource at all. `rate_limited`: per-client-IP
limits kept in Django's cache, so a public link or callback cannot become a way to flood
Microsoft's token endpoint (and get our app throttled) or to guess states. Fixed windows
are enough for that.
"""

import time
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from authentications.kit.counters import UNAVAILABLE_RETRY_AFTER, CountingUnavailable, hit


def content_security_policy():
    # form-action also governs where a form's redirect may go: the sign-in button posts
    # to us and we redirect to Microsoft, so Microsoft's host must be listed.
    authority = urlsplit(settings.BC_AUTHORITY_HOST)
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action 'self' {authority.scheme}://{authority.netloc}"
    )


def public_page(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        response["Content-Security-Policy"] = content_security_policy()
        # A page may relax this to same-origin for its own form (see links.views.authorize).
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapped


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
    return hit(f"bc-rate:{scope}:{key}:{window}", period) <= limit


def rate_limited(scope, *, setting="BC_PUBLIC_RATE_LIMIT"):
    """Limit requests per client IP to the rate in `setting` ("30/minute"; empty: no limit)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            rate = getattr(settings, setting)
            try:
                allowed = not rate or allow(scope, client_ip(request), rate)
            except CountingUnavailable:  # Nothing counted: nothing let through.
                response = render(request, "authentications/unavailable.html", status=503)
                response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
                return response
            if not allowed:
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
