"""What is deleted, and when, of change notifications: delivered notifications and the task
backend's finished result rows.

Every notification batch and retry leaves a django-tasks-db result row that the backend never
deletes, and a worker killed mid-task leaves its row "running" for ever. `refresh_tokens`
purges on every run; `purge_history` does the same on its own (both through
`management.housekeeping`).
"""

from django.apps import apps

from authentications.webhooks import delivery, tasks
from authentications.webhooks.models import RETENTION, ChangeNotification

BATCH_SIZE = 1_000  # Ids per DELETE: no statement locks or logs a whole table at once.
DELIVER_TASK = tasks.deliver_records.module_path


class WorkerDied(Exception):
    """Recorded on a task result row whose worker stopped while running it (killed, OOM)."""


def purge(now, *, dry_run=False):
    """Delete (or with `dry_run`, count) delivered notifications and finished task rows past
    RETENTION, then close the rows of dead workers; (notifications, task results)."""
    notifications = _delete_in_batches(delivered_notifications(now), dry_run=dry_run)
    task_results = prune_task_results(now, dry_run=dry_run)
    if not dry_run:
        close_dead_task_results(now)
    return notifications, task_results


def delivered_notifications(now):
    """Delivered notifications past RETENTION (kept that long for the admin)."""
    return ChangeNotification.objects.filter(
        status=ChangeNotification.Status.DELIVERED, delivered_at__lt=now - RETENTION
    )


def _task_results():
    """django-tasks-db's result model, or None when another TASKS backend is in use."""
    if not apps.is_installed("django_tasks_db"):
        return None
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult


def prune_task_results(now, *, dry_run=False, batch_size=BATCH_SIZE):
    """Delete finished (succeeded or failed) task result rows older than RETENTION."""
    model = _task_results()
    if model is None:
        return 0
    old = model.objects.finished().filter(finished_at__lt=now - RETENTION)
    return _delete_in_batches(old, dry_run=dry_run, batch_size=batch_size)


def _delete_in_batches(queryset, *, dry_run, batch_size=BATCH_SIZE):
    if dry_run:
        return queryset.count()
    model, total = queryset.model, 0
    while ids := list(queryset.order_by().values_list("pk", flat=True)[:batch_size]):
        total += model.objects.filter(pk__in=ids).delete()[0]
    return total


def close_dead_task_results(now):
    """Mark failed the task rows left "running" by a worker that was killed.

    A row is dead once it started longer than BC_NOTIFICATION_CLAIM_SECONDS ago and, for a
    delivery task, none of its records is claimed right now (a long batch still working holds
    a live claim). A task still running after all simply records its own end over this.
    Returns how many were closed.
    """
    model = _task_results()
    if model is None:
        return 0
    from django_tasks_db.compat import TaskResultStatus

    started_before = now - delivery.claim_duration()
    running = model.objects.running().filter(started_at__lt=started_before)
    dead = [
        row.pk for row in running.only("pk", "task_path", "args_kwargs") if not _alive(row, now)
    ]
    return model.objects.filter(pk__in=dead).update(
        status=TaskResultStatus.FAILED,
        finished_at=now,
        exception_class_path=f"{WorkerDied.__module__}.{WorkerDied.__qualname__}",
        traceback="The worker stopped while running this task (killed, out of memory or "
        "crashed); closed after BC_NOTIFICATION_CLAIM_SECONDS by the cron run.",
    )


def _alive(row, now):
    if row.task_path != DELIVER_TASK:
        return False
    record_keys = (row.args_kwargs.get("args") or [[]])[0]
    return ChangeNotification.objects.filter(
        record_key__in=record_keys,
        status=ChangeNotification.Status.DELIVERING,
        claimed_until__gte=now,
    ).exists()
