"""cron runs `refresh_tokens`: due tokens are refreshed, failures make the run fail."""

import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from authentications.connections import cron, oauth
from authentications.connections.models import Authentication, Event
from tests.helpers import ROOT

# Worker threads open their own database connections: they must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connected_named(make_authentication, sign_in_at_microsoft):
    def make(name, *, expires_in=None, refreshed_hours_ago=None):
        authentication = sign_in_at_microsoft(make_authentication(name=name))
        changes = {}
        if expires_in is not None:
            changes["access_token_expires_at"] = timezone.now() + timedelta(seconds=expires_in)
        if refreshed_hours_ago is not None:
            changes["last_refreshed_at"] = timezone.now() - timedelta(hours=refreshed_hours_ago)
        Authentication.objects.filter(pk=authentication.pk).update(**changes)
        return Authentication.objects.get(pk=authentication.pk)

    return make


def run(*args):
    out = StringIO()
    call_command("refresh_tokens", *args, stdout=out)
    return out.getvalue()


def run_failing(*args):
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("refresh_tokens", *args, stdout=out)
    return out.getvalue(), caught.value


def token_of(authentication):
    return Authentication.objects.get(pk=authentication.pk).access_token


def test_nothing_due_is_a_quiet_success(connected_named, fake_microsoft):
    connected_named("Fresh")

    assert run() == "Nothing due.\n"
    assert fake_microsoft.entra.count("refresh_token") == 0


def test_tokens_expiring_within_the_window_are_refreshed(connected_named, fake_microsoft):
    soon = connected_named("Soon", expires_in=10 * 60)
    later = connected_named("Later", expires_in=40 * 60)
    expired = connected_named("Expired", expires_in=-60)

    output = run()

    assert token_of(soon) != soon.access_token
    assert token_of(expired) != expired.access_token
    assert token_of(later) == later.access_token
    assert "Soon: refreshed, valid until" in output
    assert "2 refreshed, 0 already fresh, 0 failed." in output
    assert fake_microsoft.entra.count("refresh_token") == 2
    run("--within", "60")
    assert token_of(later) != later.access_token


def test_idle_connections_are_kept_alive(connected_named, fake_microsoft):
    idle = connected_named("Idle", refreshed_hours_ago=25)
    recent = connected_named("Recent", refreshed_hours_ago=23)

    run()

    assert token_of(idle) != idle.access_token
    assert token_of(recent) == recent.access_token
    stored = Authentication.objects.get(pk=idle.pk)
    assert stored.sign_in_valid_until > timezone.now() + timedelta(days=89)
    run("--keep-alive-hours", "48")
    assert fake_microsoft.entra.count("refresh_token") == 1


def test_all_refreshes_every_connected_authentication(
    connected_named, make_authentication, fake_microsoft
):
    first, second = connected_named("First"), connected_named("Second")
    make_authentication(name="Never signed in")

    output = run("--all")

    assert token_of(first) != first.access_token
    assert token_of(second) != second.access_token
    assert "2 refreshed" in output


def test_name_refreshes_only_the_named_ones(connected_named, fake_microsoft):
    one, two, three = (connected_named(name) for name in ("One", "Two", "Three"))

    run("--name", "One", "--name", "Three")

    assert token_of(one) != one.access_token
    assert token_of(two) == two.access_token
    assert token_of(three) != three.access_token


def test_an_unknown_name_changes_nothing_and_exits_2(connected_named, fake_microsoft):
    connected_named("One", expires_in=60)

    _, error = run_failing("--name", "One", "--name", "Nope")

    assert error.returncode == 2
    assert "Nope" in str(error)
    assert fake_microsoft.entra.token_requests[-1][0] == "authorization_code"


def test_dry_run_shows_what_is_due_and_changes_nothing(connected_named, fake_microsoft):
    soon = connected_named("Soon", expires_in=60)
    connected_named("Later")

    output = run("--dry-run")

    assert "Soon: due" in output and "Later" not in output
    assert "1 due (dry run, nothing changed)." in output
    assert token_of(soon) == soon.access_token
    assert fake_microsoft.entra.count("refresh_token") == 0


def test_json_prints_one_object_per_authentication(connected_named, fake_microsoft):
    connected_named("Soon", expires_in=60)
    broken = connected_named("Broken", expires_in=60)
    Authentication.objects.filter(pk=broken.pk).update(
        status=Authentication.Status.NEEDS_SIGN_IN, refresh_token=""
    )

    output, error = run_failing("--json", "--name", "Soon", "--name", "Broken")

    assert error.returncode == 1
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["name"] for line in lines] == ["Broken", "Soon"]
    assert lines[0]["outcome"] == "failed" and lines[0]["error_code"] == "needs_sign_in"
    assert lines[1]["outcome"] == "refreshed" and lines[1]["expires_at"]
    assert set(lines[1]) == {"name", "outcome", "expires_at", "error_code", "error"}


