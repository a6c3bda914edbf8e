"""Many processes and threads want a token at once: Microsoft is asked exactly once.

Real OS processes (multiprocessing, 'spawn'), each with its own Django and database
connections, against the fake Microsoft whose refresh tokens are single-use: a second
refresh with the same token would fail with invalid_grant and break the connection. Runs
on whichever database the suite uses (a SQLite file, or PostgreSQL with DATABASE_URL).
"""

import json
import multiprocessing
import os
import queue
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.db import connection
from django.utils import timezone

# No model import at module level: spawned children import this module before
# django.setup(), to find the function they run.

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stress]

PROCESSES = 4
THREADS = 8
START_TIMEOUT = 120


def _bootstrap(database, authority):
    """In a spawned child: Django on the parent's test database and fake Microsoft."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcconnect.settings")
    from django.conf import settings

    settings.DATABASES = {"default": database}
    settings.BC_AUTHORITY_HOST = settings.BC_API_HOST = authority
    import django

    django.setup()


def _ask_for_tokens(database, authority, pk, threads, ready, start, results):
    _bootstrap(database, authority)
    from django.db import connection as child_connection

    from authentications.connections.tokens import TokenError, get_access_token

    def ask():
        start.wait(START_TIMEOUT)
        try:
            results.put(("ok", get_access_token(pk)))
        except TokenError as err:
            results.put(("error", f"{err.code}: {err.message}"))
        except Exception as err:  # Reported to the parent, which fails the test.
            results.put(("crash", repr(err)))
        finally:
            child_connection.close()

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    ready.put(os.getpid())
    for worker in workers:
        worker.join()


def _run_refresh_tokens(database, authority, ready, start, results):
    _bootstrap(database, authority)
    from django.core.management import CommandError, call_command

    out = StringIO()
    ready.put(os.getpid())
    start.wait(START_TIMEOUT)
    try:
        call_command("refresh_tokens", "--json", "--workers", "4", stdout=out)
        code = 0
    except CommandError as err:
        code = err.returncode
    results.put((code, out.getvalue()))


def _start_together(target, args_for, count):
    """Start `count` processes, let them set up, then release them at the same moment."""
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    processes = [
        context.Process(target=target, args=(*args_for(n), ready, start, results))
        for n in range(count)
    ]
    for process in processes:
        process.start()
    deadline = time.monotonic() + START_TIMEOUT
    waiting = len(processes)
    while waiting:
        try:
            ready.get(timeout=0.5)
            waiting -= 1
        except queue.Empty:
            crashed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            assert not crashed and time.monotonic() < deadline, "a child did not start"
    start.set()
    return processes, results


def _finish(processes):
    for process in processes:
        process.join(START_TIMEOUT)
        assert process.exitcode == 0


def _database():
    return dict(connection.settings_dict)


def test_many_processes_and_threads_refresh_a_nearly_expired_token_once(
    make_authentication, sign_in_at_microsoft, fake_microsoft
):
    from authentications.connections.models import Authentication

    authentication = sign_in_at_microsoft(make_authentication())
    Authentication.objects.filter(pk=authentication.pk).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=30)
    )
    fake_microsoft.entra.token_latency = 0.3  # Everyone arrives while the refresh runs.
    before = fake_microsoft.entra.count("refresh_token")

    processes, results = _start_together(
        _ask_for_tokens,
        lambda n: (_database(), fake_microsoft.url, authentication.pk, THREADS),
        PROCESSES,
    )
    answers = [results.get(timeout=START_TIMEOUT) for _ in range(PROCESSES * THREADS)]
    _finish(processes)

    stored = Authentication.objects.get(pk=authentication.pk)
    assert [kind for kind, _ in answers if kind != "ok"] == [], answers
    assert {token for _, token in answers} == {stored.access_token}
    assert stored.access_token != authentication.access_token
    assert fake_microsoft.entra.count("refresh_token") - before == 1
    assert fake_microsoft.entra.refresh_token_reuse == 0
    assert stored.status == Authentication.Status.CONNECTED
    assert stored.lease_id == ""


def test_two_refresh_tokens_runs_started_together_refresh_each_authentication_once(
    make_authentication, sign_in_at_microsoft, fake_microsoft
):
    from authentications.connections.models import Authentication

    names = [f"Due {n:02d}" for n in range(12)]
    for name in names:
        sign_in_at_microsoft(make_authentication(name=name))
    Authentication.objects.update(access_token_expires_at=timezone.now() + timedelta(minutes=1))
    fake_microsoft.entra.token_latency = 0.1
    before = fake_microsoft.entra.count("refresh_token")

    processes, results = _start_together(
        _run_refresh_tokens, lambda n: (_database(), fake_microsoft.url), 2
    )
    runs = [results.get(timeout=START_TIMEOUT) for _ in processes]
    _finish(processes)

    assert [code for code, _ in runs] == [0, 0], runs
    lines = [json.loads(line) for _, output in runs for line in output.splitlines()]
    refreshed = sorted(line["name"] for line in lines if line["outcome"] == "refreshed")
    assert refreshed == names  # Each exactly once, by one run or the other.
    assert {line["outcome"] for line in lines} <= {"refreshed", "fresh"}
    assert fake_microsoft.entra.count("refresh_token") - before == len(names)
    assert fake_microsoft.entra.refresh_token_reuse == 0
