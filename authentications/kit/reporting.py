"""Error reports (the emails Django sends ADMINS) and request logs without secrets.

Django hides POST values only where a view says so and never hides GET values; an OAuth
answer carries its `code` and `state` in either. The Authorization URL carries its link
token in the path, which Django logs for every 4xx and 5xx answer and mails on a 5xx; and
only the session cookie is hidden, not our binding cookies. These classes scrub them all.
"""

import copy
import functools
import html
import logging
import re

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, QueryDict
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.regex_helper import _lazy_re_compile
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

SENSITIVE_PARAMETERS = frozenset(
    {
        "code",
        "state",
        "client_secret",
        "access_token",
        "refresh_token",
        "id_token",
        "code_verifier",
        "client_info",
        "session_state",
        "csrfmiddlewaretoken",
    }
)
SUBSTITUTE = SafeExceptionReporterFilter.cleansed_substitute
# Shorter values are too common to replace everywhere in a report (a cookie "1", "en").
MIN_SECRET_LENGTH = 8
_SENSITIVE_QUERY_VALUE = re.compile(
    r"(?:^|(?<=[?&;]))(" + "|".join(sorted(SENSITIVE_PARAMETERS)) + r")=[^&;#\s\"'<>]*",
    flags=re.IGNORECASE,
)


def scrub(params, substitute=SUBSTITUTE):
    """A copy of a QueryDict (or dict) with sensitive values replaced."""
    cleaned = params.copy()
    for key in list(cleaned.keys()):
        if key.lower() in SENSITIVE_PARAMETERS:
            cleaned[key] = substitute
    return cleaned


def _link_token_pattern():
    """The landing page's path with its token as group 1, or None without that URL."""
    return _link_token_pattern_for(settings.ROOT_URLCONF, get_urlconf(), get_script_prefix())


@functools.lru_cache(maxsize=16)
def _link_token_pattern_for(root_urlconf, urlconf, script_prefix):
    """Made once per URL configuration: a log record asks it for each string it redacts
    (every META value), and a reverse() each time was half the cost of logging a 401."""
    marker = "LINK-TOKEN"
    try:
        url = reverse("authentications:authorize", args=[marker])
    except NoReverseMatch:
        return None
    # Logs show both request.path and path_info: match without the script prefix.
    prefix = url[len(script_prefix) - 1 :].split(marker)[0]
    return re.compile(re.escape(prefix) + r"([^/\s?#\"'<>]+)")


def link_tokens_in(text):
    pattern = _link_token_pattern()
    return set(pattern.findall(text)) if pattern else set()


def redact_text(text):
    """`text` with link tokens in landing paths and OAuth values in query strings hidden."""
    pattern = _link_token_pattern()
    if pattern:
        text = pattern.sub(lambda match: match.group(0).replace(match.group(1), SUBSTITUTE), text)
    return _SENSITIVE_QUERY_VALUE.sub(lambda match: f"{match.group(1)}={SUBSTITUTE}", text)


def request_secrets(request):
    """Values of this request that no log or report may show: link tokens, cookie values."""
    if request is None:
        return set()
    found = set(getattr(request, "redacted_values", ()))
    found |= link_tokens_in(getattr(request, "path", ""))
    found |= set(getattr(request, "COOKIES", {}).values())
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH and value != SUBSTITUTE}


def redact_values(text, values):
    """`text` with every one of `values` (raw or HTML-escaped) replaced."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, SUBSTITUTE).replace(html.escape(value), SUBSTITUTE)
    return text


def _safe_meta(meta):
    return {
        key: SUBSTITUTE
        if "COOKIE" in key.upper()  # HTTP_COOKIE, and CSRF_COOKIE (the CSRF secret).
        else redact_text(value)
        if isinstance(value, str)
        else value
        for key, value in meta.items()
    }


def scrubbed_request(request):
    """A copy of `request` safe to log: no link token, cookie value or OAuth value in it."""
    if getattr(request, "redacted_values", None) is not None:
        return request
    clone = copy.copy(request)
    clone.redacted_values = frozenset(request_secrets(request))
    clone.path = redact_text(request.path)
    clone.path_info = redact_text(request.path_info)
    clone.META = _safe_meta(request.META)
    if hasattr(request, "environ"):  # WSGIRequest keeps META under this name too.
        clone.environ = clone.META
    clone.COOKIES = dict.fromkeys(request.COOKIES, SUBSTITUTE)
    clone.GET = _scrubbed_query(request)
    clone.resolver_match = None  # Its kwargs hold the link token.
    return clone


def _scrubbed_query(request):
    try:
        return scrub(request.GET)
    except SuspiciousOperation:  # Too many fields, the very thing being reported.
        return QueryDict()


class RedactRequestSecrets(logging.Filter):
    """For django.request, django.security.csrf and django.server: their records name the
    path (which may hold a link token) or the request line, and carry the request."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # A malformed record: logging reports it later.
            pass
        else:  # Redact the message as handlers will show it, whatever its template was.
            record.msg, record.args = redact_text(message), ()
        request = getattr(record, "request", None)
        if isinstance(request, HttpRequest):
            record.request = scrubbed_request(request)
        return True


class SecretScrubbingFilter(SafeExceptionReporterFilter):
    hidden_settings = _lazy_re_compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|QUERY_STRING|DATABASE_URL|"
        "EMAIL_URL|FERNET",
        flags=re.I,
    )

    def get_post_parameters(self, request):
        if request is None:
            return {}
        return scrub(super().get_post_parameters(request))

    def get_safe_request_meta(self, request):
        return _safe_meta(super().get_safe_request_meta(request))

    def get_safe_cookies(self, request):
        """Every cookie is ours (session, CSRF, sign-in binding): show names only."""
        return dict.fromkeys(getattr(request, "COOKIES", {}), SUBSTITUTE)

    def cleanse_special_types(self, request, value):
        if isinstance(value, HttpRequest):  # Its repr shows the query string.
            return f"<{type(value).__name__}: {value.method} {redact_text(value.path)!r}>"
        value = super().cleanse_special_types(request, value)
        if isinstance(value, dict) or hasattr(value, "getlist"):
            try:
                return scrub(value)
            except (AttributeError, TypeError):
                return value
        return value


class SecretScrubbingReporter(ExceptionReporter):
    def __init__(self, request, *args, **kwargs):
        # Report from a scrubbed copy: Django's report reads the request in many places
        # (and its query string again, which raises when it has too many fields).
        request = scrubbed_request(request) if request is not None else None
        super().__init__(request, *args, **kwargs)

    def get_traceback_data(self):
        data = super().get_traceback_data()
        if self.request is not None:
            data["request_GET_items"] = self.request.GET.items()
            uri = data["request_insecure_uri"].split("?", 1)[0]
            data["request_insecure_uri"] = redact_text(uri)
        return data

    def get_traceback_text(self):
        # Frame variables may hold the token or a cookie anywhere (`token`, `cookies`).
        return redact_values(super().get_traceback_text(), request_secrets(self.request))

    def get_traceback_html(self):
        return redact_values(super().get_traceback_html(), request_secrets(self.request))
