"""The user-impersonation sign-in: start it, finish it, store what Microsoft granted.

Both the admin and the public Authorization URL call these functions; the callback view
only hands them the POSTed answer and the browser's cookies. An administrator's consent
for a service-to-service app (`signin.consent`) goes through the same pending request,
state and browser binding, and is stored by the same fenced write.
"""

import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from authentications.connections import credentials, oauth
from authentications.connections.models import (
    Authentication,
    AuthorizationRequest,
    Event,
    new_link_nonce,
)
from authentications.connections.oauth import ConsentError
from authentications.kit.fields import Undecryptable
from authentications.signin import consent as admin_consent
from authentications.signin import emails
from bcconnect.errors import BcconnectError

logger = logging.getLogger(__name__)

MAX_STATE_LENGTH = 128
# Every state this site makes is secrets.token_urlsafe: anything else is no sign-in of ours
# (and a NUL byte would make PostgreSQL refuse the lookup with an error).
STATE_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")


class SignInError(BcconnectError):
    """A sign-in that did not complete: refused by us, or by Entra (a ConsentError, wrapped).

    `auth_request` is the pending sign-in once this browser proved it started it, else
    None: whoever presents a state may have only read it (history, a proxy log), so the
    page then names neither the connection nor its admin URL.
    """

    def __init__(self, message, *, code, auth_request=None, transient=None, entra_error=None):
        super().__init__(message, code=code, transient=transient)
        self.auth_request = auth_request
        self.entra_error = entra_error

    @classmethod
    def from_entra(cls, err, auth_request):
        """Entra's refusal of `auth_request`, keeping its code, AADSTS number and retry flag."""
        return cls(
            err.message,
            code=err.code,
            auth_request=auth_request,
            transient=err.transient,
            entra_error=err,
        )

    @property
    def aadsts(self):
        return self.entra_error.aadsts if self.entra_error else None

    @property
    def display_code(self):
        return self.entra_error.display_code if self.entra_error else self.code


@dataclass(frozen=True)
class SignInStart:
    authorize_url: str = field(repr=False)
    cookie_name: str
    cookie_value: str = field(repr=False)
    request: AuthorizationRequest


def _digest(value):
    return hashlib.sha256(value.encode()).hexdigest()


def binding_cookie_name(state):
    """One cookie per sign-in, so two tabs signing in at once do not undo each other."""
    return "bc_signin_" + _digest(state)[:16]


