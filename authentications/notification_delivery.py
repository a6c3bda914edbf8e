"""Delivering stored notifications to the site's handlers: at least once, in order per record.

Work is per record (`record_key`): a task takes the oldest open notification of a record,
claims it with one conditional UPDATE (so two workers never run the same one), runs the
handlers, and moves on to the record's next one. A later change of a record never overtakes
an earlier one: while the earlier one is retrying or parked, the later ones wait. A claim
has a deadline, so a worker killed mid-delivery only delays that record: `requeue_stalled`
(run by cron) queues it again.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import change_notifications
from .subscription_models import ChangeNotification

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 300  # A handler running longer than this may be run a second time.
MAX_ERROR = 2000
Status = ChangeNotification.Status


def queue_delivery(record_keys, *, run_after=None):
    """Queue one task delivering `record_keys` (in the caller's transaction when it has one)."""
    from .change_tasks import deliver_records

    task = deliver_records
    if run_after is not None and task.get_backend().supports_defer:
        task = task.using(run_after=run_after)
    task.enqueue(list(record_keys))


def deliver_records(record_keys):
    """Deliver each record's open notifications in order; returns how many were delivered."""
    return sum(deliver_record(record_key) for record_key in record_keys)


def deliver_record(record_key):
    delivered = 0
    while True:
        notification = _claim_next(record_key)
        if notification is None:
            return delivered
        if not _deliver(notification):
            return delivered
        delivered += 1


def _claim_next(record_key):
    """The record's oldest open notification, claimed; None when it is not ours to run now."""
    now = timezone.now()
    head = (
        ChangeNotification.objects.filter(record_key=record_key, status__in=ChangeNotification.OPEN)
        .select_related("subscription")
        .order_by("id")
        .first()
    )
    if head is None or not _runnable(head, now):
        return None
    claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
    claimed = ChangeNotification.objects.filter(
        pk=head.pk, status=head.status, claimed_until=head.claimed_until
    ).update(status=Status.DELIVERING, claimed_until=claimed_until)
    if not claimed:
        return None  # Another worker took it; it carries on with the record.
    head.status, head.claimed_until = Status.DELIVERING, claimed_until
    return head


def _runnable(head, now):
    if head.status == Status.PENDING:
        return True
    if head.status == Status.RETRYING:
        return head.next_attempt_at is None or head.next_attempt_at <= now
    if head.status == Status.DELIVERING:
        return head.claimed_until is None or head.claimed_until < now  # Its worker died.
    return False  # Parked: waits for a person.


def _deliver(notification):
    """Run the handlers; True when they all succeeded."""
    change = _change(notification)
    try:
        for handler in change_notifications.handlers_for(notification.entity):
            handler(change)
    except Exception as err:  # A handler's failure, whatever it is, is recorded, not lost.
        _failed(notification, err)
        return False
    finished = _ours(notification).update(
        status=Status.DELIVERED,
        delivered_at=timezone.now(),
        attempts=notification.attempts + 1,
        claimed_until=None,
        last_error="",
    )
    return bool(finished)  # 0: another worker holds it now; the record's next change waits.


def _ours(notification):
    """The notification while this worker's claim on it stands.

    A handler that outlived its claim may find another worker delivering the same row: that
    worker decides the row's fate, and this one must not move on to the record's next change.
    """
    return ChangeNotification.objects.filter(
        pk=notification.pk, status=Status.DELIVERING, claimed_until=notification.claimed_until
    )


def _change(notification):
    subscription = notification.subscription
    return change_notifications.Change(
        key=notification.key,
        authentication_id=subscription.authentication_id,
        company_id=subscription.company_id,
        entity=notification.entity,
        record_id=notification.record_id,
        change_type=notification.change_type,
        changed_at=notification.changed_at,
        filter=_filter(notification.resource) if notification.change_type == "collection" else "",
    )


def _filter(resource):
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(resource).query).get("$filter")
    return values[0] if values else ""


def _failed(notification, err):
    attempts = notification.attempts + 1
    error = f"{type(err).__name__}: {err}"[:MAX_ERROR]
    logger.warning(
        "Handler failed for %s (attempt %d): %s", notification, attempts, type(err).__name__
    )
    if attempts >= settings.BC_NOTIFICATION_MAX_ATTEMPTS:
        changes = {"status": Status.PARKED, "next_attempt_at": None}
    else:
        changes = {"status": Status.RETRYING, "next_attempt_at": timezone.now() + backoff(attempts)}
    failed = _ours(notification).update(
        attempts=attempts, last_error=error, claimed_until=None, **changes
    )
    if failed and changes["status"] == Status.RETRYING:
        queue_delivery([notification.record_key], run_after=changes["next_attempt_at"])


def backoff(attempts):
    """BC_NOTIFICATION_RETRY_SECONDS, doubled after each failure, at most a day."""
    seconds = settings.BC_NOTIFICATION_RETRY_SECONDS * 2 ** (attempts - 1)
    return timedelta(seconds=min(seconds, 86_400))


def retry(queryset):
    """Give parked (or waiting) notifications a fresh start and queue them; returns the count."""
    rows = list(queryset.filter(status__in=(Status.PARKED, Status.RETRYING)))
    for row in rows:
        ChangeNotification.objects.filter(pk=row.pk, status=row.status).update(
            status=Status.PENDING, attempts=0, next_attempt_at=None, claimed_until=None
        )
    if rows:
        queue_delivery(sorted({row.record_key for row in rows}))
    return len(rows)


def requeue_stalled():
    """Queue records whose delivery is due but may have no task: crashed worker, lost queue.

    Returns how many records were queued. Run by `refresh_tokens`; queueing a record twice is
    harmless, the claim lets one task deliver it.
    """
    now = timezone.now()
    stale = timedelta(minutes=1)
    due = ChangeNotification.objects.filter(
        Q(status=Status.PENDING, received_at__lt=now - stale)
        | Q(status=Status.RETRYING, next_attempt_at__lt=now - stale)
        | Q(status=Status.DELIVERING, claimed_until__lt=now)
    )
    record_keys = sorted(set(due.values_list("record_key", flat=True)))
    if record_keys:
        queue_delivery(record_keys)
    return len(record_keys)
