"""The real worker in a child process: stopping it loses nothing, a handler that kills it is
parked, SIGTERM lets the delivery under way finish, a burst arrives once per change and in
order. `manage.py db_worker` here; .ci/run runs them again on RQ (`manage.py rqworker`)."""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from authentications.webhooks import tasks
from authentications.webhooks.models import ChangeNotification
from tests.helpers import ROOT, child_env, run_manage_py
from tests.webhooks.helpers import (
    make_subscription,
    notification_item,
    on_rq,
    post_notifications,
    worker_command,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.task_engines]
Status = ChangeNotification.Status


def worker_env(log_path, *, delay="0"):
    return child_env(
        BC_NOTIFICATION_HANDLERS="tests.webhooks.notification_handlers",
        NOTIFICATION_LOG=str(log_path),
        NOTIFICATION_DELAY=delay,
        DEBUG="false",
    )


def delivered(log_path):
    if not log_path.exists():
        return []
    return [line.split() for line in log_path.read_text().splitlines()]


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_no_notification_is_lost_when_the_worker_is_killed_and_started_again(
    client, connected_row, tmp_path
):
    log_path = tmp_path / "delivered.log"
    subscription = make_subscription(connected_row)
    for number in range(20):
        post_notifications(client, [notification_item(subscription, f"c-{number}")])
    worker = subprocess.Popen(
        [sys.executable, "manage.py", *worker_command(batch=False)],
        cwd=ROOT,
        env=worker_env(log_path, delay="0.05"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(lambda: len(delivered(log_path)) >= 3), worker.stderr
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # No clean shutdown: mid-delivery, claims held.
        worker.wait(timeout=30)
    for number in range(20, 30):  # BC goes on sending while no worker runs.
        post_notifications(client, [notification_item(subscription, f"c-{number}")])
    assert len(delivered(log_path)) < 30
    # Minutes later, cron runs: the killed worker's claim has lapsed, and the task it had
    # taken (its notification still waiting) is gone with it.
    later = timezone.now() - timedelta(minutes=10)
    ChangeNotification.objects.update(received_at=later)
    ChangeNotification.objects.filter(status=ChangeNotification.Status.DELIVERING).update(
        claimed_until=later
    )

    tasks.requeue_stalled()
    result = run_manage_py(*worker_command(), env=worker_env(log_path))

    assert result.returncode == 0, result.stderr
    records = {record for _, record, _ in delivered(log_path)}
    assert records == {f"c-{number}" for number in range(30)}
    assert set(ChangeNotification.objects.values_list("status", flat=True)) == {"delivered"}


def make_recipe(target, **variables):
    """The command line `make <target>` runs (make -n), as words."""
    assignments = [f"{name}={value}" for name, value in variables.items()]
    printed = subprocess.run(
        ["make", "-s", "-n", target, *assignments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return shlex.split(printed.strip().splitlines()[-1])


def manage_py_args(words):
    return words[words.index("manage.py") + 1 :]


def test_a_handler_that_kills_its_worker_is_parked_after_the_configured_tries(
    client, connected_row, tmp_path, settings
):
    settings.BC_NOTIFICATION_MAX_ATTEMPTS = 3  # cron's settings are the workers' settings.
    log_path = tmp_path / "delivered.log"
    env = worker_env(log_path) | {
        "NOTIFICATION_DIE_FOR": "c-poison",  # os._exit in the handler, as the OOM killer.
        "BC_NOTIFICATION_MAX_ATTEMPTS": "3",
        "BC_NOTIFICATION_CLAIM_SECONDS": "0.5",
    }
    subscription = make_subscription(connected_row)
    post_notifications(client, [notification_item(subscription, "c-poison", change_type="created")])
    post_notifications(client, [notification_item(subscription, "c-poison", change_type="updated")])
    for number in range(3):
        post_notifications(client, [notification_item(subscription, f"c-{number}")])
    exits = []

    for _ in range(6):  # A supervisor restarting the worker, cron running in between.
        worker = run_manage_py(*worker_command(), env=env)
        exits.append(worker.returncode)
        time.sleep(0.6)  # The dead worker's claim runs out ...
        tasks.requeue_stalled()  # ... and cron queues (or parks) it.
        post_notifications(client, [notification_item(subscription, f"c-late-{len(exits)}")])
        if ChangeNotification.objects.filter(status=Status.PARKED).exists():
            break
    final = run_manage_py(*worker_command(), env=env)

    # Died three times, then it was parked. RQ's worker outlives the forked process that
    # runs the handler, so there only the work horse died.
    assert exits == ([0, 0, 0] if on_rq() else [137, 137, 137]), exits
    assert final.returncode == 0, final.stderr
    poison, behind = ChangeNotification.objects.filter(record_id="c-poison").order_by("id")
    assert (poison.status, poison.attempts) == (Status.PARKED, 3)
    assert poison.last_error.startswith(
        "Worker died while handling (tests.webhooks.notification_handlers.record_customer_change)"
    )
    assert behind.status == Status.PENDING  # The record's later change keeps its place.
    others = ChangeNotification.objects.exclude(record_id="c-poison")
    assert set(others.values_list("status", flat=True)) == {Status.DELIVERED}
    assert {record for _, record, _ in delivered(log_path)} == {
        "c-0",
        "c-1",
        "c-2",
        "c-late-1",
        "c-late-2",
        "c-late-3",
    }


def long_running_worker():
    """The demo's worker (`make demo-worker`) on the database, RQ's documented one on RQ."""
    if on_rq():
        return worker_command(batch=False)
    return [*manage_py_args(make_recipe("demo-worker")), "--interval", "0.05", "--no-startup-delay"]


def test_sigterm_lets_the_demo_workers_current_delivery_finish(client, connected_row, tmp_path):
    log_path, started = tmp_path / "delivered.log", tmp_path / "started.log"
    subscription = make_subscription(connected_row)
    post_notifications(client, [notification_item(subscription, "c-1")])
    env = worker_env(log_path, delay="3") | {
        "NOTIFICATION_STARTED": str(started),
        "DEBUG": "true",  # As in the demo (.env): db_worker's --reload defaults to DEBUG.
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", *long_running_worker()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # Its own process group, signalled as a whole (systemd, Ctrl-C).
    )
    try:
        assert wait_for(started.exists), worker.stderr
        os.killpg(worker.pid, signal.SIGTERM)  # In the middle of the 3 s handler.
        returncode = worker.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)

    assert returncode == 0
    assert [record for _, record, _ in delivered(log_path)] == ["c-1"]
    assert ChangeNotification.objects.get().status == Status.DELIVERED
    if not on_rq():
        from django_tasks_db.models import DBTaskResult

        assert list(DBTaskResult.objects.values_list("status", flat=True)) == ["SUCCESSFUL"]


def test_a_second_sigterm_gives_the_delivery_back_for_a_retry(client, connected_row, tmp_path):
    log_path, started = tmp_path / "delivered.log", tmp_path / "started.log"
    subscription = make_subscription(connected_row)
    post_notifications(client, [notification_item(subscription, "c-1")])
    env = worker_env(log_path, delay="30") | {"NOTIFICATION_STARTED": str(started)}
    worker = subprocess.Popen(
        [sys.executable, "manage.py", *long_running_worker()],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(started.exists), worker.stderr
        worker.send_signal(signal.SIGTERM)  # "Shutting down gracefully" ...
        time.sleep(1.5 if on_rq() else 0.3)  # RQ takes a second signal within 1 s as an echo.
        worker.send_signal(signal.SIGTERM)  # ... "press Ctrl+C again to force".
        returncode = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()

    row = ChangeNotification.objects.get()
    assert returncode == 0 and delivered(log_path) == []  # Stopped at once, cleanly.
    if on_rq():
        # RQ's cold shutdown kills the forked process mid-handler: the claim lapses, cron
        # queues the change again, and the next worker delivers it.
        assert (row.status, row.attempts) == (Status.DELIVERING, 1)
        ChangeNotification.objects.update(claimed_until=timezone.now() - timedelta(minutes=1))
        tasks.requeue_stalled()
        result = run_manage_py(*worker_command(), env=worker_env(log_path))
        assert result.returncode == 0, result.stderr
        assert [record for _, record, _ in delivered(log_path)] == ["c-1"]
        return
    assert (row.status, row.attempts) == (Status.RETRYING, 1)  # Given back, not held.
    assert row.last_error.startswith("SystemExit")
    assert "record_customer_change" in row.last_error


def test_a_burst_reaches_the_handler_once_per_change_and_in_order_with_two_workers(
    client, connected_row, tmp_path
):
    """300 changes of 30 records in bodies of 10, as BC sends a busy hour, then two workers at
    once: every change once, each record's changes in the order BC sent them."""
    log_path = tmp_path / "delivered.log"
    subscription = make_subscription(connected_row)
    sent = {f"r-{number}": ["created", *["updated"] * 8, "deleted"] for number in range(30)}
    items = [
        notification_item(subscription, record, change_type=changes[position])
        for position in range(10)
        for record, changes in sent.items()
    ]
    for start in range(0, len(items), 10):
        assert post_notifications(client, items[start : start + 10]).status_code == 202

    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", *worker_command()],
            cwd=ROOT,
            env=worker_env(log_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read()

    received = {}
    for _, record, change_type in delivered(log_path):
        received.setdefault(record, []).append(change_type)
    assert received == sent
    assert set(ChangeNotification.objects.values_list("status", flat=True)) == {Status.DELIVERED}
