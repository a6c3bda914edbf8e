"""Emails to people: the notification list (BC_NOTIFY_EMAILS) and link recipients.

Every message is multipart (plain text and HTML, from templates/authentications/emails/)
and goes through Django's email backend, so development prints it to the console.
"""

import logging
import threading

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from authentications.kit.admin_urls import change_url
from authentications.kit.validators import is_control_character

logger = logging.getLogger(__name__)


def admin_url(authentication):
    """Absolute link to the authentication's admin change page."""
    return settings.PUBLIC_BASE_URL + change_url(authentication.pk)


def subject_line(text):
    """`text` as one header line: a name holding a line break must not break the email."""
    visible = "".join(" " if is_control_character(char) else char for char in text)
    return " ".join(visible.split())


def expiry_wording(authentication, what, *, days_left):
    """(when, subject) of a reminder that `what` ("client secret", "certificate") expires."""
    when = f"in {days_left} day{'s' if days_left != 1 else ''}" if days_left > 0 else "expired"
    subject = f"“{authentication.name}”: {what} " + (
        f"expires {when}" if days_left > 0 else "expired"
    )
    return when, subject


def build_email(template, context, *, to, subject):
    """The multipart message for `template` (.txt and .html), its subject on one line."""
    context = {"site_name": settings.SITE_NAME, **context}
    email = EmailMultiAlternatives(
        subject=subject_line(subject),
        body=render_to_string(f"authentications/emails/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(to),
    )
    email.attach_alternative(
        render_to_string(f"authentications/emails/{template}.html", context), "text/html"
    )
    return email


def send(template, context, *, to, subject):
    """Render `template` and send it, for a caller that must know whether it went out.

    Returns the count sent; raises what the backend raises. Each SMTP step is bounded by
    EMAIL_TIMEOUT.
    """
    return build_email(template, context, to=to, subject=subject).send()


def notify(template, context, *, subject):
    """Tell the people in BC_NOTIFY_EMAILS; does nothing when the list is empty."""
    recipients = settings.BC_NOTIFY_EMAILS
    if not recipients:
        return 0
    return send(template, context, to=recipients, subject=_tagged(subject))


def notify_quietly(template, context, *, subject):
    """`notify`, for news about something already stored: a mail server that is down or
    slow is logged, and must not undo, hide or hold up a grant, a refresh or a cron run.

    Returns how many messages the mail server accepted within EMAIL_TIMEOUT: 0 when it
    failed, or when the message is still being sent in the background.
    """
    recipients = settings.BC_NOTIFY_EMAILS
    if not recipients:
        return 0
    email = build_email(template, context, to=recipients, subject=_tagged(subject))
    return _send_within_timeout(email, what=template.replace("_", "-"))


def _tagged(subject):
    return f"[{settings.SITE_NAME}] {subject}"


def _send_within_timeout(email, *, what):
    """Send `email` on a thread of its own and wait for it at most EMAIL_TIMEOUT seconds.

    Each SMTP step is bounded by EMAIL_TIMEOUT as well, so the thread always ends, and a
    server that answers slowly but surely still gets the message.
    """
    sent = []

    def deliver():
        try:
            sent.append(email.send())
        except Exception as err:  # Whatever the backend raises, only this news is lost.
            logger.warning("Could not send the %s email (%s): %r", what, email.subject, err)

    thread = threading.Thread(target=deliver, name=f"bcconnect-{what}-email")
    thread.start()
    thread.join(settings.EMAIL_TIMEOUT)
    if thread.is_alive():
        logger.warning(
            "The mail server has not accepted the %s email (%s) within EMAIL_TIMEOUT "
            "(%s s); it is still being sent in the background.",
            what,
            email.subject,
            settings.EMAIL_TIMEOUT,
        )
        return 0
    return sent[0] if sent else 0
