"""What `refresh_tokens` and `purge_history` do beyond refreshing, composed across capabilities.

Each capability knows its own reminders and its own retention; only this door sees them all,
so no capability imports another to run them together. Not in `commands/`: Django would list
it as a command.
"""

from dataclasses import dataclass

from django.utils import timezone

from authentications.api import retention as api_retention
from authentications.certificates import cron as certificate_cron
from authentications.connections import cron as connection_cron
from authentications.connections import retention as connection_retention
from authentications.webhooks import retention as webhook_retention


def expiry_reminders_due(*, today=None):
    """(authentication, days left) for every reminder the next real run would send:
    secrets and certificates in use alike, so `--dry-run` shows what cron will email."""
    days = connection_cron.SECRET_REMINDER_DAYS
    secrets = [(row, left) for row, left, _ in connection_cron.secret_reminders_due(today=today)]
    certificates = certificate_cron.due(days=days, today=today)
    return secrets + [(cert.authentication, left) for cert, left, _ in certificates]


def send_expiry_reminders(*, today=None):
    """Email each secret and certificate reminder (30, 7, 1 days) once; see `Reminders`."""
    reminders = connection_cron.send_secret_reminders(today=today)
    days = connection_cron.SECRET_REMINDER_DAYS
    return certificate_cron.send(reminders, days=days, today=today)


@dataclass(frozen=True)
class Purged:
    sign_ins: int
    events: int
    notifications: int = 0
    task_results: int = 0
    api_calls: int = 0


def purge(*, now=None, dry_run=False):
    """Delete (or with `dry_run`, count) what is past its retention; close dead task rows."""
    now = now or timezone.now()
    sign_ins, events = connection_retention.purge(now, dry_run=dry_run)
    notifications, task_results = webhook_retention.purge(now, dry_run=dry_run)
    api_calls = api_retention.purge(now, dry_run=dry_run)
    return Purged(sign_ins, events, notifications, task_results, api_calls)
