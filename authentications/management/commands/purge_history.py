"""Delete finished sign-ins and audit events past BC_EVENT_RETENTION_DAYS, and delivered
notifications and finished task results past 30 days (in batches of 1,000 ids).

`refresh_tokens` does the same on every run; this command is for doing it on its own
(or seeing, with --dry-run, what would go).
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from authentications.management import housekeeping
from authentications.webhooks.models import RETENTION


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


class Command(BaseCommand):
    help = (
        "Delete expired and used sign-ins and the audit events older than "
        "BC_EVENT_RETENTION_DAYS (the current connection's grant, credential and link "
        "events stay), delivered change notifications and finished task results older than "
        "30 days, API calls as old as the events; mark failed the task results of a worker "
        "that died."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args, **options):
        purged = housekeeping.purge(dry_run=options["dry_run"])
        verb = "Would delete" if options["dry_run"] else "Deleted"
        days = settings.BC_EVENT_RETENTION_DAYS
        events = (
            f"{_plural(purged.events, 'event')} older than {days} days"
            if days > 0
            else "no events (BC_EVENT_RETENTION_DAYS keeps them all)"
        )
        self.stdout.write(
            f"{verb} {_plural(purged.sign_ins, 'finished sign-in')} and {events}; "
            f"{_plural(purged.notifications, 'delivered notification')} and "
            f"{_plural(purged.task_results, 'finished task result')} older than "
            f"{RETENTION.days} days; {_plural(purged.api_calls, 'API call')} of the audit "
            "past the same retention as events."
        )
