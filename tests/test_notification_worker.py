"""The real worker (`manage.py db_worker`) in a child process: stopping it loses nothing."""

import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from authentications import notification_delivery
from authentications.subscription_models import ChangeNotification
from tests.bc_helpers import make_subscription, notification_item, post_notifications
from tests.helpers import ROOT, child_env, run_manage_py

pytestmark = pytest.mark.django_db(transaction=True)


def worker_env(log_path, *, delay="0"):
    return child_env(
        BC_NOTIFICATION_HANDLERS="tests.notification_handlers",
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
        [sys.executable, "manage.py", "db_worker", "--interval", "0.05", "--no-startup-delay"],
        cwd=ROOT,
        env=worker_env(log_path, delay="0.05"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(lambda: len(delivered(log_path)) >= 3), worker.stderr
    finally:
        worker.send_signal(signal.SIGKILL)  # No clean shutdown: mid-delivery, claims held.
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

    notification_delivery.requeue_stalled()
    result = run_manage_py(
        "db_worker",
        "--batch",
        "--no-startup-delay",
        "--interval",
        "0",
        env=worker_env(log_path),
    )

    assert result.returncode == 0, result.stderr
    records = {record for _, record, _ in delivered(log_path)}
    assert records == {f"c-{number}" for number in range(30)}
    assert set(ChangeNotification.objects.values_list("status", flat=True)) == {"delivered"}
