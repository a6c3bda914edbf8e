"""Delivering stored notifications to the site's handlers: at least once, in order per record.

Work is per record (`record_key`): a task takes the oldest open notification of a record,
claims it with one conditional UPDATE (so two workers never run the same one), runs the
handlers, and moves on to the record's next one. A later change of a record never overtakes
an earlier one: while the earlier one is retrying, parked or without a handler, the later
ones wait. A claim has a deadline (BC_NOTIFICATION_CLAIM_SECONDS), so a worker killed
mid-delivery only delays that record: `stalled_records` (cron) finds it again. Each claim
counts an attempt, so a handler that kills its worker every time is parked after
BC_NOTIFICATION_MAX_ATTEMPTS claims instead of crash-looping the workers.

This module never puts work on the queue: `webhooks.tasks` does, with what it returns (a
retry is handed to the `retry` callback the task passes in).
"""

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from authentications.webhooks import handlers as change_notifications
from authentications.webhooks.models import ChangeNotification

logger = logging.getLogger(__name__)

MAX_ERROR = 2000
Status = ChangeNotification.Status


def claim_duration():
    """BC_NOTIFICATION_CLAIM_SECONDS: a handler running longer may be run a second time, and
    a killed worker's notification is taken up again this long after it was claimed."""
    return timedelta(seconds=settings.BC_NOTIFICATION_CLAIM_SECONDS)


def deliver_records(record_keys, *, retry):
    """Deliver each record's open notifications in order; returns how many were delivered.

    `retry(record_key, at)` is called for each record whose handler failed and that is due
    again at `at` (the task queues it)."""
    return sum(deliver_record(record_key, retry=retry) for record_key in record_keys)


def deliver_record(record_key, *, retry):
    delivered = 0
    while True:
        claimed = _claim_next(record_key)
        if claimed is None:
            return delivered
        if not _deliver(*claimed, retry=retry):
            return delivered
        delivered += 1


def _claim_next(record_key):
    """The record's oldest open notification, claimed, and its handlers; None when it is not
    ours to run now (not due, held by another worker, waiting for a person)."""
    now = timezone.now()
    head = (
        ChangeNotification.objects.filter(record_key=record_key, status__in=ChangeNotification.OPEN)
        .select_related("subscription")
        .order_by("id")
        .first()
    )
    if head is None or not _runnable(head, now):
        return None
    handlers = change_notifications.handlers_for(head.entity)
    if not handlers:
        _set_aside(head, status=Status.NO_HANDLER)
        return None
    if head.status == Status.DELIVERING and head.attempts >= settings.BC_NOTIFICATION_MAX_ATTEMPTS:
        _set_aside(head, status=Status.PARKED, last_error=died_error(head))
        return None
    return _claim(head, handlers, now)


def _claim(head, handlers, now):
    """Take `head` with one conditional UPDATE that also counts the attempt.

    Counted here, not when the handlers end: a handler that kills its worker (os._exit, the
    OOM killer) never ends, and its claims must still run out.
    """
    claimed_until = now + claim_duration()
    changes = {
        "status": Status.DELIVERING,
        "claimed_until": claimed_until,
        "attempts": head.attempts + 1,
        "handler": handler_name(handlers[0]),
    }
    if not _unchanged(head).update(**changes):
        return None  # Another worker took it; it carries on with the record.
    for field, value in changes.items():
        setattr(head, field, value)
    return head, handlers


def _unchanged(row):
    return ChangeNotification.objects.filter(
        pk=row.pk, status=row.status, claimed_until=row.claimed_until, attempts=row.attempts
    )


def _set_aside(head, **changes):
    """Leave `head` for a person (its record's later changes wait behind it)."""
    if changes["status"] == Status.PARKED:
        logger.warning("Parked %s: %s", head, changes["last_error"])
    else:
        logger.warning("No handler for %s: kept as No handler until one exists", head)
    _unchanged(head).update(claimed_until=None, next_attempt_at=None, **changes)


def died_error(row):
    return (
        f"Worker died while handling ({row.handler or 'handler unknown'}): claimed "
        f"{row.attempts} times, never finished (os._exit, killed, out of memory?)."
    )


def handler_name(handler):
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', handler)}"


def _runnable(head, now):
    if head.status == Status.PENDING:
        return True
    if head.status == Status.RETRYING:
        return head.next_attempt_at is None or head.next_attempt_at <= now
    if head.status == Status.DELIVERING:
        return head.claimed_until is None or head.claimed_until < now  # Its worker died.
    if head.status == Status.NO_HANDLER:
        return True  # Delivered once a handler exists; set aside again otherwise.
    return False  # Parked: waits for a person.


