"""Reminders before a certificate in use expires: 30, 7 and 1 days ahead, like secrets.

Each certificate remembers the smallest reminder already sent, claimed with a conditional
UPDATE before the email goes out, so overlapping cron runs send each one once; a reminder
the mail server did not take is given back for the next run. A new certificate is a new
row, so its reminders start afresh.
"""

import logging
import smtplib
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from authentications import mail
from authentications.certificates.models import Certificate
from authentications.connections.models import Authentication, Event

logger = logging.getLogger(__name__)


def due(*, days, today=None):
    """(certificate, days left, reminder threshold) for certificates in use expiring soon."""
    today = today or timezone.localdate()
    in_use = Certificate.objects.filter(
        role=Certificate.Role.CURRENT,
        authentication__credential_type=Authentication.Credential.CERTIFICATE,
        not_after__lt=timezone.now() + timedelta(days=max(days) + 1),
    ).select_related("authentication")
    reminders = []
    for certificate in in_use:
        days_left = (timezone.localdate(certificate.not_after) - today).days
        threshold = min((d for d in days if days_left <= d), default=None)
        notified = certificate.expiry_notified_days
        if threshold is not None and (notified is None or notified > threshold):
            reminders.append((certificate, days_left, threshold))
    return reminders


def send(reminders, *, days, today=None):
    """Email what is due; add (authentication, days left) to `reminders.sent` or `.unsent`."""
    for certificate, days_left, threshold in due(days=days, today=today):
        previous = certificate.expiry_notified_days
        claimed = Certificate.objects.filter(pk=certificate.pk).filter(
            Q(expiry_notified_days__isnull=True) | Q(expiry_notified_days__gt=threshold)
        )
        if not claimed.update(expiry_notified_days=threshold):
            continue  # An overlapping run sends this one.
        if _notify(certificate, days_left=days_left):
            reminders.sent.append((certificate.authentication, days_left))
        else:
            Certificate.objects.filter(pk=certificate.pk, expiry_notified_days=threshold).update(
                expiry_notified_days=previous
            )
            reminders.unsent.append((certificate.authentication, days_left))
    return reminders


def _notify(certificate, *, days_left):
    authentication = certificate.authentication
    expires_on = timezone.localdate(certificate.not_after)
    when, subject = mail.expiry_wording(authentication, "certificate", days_left=days_left)
    context = {
        "authentication": authentication,
        "certificate": certificate,
        "days_left": days_left,
        "expires_on": expires_on,
        "admin_url": mail.admin_url(authentication),
    }
    try:
        mail.notify("certificate_expiry", context, subject=subject)
    except (smtplib.SMTPException, OSError) as err:
        logger.warning("Could not send the certificate-expiry email (%s): %r", subject, err)
        return False
    authentication.record(
        Event.Kind.CERTIFICATE_EXPIRY,
        detail=f"Certificate {certificate.thumbprint_sha1} expires on {expires_on} ({when}).",
    )
    return True