def start_sign_in(
    authentication: Authentication,
    *,
    via: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> SignInStart:
    """Create a pending sign-in bound to this browser; raises ConsentError."""
    _require_credential(authentication)
    flow = oauth.start_auth_code_flow(
        authentication, login_hint=login_hint(authentication.expected_user)
    )
    return _start(authentication, flow, flow["auth_uri"], via=via, user=user)


def start_admin_consent(authentication, *, via, user=None):
    """Create a pending admin consent bound to this browser, like a sign-in.

    Entra's admin consent has no code to redeem, hence no PKCE: the state is all there is.
    """
    _require_credential(authentication)
    state = secrets.token_urlsafe(32)
    url = oauth.admin_consent_url(authentication, state=state)
    return _start(
        authentication,
        {"state": state},
        url,
        via=via,
        user=user,
        purpose=AuthorizationRequest.Purpose.ADMIN_CONSENT,
    )


def _require_credential(authentication):
    """Refuse to send anyone to Microsoft for a connection that cannot redeem the answer."""
    missing = credentials.missing(authentication)
    if missing:
        raise ConsentError(missing, code="no_credential")


def _start(authentication, flow, url, *, via, user, purpose=AuthorizationRequest.Purpose.SIGN_IN):
    binding = secrets.token_urlsafe(32)
    request = AuthorizationRequest.objects.create(
        authentication=authentication,
        state=flow["state"],
        flow=json.dumps(flow),
        binding_hash=_digest(binding),
        started_via=via,
        purpose=purpose,
        started_by=user if user and user.is_authenticated else None,
        link_nonce=authentication.link_nonce,
        generation=authentication.generation,
        expires_at=timezone.now() + timedelta(minutes=settings.BC_SIGN_IN_TTL_MINUTES),
    )
    actor = user.get_username() if user and user.is_authenticated else ""
    what = "Admin consent" if _is_admin_consent(request) else "Sign-in"
    authentication.record(
        Event.Kind.SIGN_IN_STARTED,
        actor=actor,
        detail=f"{what} started from the {_started_from(request)}.",
    )
    return SignInStart(url, binding_cookie_name(flow["state"]), binding, request)


def _is_admin_consent(request):
    return request.purpose == AuthorizationRequest.Purpose.ADMIN_CONSENT


def _started_from(request):
    """Where it started, as staff name it: the Admin, the Authorization or Admin consent URL."""
    if _is_admin_consent(request) and _via_link(request):
        return "Admin consent URL"
    return request.get_started_via_display()


def set_binding_cookie(response, start):
    # SameSite=None: Microsoft's answer is a cross-site POST, on which Lax cookies are
    # withheld. Secure is required with None (Chrome accepts it on http://localhost too).
    response.set_cookie(
        start.cookie_name,
        start.cookie_value,
        max_age=settings.BC_SIGN_IN_TTL_MINUTES * 60,
        path=reverse("authentications:callback"),
        secure=True,
        httponly=True,
        samesite="None",
    )
    return response


def clear_binding_cookie(response, state):
    if state and len(state) <= MAX_STATE_LENGTH:
        response.delete_cookie(
            binding_cookie_name(state), path=reverse("authentications:callback"), samesite="None"
        )
    return response


def complete_sign_in(params: Mapping[str, str], cookies: Mapping[str, str]) -> AuthorizationRequest:
    """Finish the sign-in Microsoft answered; returns the granted AuthorizationRequest.

    Raises SignInError (with `auth_request` once this browser proved it started the
    sign-in). Nothing stored changes unless every check passes.
    """
    request = _pending_request(params, cookies)
    try:
        if _is_admin_consent(request):
            _store_grant(request, _consent_grant(request, params))
        else:
            tokens = _finish_with_entra(request, params)
            _check_expected_user(request, tokens.claims)
            _store_grant(request, _sign_in_grant(request, tokens))
    except SignInError as err:
        _record_failure(request, err)
        raise
    return request


def _finish_with_entra(request, params):
    """Redeem Microsoft's answer for tokens; Entra's refusal becomes a SignInError."""
    try:
        return oauth.finish_auth_code_flow(request.authentication, _stored_flow(request), params)
    except ConsentError as err:
        raise SignInError.from_entra(err, request) from err


@dataclass(frozen=True)
class _Grant:
    """What a completed sign-in or consent stores, and how the history tells it."""

    changes: dict = field(repr=False)
    actor: str
    detail: str
    kind: str = Event.Kind.SIGN_IN_GRANTED
    notify: Callable[[Authentication], int] = emails.notify_access_granted
    # Staff are told of a grant made through a link (they did not watch it), and of every
    # admin consent: a new organisation let the app in.
    always_notify: bool = False


def _sign_in_grant(request, tokens):
    changes = _grant_changes(request, tokens)
    # The history names who granted as the admin shows it: through the model's displays.
    granted = Authentication(
        **{name: changes[name] for name in ("granted_by_name", "granted_by_upn", "granted_via")}
    )
    return _Grant(
        changes,
        granted.granted_by_upn,
        f"Access granted by {granted.granted_by_display or 'unknown'} "
        f"via {granted.get_granted_via_display()}.",
    )


def _consent_grant(request, params):
    """Prove Microsoft's answer to an admin consent; Entra's refusal becomes a SignInError."""
    authentication = request.authentication
    if not _grant_target(request).exists():
        # Changed (a new secret, type or tenant) or its link revoked since the consent
        # started: say so, rather than what Entra answers the changed credentials.
        raise _grant_refused(request)
    try:
        consent = admin_consent.finish_admin_consent(authentication, params)
    except ConsentError as err:
        raise SignInError.from_entra(err, request) from err
    changes = admin_consent.grant_changes(authentication, consent)
    if _via_link(request):  # A link is spent once it has produced a grant.
        changes["link_nonce"] = new_link_nonce()
    return _Grant(
        changes,
        consent.actor,
        f"Admin consent granted for tenant {consent.tenant_id} via the "
        f"{_started_from(request)}; access token received.",
        kind=Event.Kind.ADMIN_CONSENT_GRANTED,
        notify=emails.notify_admin_consent,
        always_notify=True,
    )


def _stored_flow(request):
    """The MSAL flow kept for this sign-in: unreadable if its key left FERNET_KEYS meanwhile."""
    if isinstance(request.flow, Undecryptable) or request.authentication.cannot_decrypt:
        raise SignInError(
            "This sign-in cannot be completed: this site can no longer read what it stored "
            "for it. Start the sign-in again; if that fails too, tell the site's administrators.",
            code="key_missing",
            auth_request=request,
        )
    return json.loads(request.flow)


def _pending_request(params, cookies):
    state = params.get("state") or ""
    if not state or len(state) > MAX_STATE_LENGTH:
        raise SignInError(
            "This page expects an answer from Microsoft, and none came. Start the sign-in again.",
            code="missing_state",
        )
    request = None
    if STATE_CHARACTERS.fullmatch(state):
        request = (
            AuthorizationRequest.objects.select_related("authentication")
            .filter(state=state)
            .first()
        )
    if request is None:
        raise SignInError(
            "This sign-in is unknown or was cancelled. Start the sign-in again.",
            code="unknown_state",
        )
    if request.used_at is not None:
        raise _known(request, "This sign-in was already completed; start a new one.", "state_used")
    if request.expires_at <= timezone.now():
        raise _known(
            request,
            f"This sign-in expired (it is valid for {settings.BC_SIGN_IN_TTL_MINUTES} minutes). "
            "Start the sign-in again.",
            "state_expired",
        )
    _check_binding(request, cookies.get(binding_cookie_name(state)) or "")
    if not AuthorizationRequest.objects.claim(state):
        raise _known(request, "This sign-in was already completed; start a new one.", "state_used")
    return request


def _known(request, message, code):
    """A refusal before this browser proved it started the sign-in: without `auth_request`.

    Whoever presents a state may have only read it (history, a proxy log): the page must
    name neither the connection nor its admin URL.
    """
    logger.info("Sign-in %s refused before the browser was verified: %s", request.pk, code)
    return SignInError(message, code=code)


def _check_binding(request, cookie_value):
    # The state alone is not enough (RFC 9700 2.1.1): the browser that finishes must be
    # the one that started, so a victim cannot be made to finish an attacker's sign-in.
    if not cookie_value or not secrets.compare_digest(_digest(cookie_value), request.binding_hash):
        request.authentication.record(
            Event.Kind.SIGN_IN_FAILED,
            detail="Refused: the sign-in was finished in a different browser than it started.",
        )
        raise _known(
            request,
            "This sign-in was started in a different browser (or its cookie expired). "
            "Start the sign-in again in this browser.",
            "browser_mismatch",
        )


def _check_expected_user(request, claims):
    authentication = request.authentication
    if not authentication.expected_user.strip():
        return
    if not is_expected_user(authentication.expected_user, claims):
        signed_in = signed_in_upn(claims).lower()
        sign_in_as = login_hint(authentication.expected_user) or authentication.expected_user
        raise SignInError(
            f"Access must be granted by {authentication.expected_user}, but "
            f"{signed_in or 'another account'} signed in. Sign in as "
            f"{sign_in_as}, or ask the sender to change the expected user.",
            code="wrong_user",
            auth_request=request,
        )


def signed_in_upn(claims):
    """The sign-in name the ID token gives: preferred_username (v2.0), else upn (v1.0)."""
    return str(claims.get("preferred_username") or claims.get("upn") or "")


def is_expected_user(expected_user, claims):
    """Whether the ID token's account is `expected_user`: a UPN, an e-mail or an object ID.

    A guest's ID token names their home address (preferred_username, email), not their
    jane_fabrikam.com#EXT#@contoso.onmicrosoft.com UPN: that UPN matches the address.
    """
    expected = expected_user.strip().lower()
    names = {expected, guest_home_address(expected)} - {""}
    claimed = (claims.get(name) for name in ("preferred_username", "upn", "email", "oid"))
    return bool(names & {str(value).strip().lower() for value in claimed if value})


def guest_home_address(upn):
    """jane@fabrikam.com for the guest UPN jane_fabrikam.com#EXT#@…, else "".

    Entra writes a guest's address with "@" replaced by "_"; domains have no "_".
    """
    local, marker, _ = upn.lower().partition("#ext#")
    user, underscore, domain = local.rpartition("_")
    return f"{user}@{domain}" if marker and underscore and user and domain else ""


def login_hint(expected_user):
    """The name the expected user signs in with, for Microsoft's sign-in page; "" for an
    object ID, which is no sign-in name."""
    expected = expected_user.strip()
    address = guest_home_address(expected) or expected
    try:
        validate_email(address)
    except ValidationError:
        return ""
    return address


def _record_failure(request, err):
    authentication = request.authentication
    AuthorizationRequest.objects.filter(pk=request.pk).update(
        outcome=AuthorizationRequest.Outcome.FAILED, error_message=err.message
    )
    Authentication.objects.filter(pk=authentication.pk).update(
        last_error=err.message, last_error_code=err.display_code
    )
    authentication.record(Event.Kind.SIGN_IN_FAILED, detail=f"{err.display_code}: {err.message}")
    logger.info("Sign-in for %s failed: %s", authentication, err.display_code)


def _store_grant(request, grant):
    """Store the grant and spend the link in one conditional UPDATE; raises SignInError.

    Two sign-ins from one link that finish together both reach this point: the UPDATE
    that still finds the link's nonce wins, the other stores nothing.
    """
    authentication = request.authentication
    with transaction.atomic():
        if not _grant_target(request, grant).update(**grant.changes):
            raise _grant_refused(request)
        AuthorizationRequest.objects.filter(pk=request.pk).update(
            outcome=AuthorizationRequest.Outcome.GRANTED
        )
        for name, value in grant.changes.items():
            setattr(authentication, name, value)
        authentication.record(grant.kind, actor=grant.actor, detail=grant.detail)
    request.outcome = AuthorizationRequest.Outcome.GRANTED
    if _via_link(request) or grant.always_notify:
        grant.notify(authentication)


def _via_link(request):
    return request.started_via == AuthorizationRequest.Via.LINK


def _grant_changes(request, tokens):
    claims = tokens.claims
    via_link = _via_link(request)
    now = timezone.now()
    changes = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "access_token_expires_at": tokens.expires_at,
        "status": Authentication.Status.CONNECTED,
        "granted_by_upn": signed_in_upn(claims)[:254],
        "granted_by_name": str(claims.get("name") or "")[:254],
        "granted_by_oid": str(claims.get("oid") or "")[:64],
        "granted_via": Authentication.GrantedVia.LINK
        if via_link
        else Authentication.GrantedVia.ADMIN,
        "granted_at": now,
        "last_refreshed_at": now,
        "last_error": "",
        "last_error_code": "",
        "consecutive_failures": 0,
        "updated_at": now,
    }
    if via_link:  # A link is spent once it has produced a grant.
        changes["link_nonce"] = new_link_nonce()
    return changes


