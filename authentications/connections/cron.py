"""What the cron job (`refresh_tokens`) does for connections: refresh what is due, warn
before client secrets expire. (Certificate reminders are `certificates.cron`; the command
runs both through `management.housekeeping`.)

Every refresh goes through `tokens.refresh`, so the lease makes overlapping runs (and the
web workers refreshing on demand) share one token request per expiry.
"""

import logging
import queue
import smtplib
import threading
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from authentications import mail
from authentications.connections.models import Authentication, Event
from authentications.connections.tokens import (
    SKIPPED_UNREACHABLE,
    TokenError,
    UnreachableHosts,
    refresh,
)

logger = logging.getLogger(__name__)

SECRET_REMINDER_DAYS = (30, 7, 1)
# Connections waiting for a new secret or app registration stay due, so each run reports
# them; `tokens.refresh` answers with the stored error and does not ask Entra.
REFRESHABLE = (
    Authentication.Status.CONNECTED,
    Authentication.Status.FAILING,
    Authentication.Status.SECRET_INVALID,
    Authentication.Status.APP_MISSING,
)


class Result(models.TextChoices):
    REFRESHED = "refreshed"
    FRESH = "fresh", "already refreshed elsewhere"
    FAILED = "failed"
    SKIPPED = "skipped", "skipped (Microsoft unreachable in this run: not tried)"
    DUE = "due", "due (dry run)"


@dataclass(frozen=True)
class Outcome:
    """One authentication's result in a cron run (no secret in it: it is printed)."""

    name: str
    outcome: Result
    expires_at: object = None
    error_code: str = ""
    error: str = ""

    def as_dict(self):
        expires = self.expires_at.isoformat() if self.expires_at else None
        return {
            "name": self.name,
            "outcome": self.outcome,
            "expires_at": expires,
            "error_code": self.error_code or None,
            "error": self.error or None,
        }


def refreshable():
    """The user-impersonation connections cron keeps alive; select the due ones with a policy.

    Service-to-service connections are not kept alive: they get a new token on use.
    """
    return Authentication.objects.filter(
        kind=Authentication.Kind.USER_IMPERSONATION, status__in=REFRESHABLE
    )


def refresh_many(authentications, *, needed, workers, actor="refresh_tokens", by_person=False):
    """Refresh each authentication on a bounded pool of threads; Outcomes sorted by name.

    `by_person`: someone named these connections (`refresh_tokens --name`): ask Entra even
    for one whose credentials it refused before. After a few network failures in a row
    against Entra, the rest are skipped (see `tokens.UnreachableHosts`).
    """
    unreachable = UnreachableHosts()
    jobs = queue.SimpleQueue()
    for authentication in authentications:
        jobs.put(authentication)
    results = []

    def work():
        try:
            while True:
                try:
                    authentication = jobs.get_nowait()
                except queue.Empty:
                    return
                results.append(
                    _refresh_one(
                        authentication,
                        needed=needed,
                        actor=actor,
                        by_person=by_person,
                        unreachable=unreachable,
                    )
                )
        finally:
            connection.close()  # Each thread has its own connection: do not leak it.

    threads = [threading.Thread(target=work) for _ in range(max(1, min(workers, jobs.qsize())))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results, key=lambda outcome: outcome.name)


def _refresh_one(authentication, *, needed, actor, by_person, unreachable):
    try:
        result = refresh(
            authentication.pk,
            needed=needed,
            actor=actor,
            by_person=by_person,
            unreachable=unreachable,
        )
    except TokenError as err:
        outcome = Result.SKIPPED if err.code == SKIPPED_UNREACHABLE else Result.FAILED
        return Outcome(authentication.name, outcome, error_code=err.code, error=err.message)
    except Exception:  # One broken row must not stop the run; the log has the traceback.
        logger.exception("Refreshing %s failed unexpectedly", authentication)
        return Outcome(authentication.name, Result.FAILED, error_code="internal_error")
    return Outcome(
        authentication.name,
        Result.REFRESHED if result.refreshed else Result.FRESH,
        expires_at=result.authentication.access_token_expires_at,
    )


def secret_reminders_due(*, today=None):
    """(authentication, days left, reminder threshold) for secrets expiring within 30 days."""
    today = today or timezone.localdate()
    reminders = []
    with_secret = Authentication.objects.filter(
        client_secret_expires_on__isnull=False, credential_type=Authentication.Credential.SECRET
    )
    for authentication in with_secret:
        days_left = (authentication.client_secret_expires_on - today).days
        threshold = min((d for d in SECRET_REMINDER_DAYS if days_left <= d), default=None)
        if threshold is None:
            if authentication.secret_expiry_notified_days is not None:
                # A new secret with a later date: its reminders start again.
                Authentication.objects.filter(pk=authentication.pk).update(
                    secret_expiry_notified_days=None
                )
            continue
        notified = authentication.secret_expiry_notified_days
        if notified is None or notified > threshold:
            reminders.append((authentication, days_left, threshold))
    return reminders


class Reminders(NamedTuple):
    """(authentication, days left) pairs: delivered, and given back for the next run."""

    sent: list
    unsent: list


def send_secret_reminders(*, today=None):
    """Email each reminder (30, 7, 1 days) once, even when two cron runs overlap.

    A run claims a reminder before sending it, so an overlapping run skips it; a reminder
    the mail server did not take is given back, so the next run tries again.
    """
    reminders = Reminders([], [])
    for authentication, days_left, threshold in secret_reminders_due(today=today):
        previous = authentication.secret_expiry_notified_days
        if not _claim_reminder(authentication.pk, threshold):
            continue
        if _notify_secret_expiry(authentication, days_left=days_left):
            reminders.sent.append((authentication, days_left))
        else:
            _give_back_reminder(authentication.pk, threshold, previous=previous)
            reminders.unsent.append((authentication, days_left))
    return reminders


def _claim_reminder(pk, threshold):
    return (
        Authentication.objects.filter(pk=pk)
        .filter(
            Q(secret_expiry_notified_days__isnull=True)
            | Q(secret_expiry_notified_days__gt=threshold)
        )
        .update(secret_expiry_notified_days=threshold)
    )


def _give_back_reminder(pk, threshold, *, previous):
    """Undo our claim, unless a new secret date has reset the reminders meanwhile."""
    Authentication.objects.filter(pk=pk, secret_expiry_notified_days=threshold).update(
        secret_expiry_notified_days=previous
    )


def _notify_secret_expiry(authentication, *, days_left):
    """Send the reminder; False when no mail server took it (the log says why)."""
    when, subject = mail.expiry_wording(authentication, "client secret", days_left=days_left)
    context = {
        "authentication": authentication,
        "days_left": days_left,
        "expires_on": authentication.client_secret_expires_on,
        "admin_url": mail.admin_url(authentication),
    }
    try:
        mail.notify("secret_expiry", context, subject=subject)
    except Exception as err:  # Whatever stopped it, the reminder is still owed.
        mail_trouble = isinstance(err, (smtplib.SMTPException, OSError))
        logger.warning(
            "Could not send the secret-expiry email (%s): %r",
            subject,
            err,
            exc_info=not mail_trouble,
        )
        return False
    authentication.record(
        Event.Kind.SECRET_EXPIRY,
        detail=f"Client secret expires on {authentication.client_secret_expires_on} ({when}).",
    )
    return True
