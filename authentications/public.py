"""Headers for the public pages (landing, callback, result pages).

They are opened by people outside the organisation, from email links: nothing is cached,
no Referer leaks the URL (which may hold a link token), and the Content Security Policy
allows no script and no third-party resource at all.
"""

from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.cache import add_never_cache_headers


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
        # A page may relax this to same-origin for its own form (see views.authorize).
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapped
