"""Errors as RFC 9457 problem details (`application/problem+json`) with a stable `code`.

Callers branch on `code`, never on the wording of `detail`. Nothing here ever quotes a key,
a token or a request body: details come from our own messages and BC's error text.
"""

import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from authentications.api.keys import KEY_REFUSED
from bcconnect.client import BusinessCentralRequestRefused

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
# DRF's own codes, renamed where ours say more.
_CODES = {
    "not_authenticated": "api_key_invalid",
    "authentication_failed": "api_key_invalid",
    "permission_denied": "scope_missing",
    "throttled": "rate_limited",
    "parse_error": "bad_json",
    "invalid": "invalid_input",
}


class Problem(exceptions.APIException):
    """An answer other than success, with its status, code and extra members."""

    def __init__(self, status, code, detail, *, headers=None, **extra):
        super().__init__(detail=detail, code=code)
        self.status_code, self.problem_code = status, code
        self.headers, self.extra = headers or {}, extra


def body(status, code, detail, **extra):
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def response(status, code, detail, *, headers=None, **extra):
    answer = Response(body(status, code, detail, **extra), status=status, headers=headers)
    answer.content_type = CONTENT_TYPE
    return answer


def exception_handler(exc, context):
    """DRF's handler, answered as problem details; an unexpected error is a logged 500."""
    if isinstance(exc, Problem):
        return response(
            exc.status_code, exc.problem_code, exc.detail, headers=exc.headers, **exc.extra
        )
    answer = drf_exception_handler(exc, context)
    if answer is None:
        logger.error("API error in %s", type(context.get("view")).__name__, exc_info=exc)
        return response(500, "internal_error", "Something went wrong on our side.")
    code, detail, extra = _described(exc)
    headers = {
        k: v for k, v in answer.headers.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")
    }
    return response(answer.status_code, code, detail, headers=headers, **extra)


def _described(exc):
    if isinstance(exc, exceptions.ValidationError):
        return (
            "invalid_input",
            "The request's input is not valid; see errors.",
            {"errors": exc.detail},
        )
    if isinstance(exc, exceptions.NotAuthenticated):
        return "api_key_invalid", KEY_REFUSED, {}
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        return _CODES.get(code, code), str(exc.detail), {}
    if isinstance(exc, DjangoPermissionDenied):
        return "forbidden", "You may not do this.", {}
    return "not_found", "Not found.", {}  # Django's Http404, which DRF turns into a 404.


ENTRA_RETRY_AFTER = 30  # Seconds a caller waits after Microsoft could not be reached.


def from_token_error(err):
    """The answer for a token that could not be had: a person, Microsoft, or nothing to do.

    A connection that needs a person is a 409 with its reason code and no link: an
    Authorization URL signs in whoever follows it, so it is handed out only in the admin.
    """
    if err.code == "not_found":
        return Problem(404, "not_found", "Not found.")
    if err.needs_sign_in:
        return Problem(
            409,
            "needs_sign_in",
            "This connection needs a person: sign in again, or fix its credentials, in "
            "bcconnect's admin.",
            reason=err.code,
        )
    if err.transient:
        return Problem(
            503,
            "entra_unavailable",
            err.message,
            headers={"Retry-After": str(ENTRA_RETRY_AFTER)},
            reason=err.code,
        )
    return Problem(502, "entra_refused", err.message, reason=err.code)


# The client's refusals: what the caller asked for cannot be sent (nothing was).
_REFUSALS = {
    "ETag_Required": (428, "etag_required"),
    "Header_Refused": (400, "header_refused"),
    "Method_Refused": (405, "method_not_allowed"),
}


def from_bc_error(err):
    """The answer when BC could not be asked or did not answer (its own answers pass as is).

    A request the client refused to send is the caller's (4xx); a network failure is a
    502, or a 504 when BC did not answer in time; anything else BC did is a 502.
    """
    if isinstance(err, BusinessCentralRequestRefused):
        status, code = _REFUSALS.get(err.code, (400, "path_refused"))
        return Problem(status, code, f"{err.message} Nothing was sent.")
    if err.status is None:
        timed_out = "Timeout" in err.message
        status, code = (504, "bc_timeout") if timed_out else (502, "bc_unreachable")
        return Problem(status, code, err.message, headers=_retry_after(err))
    return Problem(502, "bc_error", err.message, headers=_retry_after(err), reason=err.code)


def _retry_after(err):
    delay = getattr(err, "retry_after", None)
    return {"Retry-After": str(max(1, round(delay)))} if delay else {}