def _grant_target(request, grant=None):
    """The row, only while nothing changed the connection since this sign-in started."""
    target = Authentication.objects.filter(
        pk=request.authentication_id, generation=request.generation
    )
    if _via_link(request):  # Spent by another sign-in, or revoked, since: no grant.
        target = target.filter(link_nonce=request.link_nonce)
    if grant and _is_admin_consent(request):  # No other organisation's consent since read.
        unchanged = {request.authentication.tenant_id, grant.changes["tenant_id"]}
        target = target.filter(tenant_id__in=unchanged)
    return target


def _grant_refused(request):
    """Why `_grant_target` matched nothing, for the person who just signed in."""
    nonce, tenant = (
        Authentication.objects.filter(pk=request.authentication_id)
        .values_list("link_nonce", "tenant_id")
        .first()
    ) or ("", "")
    if _is_admin_consent(request) and tenant != request.authentication.tenant_id:
        return SignInError(
            f"An administrator of another organisation consented at the same time, and tenant "
            f"{tenant} is now stored for this connection, so this consent was not stored.",
            code="wrong_tenant",
            auth_request=request,
        )
    if _via_link(request) and nonce != request.link_nonce:
        return SignInError(
            "This Authorization URL was revoked or already used while you were signing in. "
            "Ask the sender for a new link.",
            code="link_revoked",
            auth_request=request,
        )
    return SignInError(
        "The connection was changed while you were signing in (disconnected, or its app "
        "registration or BC URL edited), so this sign-in was not stored. Start a new one.",
        code="connection_changed",
        auth_request=request,
    )


def recent_grant(authentication, request_id):
    """The sign-in the callback just completed for this authentication, if it succeeded.

    The callback's cross-site POST carries no session, so the admin derives its
    "Access token received" message from what was stored instead.
    """
    try:
        request_id = uuid.UUID(str(request_id))
    except ValueError:
        return None
    return AuthorizationRequest.objects.filter(
        pk=request_id,
        authentication=authentication,
        outcome=AuthorizationRequest.Outcome.GRANTED,
        used_at__gte=timezone.now() - timedelta(minutes=settings.BC_SIGN_IN_TTL_MINUTES),
    ).first()
