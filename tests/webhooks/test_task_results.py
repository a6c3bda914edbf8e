"""The task backend's result rows (one per notification batch and retry) do not pile up, and a
killed worker's rows do not stay "running" forever.

django-tasks-db never deletes a result row; `purge_history` and the cron run
(`refresh_tokens`) delete finished ones past the notifications' retention, in bounded
batches, and close the rows of a worker that died once its claim has run out.
"""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from authentications.webhooks import retention
from authentications.webhooks import tasks as change_tasks
from authentications.webhooks.models import RETENTION, ChangeNotification
from tests.webhooks.helpers import make_subscription, notification_item, post_notifications

pytestmark = pytest.mark.django_db


def task_row(status, *, age=timedelta(0), record_keys=("k",)):
    result = change_tasks.deliver_records.enqueue(list(record_keys))
    when = timezone.now() - age
    DBTaskResult.objects.filter(pk=result.id).update(
        status=status,
        started_at=when if status != TaskResultStatus.READY else None,
        finished_at=when
        if status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
        else None,
    )
    return DBTaskResult.objects.get(pk=result.id)


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def old_and_young_rows():
    old = RETENTION + timedelta(days=1)
    gone = [
        task_row(TaskResultStatus.SUCCESSFUL, age=old),
        task_row(TaskResultStatus.SUCCESSFUL, age=old),
        task_row(TaskResultStatus.FAILED, age=old),
    ]
    kept = [
        task_row(TaskResultStatus.SUCCESSFUL, age=RETENTION - timedelta(days=1)),
        task_row(TaskResultStatus.READY, age=old),  # Not run yet: never pruned.
    ]
    return gone, kept


@pytest.mark.parametrize("command", ["purge_history", "refresh_tokens"])
def test_finished_task_rows_past_the_retention_are_deleted(command):
    gone, kept = old_and_young_rows()

    output = run(command)

    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == {row.pk for row in kept}
    if command == "purge_history":
        assert "3 finished task results older than 30 days" in output


def test_purge_history_dry_run_counts_task_rows_and_deletes_none():
    old_and_young_rows()

    output = run("purge_history", "--dry-run")

    assert "Would delete" in output and "3 finished task results" in output
    assert DBTaskResult.objects.count() == 5


def test_task_rows_are_deleted_in_bounded_batches():
    for _ in range(5):
        task_row(TaskResultStatus.SUCCESSFUL, age=RETENTION + timedelta(days=1))

    with CaptureQueriesContext(connection) as queries:
        deleted = retention.prune_task_results(timezone.now(), batch_size=2)

    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert deleted == 5 and DBTaskResult.objects.count() == 0
    assert len(deletes) == 3  # 2 + 2 + 1 ids: never one statement over the whole table.


def test_a_killed_workers_running_rows_are_closed_after_the_claim_timeout(
    client, make_authentication, settings
):
    settings.BC_NOTIFICATION_CLAIM_SECONDS = 300
    subscription = make_subscription(make_authentication())
    post_notifications(client, [notification_item(subscription, "c-live")])
    live = ChangeNotification.objects.get()
    ChangeNotification.objects.update(
        status="delivering", claimed_until=timezone.now() + timedelta(seconds=60)
    )
    DBTaskResult.objects.all().delete()
    dead = task_row(TaskResultStatus.RUNNING, age=timedelta(seconds=400))
    recent = task_row(TaskResultStatus.RUNNING, age=timedelta(seconds=10))
    # Started long ago, but a notification of its batch is claimed right now: still working.
    working = task_row(
        TaskResultStatus.RUNNING, age=timedelta(seconds=400), record_keys=[live.record_key]
    )

    run("refresh_tokens")

    dead.refresh_from_db()
    assert dead.status == TaskResultStatus.FAILED and dead.finished_at is not None
    assert dead.exception_class_path == "authentications.webhooks.retention.WorkerDied"
    assert dead.task_result.errors[0].exception_class is retention.WorkerDied
    statuses = dict(DBTaskResult.objects.values_list("pk", "status"))
    assert statuses[recent.pk] == statuses[working.pk] == TaskResultStatus.RUNNING


def test_old_delivered_notifications_are_purged_by_purge_history_too(client, make_authentication):
    subscription = make_subscription(make_authentication())
    post_notifications(client, [notification_item(subscription, "c-1")])
    ChangeNotification.objects.update(
        status="delivered", delivered_at=timezone.now() - RETENTION - timedelta(days=1)
    )

    output = run("purge_history")

    assert ChangeNotification.objects.count() == 0
    assert "1 delivered notification" in output
