"""Deliver again the change notifications no handler took (and, with --parked, parked ones).

Run it after a deploy that registers the missing handler (cron's `refresh_tokens` also queues
them once the handler exists). Exit status 0 when done, 2 on bad input (an entity that still
has no handler, an unknown option), with one line saying why and nothing changed.
"""

from django.core.management.base import BaseCommand, CommandError

from authentications.webhooks import handlers, tasks
from authentications.webhooks.models import ChangeNotification

Status = ChangeNotification.Status


def _notifications(count):
    return f"{count} notification{'' if count == 1 else 's'}"


class Command(BaseCommand):
    help = (
        'Queue again the change notifications left as "No handler" (and parked ones with '
        "--parked) whose entity now has a handler."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--entity",
            action="append",
            default=[],
            help="Only this entity set, e.g. customers (repeatable).",
        )
        parser.add_argument(
            "--parked",
            action="store_true",
            help="Also parked notifications (their handler kept failing or killed its worker).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count; queue nothing.")

    def handle(self, *args, **options):
        for entity in options["entity"]:
            if not handlers.handlers_for(entity):
                raise CommandError(
                    f"No handler is registered for {entity}: register one with "
                    f'@handlers.on("{entity}") (BC_NOTIFICATION_HANDLERS), then '
                    "replay.",
                    returncode=2,
                )
        statuses = [Status.NO_HANDLER, *([Status.PARKED] if options["parked"] else [])]
        rows = ChangeNotification.objects.filter(status__in=statuses)
        if options["entity"]:
            rows = rows.filter(entity__in=options["entity"])
        replayed = tasks.replay(rows, dry_run=options["dry_run"])
        self._report(replayed, dry_run=options["dry_run"])

    def _report(self, replayed, *, dry_run):
        verb = "Would queue" if dry_run else "Queued"
        for entity, count in sorted(replayed.queued.items()):
            self.stdout.write(f"{verb} {_notifications(count)} of {entity} again.")
        for entity, count in sorted(replayed.unhandled.items()):
            self.stdout.write(
                f"{_notifications(count)} of {entity} left as they are: still no handler."
            )
        if not replayed.queued and not replayed.unhandled:
            self.stdout.write("Nothing to replay.")
