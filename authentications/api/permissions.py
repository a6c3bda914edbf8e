"""Who may call: a usable API key (authentication), with the scope the call needs.

A missing, unknown, revoked or expired key gets one and the same 401, so a caller cannot
tell which keys exist; a key without the scope gets 403; an authentication or endpoint the
key may not use is a 404 like one that does not exist (the views' querysets see to that).
"""

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from authentications.api import keys
from authentications.api.audit import client_address
from authentications.api.keys import KEY_REFUSED
from authentications.api.models import ApiKey


class KeyRefused(exceptions.AuthenticationFailed):
    default_detail = KEY_REFUSED
    default_code = "api_key_invalid"


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <key>`: one indexed read by prefix and a SHA-512 compare.

    A view that names an authentication (`authentication_to_read`) has it read in the same
    statement: the key check of a token hand-out is then its only read.
    """

    def authenticate(self, request):
        scheme, _, plaintext = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != keys.SCHEME.lower():
            raise KeyRefused()
        view = (getattr(request, "parser_context", None) or {}).get("view")
        along = view.authentication_to_read() if hasattr(view, "authentication_to_read") else None
        key = keys.find_key(plaintext.strip(), authentication=along)
        if key is None:
            raise KeyRefused()
        key.note_use(client_address(request))
        return (None, key)

    def authenticate_header(self, request):
        return keys.SCHEME


class HasApiKey(BasePermission):
    """The request came with a usable key (DRF answers 401 otherwise)."""

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiKey)


class ScopeMissing(exceptions.PermissionDenied):
    default_code = "scope_missing"


class HasScopes(BasePermission):
    """The key holds every scope `view.required_scopes(request)` names."""

    def has_permission(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return False
        missing = [s for s in view.required_scopes(request) if not request.auth.has_scope(s)]
        if missing:
            raise ScopeMissing(f"This API key lacks the scope {' and '.join(missing)}.")
        return True