def test_a_failure_is_reported_and_the_run_exits_1(
    connected_named, fake_microsoft, notify_list, mailoutbox
):
    good = connected_named("Good", expires_in=60)
    bad = connected_named("Bad", expires_in=60)
    Authentication.objects.filter(pk=bad.pk).update(refresh_token="fake-rt-unknown")

    output, error = run_failing("--json")

    assert error.returncode == 1
    lines = {line["name"]: line for line in map(json.loads, output.splitlines())}
    assert set(lines) == {"Good", "Bad"}
    assert lines["Good"]["outcome"] == "refreshed"
    assert lines["Good"]["expires_at"].startswith(str(timezone.now().year))
    assert lines["Good"]["error_code"] is None
    assert lines["Bad"] == {
        "name": "Bad",
        "outcome": "failed",
        "expires_at": None,
        "error_code": "AADSTS70008",
        "error": lines["Bad"]["error"],
    }
    assert token_of(good) != good.access_token
    assert len(mailoutbox) == 1
    # The next run does not email again, and the broken one is no longer due.
    assert run() == "Nothing due.\n"
    assert len(mailoutbox) == 1


def test_a_transient_failure_exits_1_and_keeps_the_tokens(connected_named, fake_microsoft):
    soon = connected_named("Soon", expires_in=60)
    fake_microsoft.entra.fail_next_token_request(("status", 503))

    output, error = run_failing()

    assert error.returncode == 1
    assert "Soon: FAILED" in output and "0 refreshed, 0 already fresh, 1 failed." in output
    stored = Authentication.objects.get(pk=soon.pk)
    assert stored.access_token == soon.access_token
    assert stored.refresh_token == soon.refresh_token
    assert stored.status == Authentication.Status.FAILING


def test_workers_bound_the_pool_and_every_due_one_is_refreshed(connected_named, fake_microsoft):
    due = [connected_named(f"Due {n}", expires_in=60) for n in range(5)]

    output = run("--workers", "2")

    assert "5 refreshed" in output
    assert all(token_of(row) != row.access_token for row in due)
    assert fake_microsoft.entra.count("refresh_token") == 5


@pytest.mark.parametrize(
    "args",
    [["--workers", "0"], ["--within", "soon"], ["--keep-alive-hours", "-1"], ["--bogus"]],
    ids=["workers 0", "within not a number", "negative keep-alive", "unknown option"],
)
def test_bad_arguments_exit_2_without_touching_anything(args):
    result = subprocess.run(
        [sys.executable, "manage.py", "refresh_tokens", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "error:" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


# --- client secret expiry ---------------------------------------------------------------


def test_secret_expiry_is_announced_once_at_30_7_and_1_days(
    make_authentication, fake_microsoft, notify_list, mailoutbox
):
    today = timezone.localdate()
    authentication = make_authentication(
        name="Expiring", client_secret_expires_on=today + timedelta(days=25)
    )
    make_authentication(name="Far", client_secret_expires_on=today + timedelta(days=200))

    output = run()
    run()

    assert "Client secret of Expiring: warned (25 days left" in output
    assert len(mailoutbox) == 1
    assert "Expiring" in mailoutbox[0].subject and "25 days" in mailoutbox[0].body
    assert "Certificates & secrets" in mailoutbox[0].body
    expires_on = authentication.client_secret_expires_on
    for days_left, emails in ((8, 1), (7, 2), (3, 2), (1, 3), (0, 3), (-5, 3)):
        cron.send_secret_reminders(today=expires_on - timedelta(days=days_left))
        assert len(mailoutbox) == emails, days_left
    assert authentication.events.filter(kind=Event.Kind.SECRET_EXPIRY).count() == 3


def test_a_new_secret_date_restarts_the_reminders(make_authentication, notify_list, mailoutbox):
    today = timezone.localdate()
    authentication = make_authentication(client_secret_expires_on=today + timedelta(days=5))
    run()
    Authentication.objects.filter(pk=authentication.pk).update(
        client_secret_expires_on=today + timedelta(days=700)
    )
    run()  # Far away again: forget the reminders sent for the old secret.
    cron.send_secret_reminders(today=today + timedelta(days=690))

    assert len(mailoutbox) == 2


def test_dry_run_sends_no_reminder(make_authentication, notify_list, mailoutbox):
    make_authentication(
        name="Expiring", client_secret_expires_on=timezone.localdate() + timedelta(days=3)
    )

    output = run("--dry-run")

    assert "Client secret of Expiring: would warn (3 days left" in output
    assert mailoutbox == []


def test_a_run_fetches_the_openid_discovery_once(connected_named, fake_microsoft):
    for n in range(6):
        connected_named(f"Due {n}", expires_in=60)
    oauth.clear_http_cache()  # As in a new cron process.
    fake_microsoft.entra.discovery_requests = 0

    run("--workers", "6")

    assert fake_microsoft.entra.discovery_requests == 1
    assert fake_microsoft.entra.count("refresh_token") == 6


def test_no_secret_appears_in_the_output_or_logs(connected_named, fake_microsoft, caplog):
    caplog.set_level("DEBUG")
    soon = connected_named("Soon", expires_in=60)
    broken = connected_named("Broken", expires_in=60)
    Authentication.objects.filter(pk=broken.pk).update(refresh_token="fake-rt-not-known")

    human, _ = run_failing()
    connected_named("Later", expires_in=60)
    as_json = run("--json", "--all")

    stored = Authentication.objects.get(pk=soon.pk)
    secrets = {
        soon.access_token,
        soon.refresh_token,
        stored.access_token,
        stored.refresh_token,
        "fake-rt-not-known",
        soon.client_secret,
    }
    for text in (human, as_json, caplog.text):
        assert not any(secret in text for secret in secrets)
