"""What the OpenAPI schema says beyond the views: the key scheme and every error answer.

Errors are documented as `application/problem+json` for every status an operation can
answer, so a client generated from the schema (and Schemathesis) knows them all.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from authentications.api.serializers import ProblemSerializer

PROBLEM = "application/problem+json"
WHY = {
    400: "The request is not valid (see `errors`), or the proxy refused its path.",
    401: "Missing, unknown, revoked or expired API key (one answer for all).",
    403: "The key lacks the scope this call needs (`scope_missing`).",
    404: "No such authentication or endpoint, or not one this key may use.",
    409: "The connection needs a person to sign in again (`needs_sign_in`).",
    413: "The body is larger than bcconnect accepts (DATA_UPLOAD_MAX_MEMORY_SIZE).",
    429: "Past the key's rate limit: wait `Retry-After` seconds.",
    502: "Microsoft or Business Central refused or failed.",
    503: "Microsoft or Business Central is unavailable, or the rate limit's cache did not "
    "answer (`rate_limit_unavailable`, nothing was done): see `Retry-After`.",
    504: "Business Central did not answer in time.",
    405: "This method is not proxied (GET, POST, PATCH, PUT and DELETE are).",
    428: "A PATCH, PUT or DELETE needs If-Match (the entity's ETag, or * to overwrite).",
}
ALWAYS = (401, 403, 404, 429, 503)  # 503: the rate limit counts every call with a key.
PROXY_ANSWER = (
    "Business Central's answer, as BC sent it: its status (any), body and the headers that "
    "matter (Content-Type, ETag, Retry-After, OData-Version, Preference-Applied, "
    "request-id; Location, OData-EntityId and @odata.nextLink rewritten to this proxy)."
)


def problems(*statuses):
    """The problem responses of an operation: the ones every call may get, and `statuses`."""
    codes = sorted(set(ALWAYS) | set(statuses))
    return {
        (code, PROBLEM): OpenApiResponse(response=ProblemSerializer, description=WHY[code])
        for code in codes
    }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "authentications.api.permissions.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: the key shown once when it was made.",
        }
