"""Emails to people: the notification list (BC_NOTIFY_EMAILS) and link recipients.

Every message is multipart (plain text and HTML, from templates/authentications/emails/)
and goes through Django's email backend, so development prints it to the console.
"""

import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from .validators import is_control_character

logger = logging.getLogger(__name__)


def admin_url(authentication):
    """Absolute link to the authentication's admin change page."""
    path = reverse("admin:authentications_authentication_change", args=[authentication.pk])
    return settings.PUBLIC_BASE_URL + path


def subject_line(text):
    """`text` as one header line: a name holding a line break must not break the email."""
    visible = "".join(" " if is_control_character(char) else char for char in text)
    return " ".join(visible.split())


def send(template, context, *, to, subject):
    """Render `template`.txt and .html and send them as one message; returns the count sent."""
    context = {"site_name": settings.SITE_NAME, **context}
    message = EmailMultiAlternatives(
        subject=subject_line(subject),
        body=render_to_string(f"authentications/emails/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(to),
    )
    message.attach_alternative(
        render_to_string(f"authentications/emails/{template}.html", context), "text/html"
    )
    return message.send()


def notify(template, context, *, subject):
    """Tell the people in BC_NOTIFY_EMAILS; does nothing when the list is empty."""
    recipients = settings.BC_NOTIFY_EMAILS
    if not recipients:
        return 0
    return send(template, context, to=recipients, subject=f"[{settings.SITE_NAME}] {subject}")


def notify_quietly(template, context, *, subject):
    """`notify`, for news about something already stored: a mail server that is down is
    logged, and must not undo or hide a grant or break token handling."""
    try:
        return notify(template, context, subject=subject)
    except (smtplib.SMTPException, OSError) as err:
        logger.warning(
            "Could not send the %s email (%s): %r", template.replace("_", "-"), subject, err
        )
        return 0
