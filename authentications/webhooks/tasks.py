"""The tasks of change notifications, and the only module that puts them on the queue.

Run by whatever backend TASKS names (db_worker by default). Arguments are record keys only:
the notifications themselves are rows, so a task lost with a queue (another backend) loses
no change; `requeue_stalled` (cron) finds them again.
"""

from django_tasks import task

from authentications.kit import request_context
from authentications.webhooks import delivery


@task()
def deliver_records(record_keys, request_id=""):
    """Deliver; the log lines carry the id of the request that queued it (or a new one)."""
    with request_context.bound(request_context.given_or_new(request_id)):
        return delivery.deliver_records(record_keys, retry=queue_retry)


def queue_delivery(record_keys, *, run_after=None):
    """Queue one task delivering `record_keys` (in the caller's transaction when it has one)."""
    queued = deliver_records
    if run_after is not None and queued.get_backend().supports_defer:
        queued = queued.using(run_after=run_after)
    queued.enqueue(list(record_keys), request_id=request_context.current())


def queue_retry(record_key, at):
    """Queue `record_key` again for `at`: the retry of a record whose handler failed."""
    queue_delivery([record_key], run_after=at)


def replay(queryset, *, dry_run=False):
    """Give parked, retrying and no-handler notifications a fresh start and queue them;
    see `delivery.replay`."""
    replayed, record_keys = delivery.replay(queryset, dry_run=dry_run)
    if record_keys and not dry_run:
        queue_delivery(record_keys)
    return replayed


def requeue_stalled():
    """Queue the records whose delivery is due but may have no task; returns how many."""
    record_keys = delivery.stalled_records()
    if record_keys:
        queue_delivery(record_keys)
    return len(record_keys)
