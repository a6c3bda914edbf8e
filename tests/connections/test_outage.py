"""When Microsoft is unreachable, a cron run gives up on it after a few failures in a row.

Every token request during an outage costs a timeout; a run over many connections must
not spend one per connection. After a few network failures in a row against the authority
host, the run skips the rest for that host: tokens untouched, status Failing, one line.
"""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from authentications.connections import oauth, tokens
from authentications.connections.models import Authentication, Event
from tests.fakes.outage import DeadHost

# Worker threads open their own database connections: they must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = tokens.UNREACHABLE_LIMIT


@pytest.fixture
def due(make_authentication, sign_in_at_microsoft):
    """`count` connected authentications whose tokens are due for refresh."""

    def make(count):
        rows = [sign_in_at_microsoft(make_authentication(name=f"Due {n}")) for n in range(count)]
        Authentication.objects.update(access_token_expires_at=timezone.now() + timedelta(minutes=2))
        return [Authentication.objects.get(pk=row.pk) for row in rows]

    return make


@pytest.fixture
def microsoft_at(settings):
    """Point bcconnect at a dead host instead of the fake Microsoft."""
    hosts = []

    def point(mode, **kwargs):
        host = DeadHost(mode, **kwargs).start()
        hosts.append(host)
        settings.BC_AUTHORITY_HOST = host.url
        oauth.clear_http_cache()
        return host

    yield point
    for host in hosts:
        host.stop()


def run_failing(*args):
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("refresh_tokens", *args, stdout=out)
    return out.getvalue(), caught.value


def untouched(rows):
    """Every token as it was, every connection Failing."""
    for row in rows:
        stored = Authentication.objects.get(pk=row.pk)
        assert (stored.access_token, stored.refresh_token) == (row.access_token, row.refresh_token)
        assert stored.access_token_expires_at == row.access_token_expires_at
        assert stored.status == Authentication.Status.FAILING
    return True


def ok_token_answer(n):
    body = {
        "token_type": "Bearer",
        "expires_in": 3600,
        "access_token": f"fake-at-in-between-{n}",
        "refresh_token": f"fake-rt-in-between-{n}",
    }
    return ("error", body, 200)


def test_after_a_few_dropped_token_requests_the_rest_are_skipped(due, fake_microsoft):
    rows = due(6)
    fake_microsoft.entra.fail_next_token_request(*[("drop",)] * 6)

    output, error = run_failing("--workers", "1")

    assert fake_microsoft.entra.count("refresh_token") == LIMIT  # Not one per connection.
    assert error.returncode == 1
    assert untouched(rows)
    lines = output.splitlines()
    assert sum("FAILED network" in line for line in lines) == LIMIT
    skipped = [line for line in lines if line.startswith("Skipped")]
    assert len(skipped) == 1  # One summary line, not one per connection.
    assert skipped[0].startswith(f"Skipped {6 - LIMIT} connections: Microsoft (")
    assert f"did not answer {LIMIT} requests in a row" in skipped[0]
    assert "tokens are kept" in skipped[0]
    assert lines[-1] == f"0 refreshed, 0 already fresh, {LIMIT} failed, {6 - LIMIT} skipped."
    last = Authentication.objects.get(pk=rows[-1].pk)
    assert last.last_error_code == "entra_unreachable"
    assert last.events.filter(kind=Event.Kind.REFRESH_FAILED).count() == 1


def test_skipped_connections_are_reported_one_by_one_in_json(due, fake_microsoft):
    due(5)
    fake_microsoft.entra.fail_next_token_request(*[("drop",)] * 5)

    output, _ = run_failing("--workers", "1", "--json")

    outcomes = [json.loads(line) for line in output.splitlines()]
    assert [line["outcome"] for line in outcomes].count("skipped") == 5 - LIMIT
    assert {line["error_code"] for line in outcomes if line["outcome"] == "skipped"} == {
        "entra_unreachable"
    }


def test_an_answer_in_between_starts_the_count_again(due, fake_microsoft):
    rows = due(6)
    fake_microsoft.entra.fail_next_token_request(
        ("drop",), ("drop",), ok_token_answer(1), ("drop",), ("drop",), ok_token_answer(2)
    )

    output, _ = run_failing("--workers", "1")

    assert fake_microsoft.entra.count("refresh_token") == 6  # Each one was tried.
    assert "2 refreshed, 0 already fresh, 4 failed." in output
    assert "Skipped" not in output
    assert len(rows) == 6


def test_a_refused_connection_is_given_up_on_and_the_tokens_kept(due, microsoft_at):
    rows = due(5)
    microsoft_at("refused")

    output, error = run_failing("--workers", "1")

    assert error.returncode == 1
    assert untouched(rows)
    assert output.count("FAILED network") == LIMIT
    assert f"Skipped {5 - LIMIT} connections" in output


def test_a_host_that_never_answers_is_given_up_on(due, microsoft_at, settings):
    settings.BC_HTTP_TIMEOUT = (0.5, 0.5)
    rows = due(5)
    host = microsoft_at("silent")

    output, error = run_failing("--workers", "1")

    assert host.connections == LIMIT
    assert error.returncode == 1
    assert untouched(rows)
    assert f"Skipped {5 - LIMIT} connections" in output


def test_threads_waiting_for_a_discovery_that_failed_do_not_repeat_it(
    due, microsoft_at, settings, cert_dir
):
    settings.BC_HTTP_TIMEOUT = (1.0, 1.0)
    rows = due(8)
    host = microsoft_at("silent-tls", cert_dir=cert_dir)

    output, error = run_failing("--workers", "4")

    # One discovery timed out; the three threads queued behind it failed with it instead
    # of each waiting for a timeout of its own in turn.
    assert host.connections <= 2
    assert untouched(rows)
    assert "Skipped " in output  # How many depends on which thread got there first.
    assert error.returncode == 1
