"""The tasks of change notifications, and the only module that puts them on the queue.

Run by whatever backend TASKS names (db_worker by default). Arguments are record keys only:
the notifications themselves are rows, so a task lost with a queue (another backend) loses
no change; `requeue_stalled` (cron) finds them again.
"""

import logging
from functools import partial

from django.db import transaction
from django_tasks import task
from django_tasks_db import DatabaseBackend

from authentications.kit import request_context
from authentications.webhooks import delivery

logger = logging.getLogger(__name__)


@task()
def deliver_records(record_keys, request_id=""):
    """Deliver; the log lines carry the id of the request that queued it (or a new one)."""
    with request_context.bound(request_context.given_or_new(request_id)):
        return delivery.deliver_records(record_keys, retry=queue_retry)


def queue_delivery(record_keys, *, run_after=None):
    """Queue one task delivering `record_keys`.

    The database backend queues in the caller's transaction: the task and the rows it names
    commit together. Any other queue (RQ on Redis) is told only once the rows are committed,
    or a fast worker would look for rows it cannot see yet; a queue that cannot be reached
    then loses nothing, the rows wait for cron's `requeue_stalled`.
    """
    queued = deliver_records
    backend = queued.get_backend()
    if run_after is not None and backend.supports_defer:
        queued = queued.using(run_after=run_after)
    record_keys, request_id = list(record_keys), request_context.current()
    if isinstance(backend, DatabaseBackend):
        queued.enqueue(record_keys, request_id=request_id)
    else:
        transaction.on_commit(partial(_enqueue_after_commit, queued, record_keys, request_id))


def _enqueue_after_commit(queued, record_keys, request_id):
    try:
        queued.enqueue(record_keys, request_id=request_id)
    except Exception as error:  # The queue's own failure (Redis down): the rows are kept.
        logger.warning(
            "Could not queue the delivery of %d record(s) (%s); cron queues them again.",
            len(record_keys),
            type(error).__name__,
        )


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
