"""cron: refresh access tokens before they expire and keep idle connections alive.

Exit status 0 when every refresh succeeded (or nothing was due), 1 when any failed or a
secret-expiry reminder could not be sent, 2 on bad arguments, so cron mail and monitoring
notice a broken connection.
"""

import argparse
import json
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from authentications.connections import credentials, cron, policies
from authentications.connections.models import Authentication
from authentications.kit.fields import KEY_MISSING
from authentications.kit.formatting import when
from authentications.management import housekeeping
from authentications.webhooks import cron as subscription_cron


def _positive_int(value):
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def _dry_run_outcome(row):
    """A row no key decrypts would fail the real run: report it as failed already."""
    if row.cannot_decrypt:
        return cron.Outcome(
            row.name, cron.Result.FAILED, error_code="key_missing", error=KEY_MISSING
        )
    return cron.Outcome(row.name, cron.Result.DUE, row.access_token_expires_at)


class Command(BaseCommand):
    help = (
        "Refresh the access tokens that expire soon, keep idle connections alive, and warn "
        "before client secrets expire. Safe to run from several hosts at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--within",
            type=_positive_int,
            default=15,
            metavar="MINUTES",
            help="Refresh tokens expiring within this many minutes (default 15).",
        )
        parser.add_argument(
            "--keep-alive-hours",
            type=_positive_int,
            default=24,
            metavar="HOURS",
            help="Refresh connections not refreshed for this many hours (default 24).",
        )
        parser.add_argument(
            "--all", action="store_true", help="Refresh every connected authentication now."
        )
        parser.add_argument(
            "--name",
            action="append",
            default=[],
            help="Refresh this authentication now (repeatable); only the named ones.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what is due; change nothing."
        )
        parser.add_argument(
            "--json", action="store_true", help="One JSON object per authentication."
        )
        parser.add_argument(
            "--workers",
            type=_positive_int,
            default=8,
            help="Refresh this many authentications at a time (default 8).",
        )

    def handle(self, *args, **options):
        started = timezone.now()
        selected, needed = self._select(options, started=started)
        by_person = bool(options["name"])  # Named one by one: a person asks.
        if options["dry_run"]:
            outcomes = [_dry_run_outcome(row) for row in selected]
            reminders = cron.Reminders(sent=housekeeping.expiry_reminders_due(), unsent=[])
        else:
            outcomes = cron.refresh_many(
                selected, needed=needed, workers=options["workers"], by_person=by_person
            )
            reminders = housekeeping.send_expiry_reminders()
            housekeeping.purge()  # Finished sign-ins, old events, delivered notifications.
        self._report(outcomes, reminders, options)
        dry_run, as_json = options["dry_run"], options["json"]
        failed = subscription_cron.keep_alive(self.stdout, dry_run=dry_run, as_json=as_json)
        self._exit_status(outcomes, reminders)
        if failed:
            raise CommandError(f"{failed} webhook subscription renewals failed.", returncode=1)

    @staticmethod
    def _exit_status(outcomes, reminders):
        failed = sum(1 for outcome in outcomes if outcome.outcome in ("failed", "skipped"))
        problems = [f"{failed} of {len(outcomes)} refreshes failed."] if failed else []
        if reminders.unsent:
            count = len(reminders.unsent)
            problems.append(f"{count} secret-expiry reminder{'s' if count != 1 else ''} not sent.")
        if problems:
            raise CommandError(" ".join(problems), returncode=1)

    def _select(self, options, *, started):
        if options["name"]:
            names = set(options["name"])
            rows = list(Authentication.objects.filter(name__in=names))
            unknown = names - {row.name for row in rows}
            if unknown:
                raise CommandError(
                    f"No authentication named {', '.join(sorted(unknown))}.", returncode=2
                )
            return rows, policies.since_run_started(started)
        if options["all"]:
            rows = Authentication.objects.exclude(
                status__in=[
                    Authentication.Status.NOT_CONNECTED,
                    Authentication.Status.NEEDS_SIGN_IN,
                ]
            )
            return list(rows), policies.since_run_started(started)
        due = policies.cron_due(
            within_minutes=options["within"], keep_alive_hours=options["keep_alive_hours"]
        )
        return list(due.select(cron.refreshable())), due

    def _report(self, outcomes, reminders, options):
        if options["json"]:
            for outcome in outcomes:
                self.stdout.write(json.dumps(outcome.as_dict()))
            return
        skipped = [outcome for outcome in outcomes if outcome.outcome == cron.Result.SKIPPED]
        for outcome in outcomes:
            if outcome.outcome != cron.Result.SKIPPED:
                self.stdout.write(self._line(outcome))
        for error, count in Counter(outcome.error for outcome in skipped).items():
            # One line for a whole outage, not one per connection.
            self.stdout.write(f"Skipped {count} connection{'s' if count != 1 else ''}: {error}")
        for row, days_left in reminders.sent:
            verb = "would warn" if options["dry_run"] else "warned"
            self.stdout.write(
                f"{row.get_credential_type_display()} of {row.name}: {verb} ({days_left} days "
                f"left, expires {credentials.expires_on(row)})."
            )
        for row, days_left in reminders.unsent:
            self.stdout.write(
                f"{row.get_credential_type_display()} of {row.name}: could not warn ({days_left} "
                f"days left, expires {credentials.expires_on(row)}): the email was not sent; "
                "the next run tries again."
            )
        self.stdout.write(self._summary(outcomes, dry_run=options["dry_run"]))

    @staticmethod
    def _line(outcome):
        expires = when(outcome.expires_at, zone=True)
        if outcome.outcome == cron.Result.FAILED:
            return f"{outcome.name}: FAILED {outcome.error_code}: {outcome.error}"
        if outcome.outcome == cron.Result.DUE:
            return f"{outcome.name}: due (token expires {expires})"
        if outcome.outcome == cron.Result.FRESH:
            return f"{outcome.name}: already refreshed elsewhere, valid until {expires}"
        return f"{outcome.name}: refreshed, valid until {expires}"

    @staticmethod
    def _summary(outcomes, *, dry_run):
        if not outcomes:
            return "Nothing due."
        if dry_run:
            return f"{len(outcomes)} due (dry run, nothing changed)."
        counts = Counter(outcome.outcome for outcome in outcomes)
        summary = (
            f"{counts[cron.Result.REFRESHED]} refreshed, {counts[cron.Result.FRESH]} already "
            f"fresh, {counts[cron.Result.FAILED]} failed"
        )
        skipped = counts[cron.Result.SKIPPED]
        return summary + (f", {skipped} skipped." if skipped else ".")
