"""Error reports (the emails Django sends ADMINS on a 500) without OAuth secrets.

Django hides POST values only where a view says so and never hides GET values; an OAuth
answer carries its `code` and `state` in either. These classes scrub them everywhere.
"""

import re

from django.http import HttpRequest
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


def scrub(params, substitute=SafeExceptionReporterFilter.cleansed_substitute):
    """A copy of a QueryDict (or dict) with sensitive values replaced."""
    cleaned = params.copy()
    for key in list(cleaned.keys()):
        if key.lower() in SENSITIVE_PARAMETERS:
            cleaned[key] = substitute
    return cleaned


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

    def cleanse_special_types(self, request, value):
        if isinstance(value, HttpRequest):  # Its repr shows the query string.
            return f"<{type(value).__name__}: {value.method} {value.path!r}>"
        value = super().cleanse_special_types(request, value)
        if isinstance(value, dict) or hasattr(value, "getlist"):
            try:
                return scrub(value)
            except (AttributeError, TypeError):
                return value
        return value


class SecretScrubbingReporter(ExceptionReporter):
    def get_traceback_data(self):
        data = super().get_traceback_data()
        if self.request is not None:
            data["request_GET_items"] = scrub(self.request.GET).items()
            data["request_insecure_uri"] = data["request_insecure_uri"].split("?", 1)[0]
        return data