def _deliver(notification, handlers, *, retry):
    """Run the handlers; True when they all succeeded."""
    change = _change(notification)
    for index, handler in enumerate(handlers):
        if index:  # The claim named the first; a worker dying in this one must name it.
            _ours(notification).update(handler=handler_name(handler))
        try:
            handler(change)
        except Exception as err:  # A handler's failure, whatever it is, is recorded, not lost.
            _failed(notification, err, handler, retry=retry)
            return False
        except BaseException as err:  # SystemExit, KeyboardInterrupt: counted, then obeyed.
            _failed(notification, err, handler, retry=retry)
            raise
    finished = _ours(notification).update(
        status=Status.DELIVERED, delivered_at=timezone.now(), claimed_until=None, last_error=""
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


def _failed(notification, err, handler, *, retry):
    attempts = notification.attempts  # Counted when claimed.
    error = f"{type(err).__name__}: {err} (in {handler_name(handler)})"[:MAX_ERROR]
    logger.warning(
        "Handler failed for %s (attempt %d): %s", notification, attempts, type(err).__name__
    )
    if attempts >= settings.BC_NOTIFICATION_MAX_ATTEMPTS:
        changes = {"status": Status.PARKED, "next_attempt_at": None}
    else:
        changes = {"status": Status.RETRYING, "next_attempt_at": timezone.now() + backoff(attempts)}
    failed = _ours(notification).update(last_error=error, claimed_until=None, **changes)
    if failed and changes["status"] == Status.RETRYING:
        retry(notification.record_key, changes["next_attempt_at"])


def backoff(attempts):
    """BC_NOTIFICATION_RETRY_SECONDS, doubled after each failure, at most a day."""
    seconds = settings.BC_NOTIFICATION_RETRY_SECONDS * 2 ** (attempts - 1)
    return timedelta(seconds=min(seconds, 86_400))


@dataclass(frozen=True)
class Replay:
    """What `replay` did, by entity: queued again, or left because no handler exists yet."""

    queued: Counter
    unhandled: Counter


def replay(queryset, *, dry_run=False):
    """Give parked, retrying and no-handler notifications a fresh start; (Replay, the record
    keys to queue). `tasks.replay` queues them.

    A no-handler one whose entity still has no handler is left as it is: queued, it would
    only come back as "No handler".
    """
    rows = list(queryset.filter(status__in=(Status.PARKED, Status.RETRYING, Status.NO_HANDLER)))
    handled = {
        entity: bool(change_notifications.handlers_for(entity)) for entity in _entities(rows)
    }
    queued, unhandled, record_keys = Counter(), Counter(), set()
    for row in rows:
        if row.status == Status.NO_HANDLER and not handled[row.entity]:
            unhandled[row.entity] += 1
        elif dry_run or _unchanged(row).update(
            status=Status.PENDING, attempts=0, next_attempt_at=None, claimed_until=None
        ):
            queued[row.entity] += 1
            record_keys.add(row.record_key)
    return Replay(queued, unhandled), sorted(record_keys)


def _entities(rows):
    return sorted({row.entity for row in rows})


def stalled_records():
    """Records whose delivery is due but may have no task: crashed worker, lost queue, or a
    no-handler change whose entity has a handler now (a deploy added one).

    `tasks.requeue_stalled` (run by `refresh_tokens`) queues them; queueing a record twice is
    harmless, the claim lets one task deliver it. A dead claim that used up its attempts is
    parked here rather than returned, so it shows without waiting for a worker.
    """
    now = timezone.now()
    park_dead_claims(now)
    stale = timedelta(minutes=1)
    due = ChangeNotification.objects.filter(
        Q(status=Status.PENDING, received_at__lt=now - stale)
        | Q(status=Status.RETRYING, next_attempt_at__lt=now - stale)
        | Q(status=Status.DELIVERING, claimed_until__lt=now)
        | Q(status=Status.NO_HANDLER, entity__in=_handled_entities())
    )
    return sorted(set(due.values_list("record_key", flat=True)))


def _handled_entities():
    waiting = ChangeNotification.objects.filter(status=Status.NO_HANDLER).order_by()
    entities = waiting.values_list("entity", flat=True).distinct()
    return [entity for entity in entities if change_notifications.handlers_for(entity)]


def park_dead_claims(now):
    """Park notifications whose workers died in them BC_NOTIFICATION_MAX_ATTEMPTS times."""
    dead = ChangeNotification.objects.filter(
        status=Status.DELIVERING,
        claimed_until__lt=now,
        attempts__gte=settings.BC_NOTIFICATION_MAX_ATTEMPTS,
    )
    for row in dead:
        _set_aside(row, status=Status.PARKED, last_error=died_error(row))
