"""The email that carries the Authorization URL (or the Admin consent URL) to a person.

A service-to-service authentication's link is its Admin consent URL: the same email
machinery, with words for an Entra administrator of the customer's organisation.

A mail server failure is a LinkEmailError with a message for staff; only a message the
backend accepted is recorded as sent.
"""

import logging
import smtplib

from django.conf import settings
from django.utils import timezone

from authentications import mail
from authentications.connections import link_tokens
from authentications.connections.models import Event
from authentications.kit.formatting import sentence, when
from bcconnect.errors import BcconnectError

logger = logging.getLogger(__name__)


class LinkEmailError(BcconnectError):
    """The mail server refused the email or could not be reached: nothing was sent."""


def sender_display(user):
    """How the email names the person asking: "Ann Lee (ann@example.com)" or the username."""
    name = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    email = getattr(user, "email", "") or ""
    if name and email:
        return f"{name} ({email})"
    return name or email or user.get_username()


# Per link purpose: the email's template, its subject, and the link's name.
_LINK_EMAILS = {
    link_tokens.SIGN_IN: (
        "authorization_url",
        "Please grant {site} access to Business Central",
        "Authorization URL",
    ),
    link_tokens.ADMIN_CONSENT: (
        "admin_consent_url",
        "Please grant admin consent to {site} for Business Central",
        "Admin consent URL",
    ),
}


def link_name(authentication):
    """ "Authorization URL" or "Admin consent URL": what staff and recipients call the link."""
    return _LINK_EMAILS[link_tokens.purpose_of(authentication)][2]


def send_authorization_url(authentication, *, recipients, message, user, link=None):
    """Email `link` (the one the email page showed, see `link_tokens.same_link`), or else a fresh
    Authorization URL (or Admin consent URL), to `recipients`; returns the link sent."""
    purpose = link_tokens.purpose_of(authentication)
    template, subject, name = _LINK_EMAILS[purpose]
    link = link or link_tokens.authorization_url(authentication, purpose)
    context = {
        "authentication_name": authentication.name,
        "environment": authentication.environment_name,
        "sender": sender_display(user),
        "personal_message": message.strip(),
        "url": link.url,
        "expires_at": timezone.localtime(link.expires_at),
        "max_age_days": settings.BC_LINK_MAX_AGE_DAYS,
        "expected_user": authentication.expected_user,
        "client_id": authentication.client_id,
        "tenant_id": authentication.tenant_id,
    }
    subject = subject.format(site=settings.SITE_NAME)
    try:
        mail.send(template, context, to=recipients, subject=subject)
    except (smtplib.SMTPException, OSError) as err:
        logger.warning("Emailing the %s for %s failed: %r", name, authentication, err)
        raise LinkEmailError(
            "The email could not be sent: the mail server refused it or could not be reached "
            f"({type(err).__name__}). Nothing was sent; check EMAIL_URL or try again later.",
            code="email_not_sent",
        ) from err
    authentication.record(
        Event.Kind.LINK_EMAILED,
        actor=user.get_username(),
        detail=sentence(
            f"{name} emailed to {', '.join(recipients)}; it expires {when(link.expires_at)}"
        ),
    )
    return link
