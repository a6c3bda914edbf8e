"""The Authorization URL: a signed, expiring, revocable link to the public landing page.

The token names the authentication and its current `link_nonce`; rotating the nonce
revokes every link issued so far (regenerating, changing credentials, or a grant made
through a link, which so spends it). Nothing secret is inside: the signature only proves
that we issued it, and the nonce only proves that nobody revoked it since.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from bcconnect.errors import BcconnectError

from .models import Authentication, AuthorizationRequest, Event, new_link_nonce

logger = logging.getLogger(__name__)

SALT = "authentications.links.authorization-url"


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
    url: str
    expires_at: datetime

    def __iter__(self):  # So `url, expires_at = authorization_url(...)` reads naturally.
        return iter((self.url, self.expires_at))


@dataclass(frozen=True)
class OpenedLink:
    authentication: Authentication
    expires_at: datetime


def max_age() -> timedelta:
    return timedelta(days=settings.BC_LINK_MAX_AGE_DAYS)


def link_available(authentication: Authentication | None) -> bool:
    """Whether a link can be issued: a user-impersonation authentication ready to sign in."""
    return bool(
        authentication
        and authentication.pk
        and authentication.is_user_impersonation
        and authentication.has_credentials()
    )


def _signer():
    return signing.TimestampSigner(salt=SALT)


def make_token(authentication: Authentication) -> str:
    return _signer().sign_object({"a": authentication.pk, "n": authentication.link_nonce})


def authorization_url(authentication: Authentication) -> AuthorizationLink:
    """A fresh link to the landing page and when it stops working."""
    if not link_available(authentication):
        raise ValueError("Authorization URLs exist only for complete user-impersonation setups.")
    path = reverse("authentications:authorize", args=[make_token(authentication)])
    return AuthorizationLink(settings.PUBLIC_BASE_URL + path, timezone.now() + max_age())


def authentication_for_link(token: str) -> OpenedLink:
    """The authentication a link grants access to; raises LinkError when it cannot be used."""
    payload, issued_at = _unsign(token)
    try:
        pk, nonce = int(payload["a"]), str(payload["n"])
    except (TypeError, KeyError, ValueError) as err:
        raise LinkError(_INVALID, code=LinkError.INVALID) from err
    authentication = Authentication.objects.filter(pk=pk).first()
    if not link_available(authentication):
        raise LinkError(_NOT_FOUND, code=LinkError.NOT_FOUND)
    if nonce != authentication.link_nonce:
        raise LinkError(_SPENT if _was_spent(pk, nonce) else _REVOKED, code=LinkError.REVOKED)
    return OpenedLink(authentication, issued_at + max_age())


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
    """Rotate the nonce so that every Authorization URL issued so far stops working."""
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
_NOT_FOUND = "This link does not lead anywhere any more. " + _ASK
