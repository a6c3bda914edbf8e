"""The Authorization URL: a signed, expiring, revocable link to the public landing page.

A link has a purpose: a user's sign-in (the Authorization URL of a user-impersonation
authentication) or an administrator's consent for their tenant (the Admin consent URL of a
service-to-service one). Both are the same machinery; the purpose is signed into the token.

The token names the authentication and its current `link_nonce`; rotating the nonce
revokes every link issued so far (regenerating, changing credentials, or a grant made
through a link, which so spends it). Nothing secret is inside: the signature only proves
that we issued it, and the nonce only proves that nobody revoked it since.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from authentications.connections.models import (
    Authentication,
    AuthorizationRequest,
    Event,
    new_link_nonce,
)
from bcconnect.errors import BcconnectError

logger = logging.getLogger(__name__)

SALT = "authentications.links.authorization-url"
SIGN_IN = AuthorizationRequest.Purpose.SIGN_IN
ADMIN_CONSENT = AuthorizationRequest.Purpose.ADMIN_CONSENT


class LinkError(BcconnectError):
    """A link that cannot be used, with a message for the person holding it.

    `code` is one of the constants below; `status` is the HTTP status its page answers with.
    """

    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    NOT_FOUND = "not_found"

    STATUS = {INVALID: 404, EXPIRED: 410, REVOKED: 410, NOT_FOUND: 404}

    @property
    def status(self):
        return self.STATUS[self.code]


@dataclass(frozen=True)
class AuthorizationLink:
    # Whoever holds the URL may grant access: kept out of reprs, so out of the template
    # debug logs that print a page's whole context.
    url: str = field(repr=False)
    expires_at: datetime

    def __iter__(self):  # So `url, expires_at = authorization_url(...)` reads naturally.
        return iter((self.url, self.expires_at))


@dataclass(frozen=True)
class OpenedLink:
    authentication: Authentication
    expires_at: datetime
    purpose: str = SIGN_IN

    @property
    def is_admin_consent(self):
        return self.purpose == ADMIN_CONSENT


def max_age() -> timedelta:
    return timedelta(days=settings.BC_LINK_MAX_AGE_DAYS)


def link_available(authentication: Authentication | None, purpose: str = SIGN_IN) -> bool:
    """Whether a link for `purpose` can be issued: a sign-in link for a user-impersonation
    authentication ready to sign in, a consent link for a service-to-service one whose app
    registration is filled in (its tenant may still be unknown)."""
    if not (authentication and authentication.pk):
        return False
    if purpose == ADMIN_CONSENT:
        return not authentication.is_user_impersonation and bool(
            authentication.client_id and authentication.base_url and authentication.has_credential()
        )
    return authentication.is_user_impersonation and authentication.has_credentials()


def purpose_of(authentication: Authentication) -> str:
    """The purpose of the links `authentication` has: consent for service-to-service."""
    return SIGN_IN if authentication.is_user_impersonation else ADMIN_CONSENT


def _signer():
    return signing.TimestampSigner(salt=SALT)


def make_token(authentication: Authentication, purpose: str = SIGN_IN) -> str:
    payload = {"a": authentication.pk, "n": authentication.link_nonce}
    if purpose != SIGN_IN:  # Sign-in links keep the shape they always had.
        payload["p"] = str(purpose)
    return _signer().sign_object(payload)


def authorization_url(authentication: Authentication, purpose: str = SIGN_IN) -> AuthorizationLink:
    """A fresh link to the landing page and when it stops working."""
    if not link_available(authentication, purpose):
        raise ValueError(
            "Authorization URLs exist only for complete user-impersonation setups, admin "
            "consent URLs only for service-to-service ones."
        )
    path = reverse("authentications:authorize", args=[make_token(authentication, purpose)])
    return AuthorizationLink(settings.PUBLIC_BASE_URL + path, timezone.now() + max_age())


def admin_consent_url(authentication: Authentication) -> AuthorizationLink:
    """A fresh Admin consent URL (a link whose purpose is admin consent)."""
    return authorization_url(authentication, ADMIN_CONSENT)


def same_link(authentication: Authentication, url: str) -> AuthorizationLink:
    """`url`, if it is a link of `authentication` that still works, so that the email page
    sends exactly the link it showed; raises LinkError for staff otherwise.

    Every link of an authentication carries its one nonce, so they are all one link: the
    first grant through any copy spends them all, and "Regenerate link" revokes them all.
    """
    prefix = settings.PUBLIC_BASE_URL + reverse("authentications:authorize", args=["x"])[:-2]
    token = url.removeprefix(prefix).removesuffix("/") if url.startswith(prefix) else ""
    try:
        opened = authentication_for_link(token) if token and "/" not in token else None
    except LinkError as err:
        raise LinkError(_CHANGED, code=err.code) from err
    if opened is None or opened.authentication.pk != authentication.pk:
        raise LinkError(_CHANGED, code=LinkError.INVALID)
    if opened.purpose != purpose_of(authentication):
        raise LinkError(_CHANGED, code=LinkError.INVALID)
    return AuthorizationLink(url, opened.expires_at)


def authentication_for_link(token: str) -> OpenedLink:
    """The authentication a link grants access to; raises LinkError when it cannot be used."""
    payload, issued_at = _unsign(token)
    try:
        pk, nonce = int(payload["a"]), str(payload["n"])
        purpose = AuthorizationRequest.Purpose(payload.get("p", SIGN_IN))
    except (TypeError, KeyError, ValueError) as err:
        raise LinkError(_INVALID, code=LinkError.INVALID) from err
    authentication = Authentication.objects.filter(pk=pk).first()
    if not link_available(authentication, purpose):
        raise LinkError(_NOT_FOUND, code=LinkError.NOT_FOUND)
    if nonce != authentication.link_nonce:
        raise LinkError(_SPENT if _was_spent(pk, nonce) else _REVOKED, code=LinkError.REVOKED)
    return OpenedLink(authentication, issued_at + max_age(), purpose)


def _unsign(token):
    signer = _signer()
    try:
        payload = signer.unsign_object(token, max_age=max_age())
    except signing.SignatureExpired as err:
        raise LinkError(_EXPIRED, code=LinkError.EXPIRED) from err
    except (signing.BadSignature, ValueError, UnicodeError) as err:
        raise LinkError(_INVALID, code=LinkError.INVALID) from err
    if not isinstance(payload, dict):
        raise LinkError(_INVALID, code=LinkError.INVALID)
    # A verified token is "<payload>:<timestamp>:<signature>"; the timestamp says when
    # it was issued, hence when it expires.
    stamp = signing.b62_decode(token.rsplit(signer.sep, 2)[-2])
    return payload, datetime.fromtimestamp(stamp, tz=UTC)


def _was_spent(pk, nonce):
    return AuthorizationRequest.objects.filter(
        authentication_id=pk,
        link_nonce=nonce,
        started_via=AuthorizationRequest.Via.LINK,
        outcome=AuthorizationRequest.Outcome.GRANTED,
    ).exists()


def revoke_links(authentication: Authentication, *, actor: str, reason: str) -> None:
    """Rotate the nonce so that every Authorization (or Admin consent) URL issued so far
    stops working."""
    authentication.link_nonce = new_link_nonce()
    Authentication.objects.filter(pk=authentication.pk).update(
        link_nonce=authentication.link_nonce, updated_at=timezone.now()
    )
    authentication.record(Event.Kind.LINK_REVOKED, actor=actor, detail=reason)
    logger.info("Authorization URLs for %s revoked: %s", authentication, reason)


_ASK = "Ask the person who sent it to you for a new link."
_INVALID = "This link is not valid: it may have been cut off or changed. " + _ASK
_EXPIRED = "This link has expired. " + _ASK
_REVOKED = "This link was withdrawn by the person who sent it. " + _ASK
_SPENT = "This link was already used to grant access, so it no longer works. " + _ASK
_CHANGED = (
    "The link shown on this page no longer works (it was regenerated, used, or changed since "
    "the page was opened): nothing was sent. Open the page again for the current link."
)
_NOT_FOUND = "This link does not lead anywhere any more. " + _ASK
