"""Receiving BC's notification POSTs: verify each item, store it, then acknowledge.

BC's rule decides every answer here: 2xx means received; 408, 429 and 5xx make BC retry
(for up to 36 hours); any other answer makes BC delete the subscription that sent it,
without a word. So:

- an item is kept only if its `subscriptionId` is one of our live subscriptions and its
  `clientState` matches (constant-time); the verified items are stored, and their delivery
  queued, in one transaction (per BATCH_ITEMS of a large body) before the answer: 202;
- a verified item that cannot be stored (no resource or changeType, another resource, a
  changeType BC does not document) is counted on its subscription as malformed, and the
  body gets one log line; it is still a 202: BC would not send it better a second time;
- a POST none of whose items names a live subscription of ours answers 404, so BC deletes
  a subscription that is not ours (or one we stopped);
- a POST naming one of ours, even with a wrong clientState, never gets a 4xx: its wrong
  items are dropped and counted, and the answer is 202, so nobody can get BC to delete our
  subscription by sending forged items next to it;
- an unknown `subscriptionId` whose clientState matches a subscription still being created
  answers 503, even beside items of known subscriptions: BC retries once we know the id
  (the known items stored the first time are recognised by their key and stored once);
- a storage failure answers 503, so BC sends the same notification again;
- a body over BC_NOTIFICATION_MAX_BYTES answers 503 too (see `refuse_oversize`).
"""

import hashlib
import hmac
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from authentications.kit.turns import one_writer
from authentications.webhooks import body as notification_body
from authentications.webhooks import postgres
from authentications.webhooks.models import ChangeNotification, Subscription
from authentications.webhooks.tasks import queue_delivery

logger = logging.getLogger(__name__)

ACCEPTED, NOT_OURS, RETRY_LATER = 202, 404, 503
# `api/v2.0/companies(<id>)/customers(<id>)`, or for a collection `...customers?$filter=...`.
RESOURCE = re.compile(
    r"/?(?P<api>api/[^?]*?)/companies\((?P<company>[^)]*)\)/(?P<entity>[A-Za-z0-9_]+)"
    r"(?:\((?P<id>[^)]*)\))?(?:\?(?P<query>.*))?"
)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
CHANGE_TYPES = frozenset({"created", "updated", "deleted", ChangeNotification.COLLECTION})
# Items verified and stored together (one lookup, one transaction): a batch of BC's up to
# this size is one; a larger one is several, each stored before the next is read.
BATCH_ITEMS = 2_000
BATCH_CHARS = 4 * 1024 * 1024  # ...or fewer, so that a batch of large items stays small.
FIELDS = ("subscriptionId", "clientState", "resource", "changeType", "lastModifiedDateTime")


@dataclass(frozen=True)
class Verified:
    """One verified item, as the ChangeNotification row it becomes."""

    subscription_id: int
    key: str
    record_key: str
    entity: str
    record_id: str
    change_type: str
    changed_at: datetime | None
    resource: str

    def columns(self, moment):
        """The values of the columns INSERTED names first, in its order; `moment` writes
        `changed_at` as the statement takes it."""
        return (
            self.subscription_id,
            self.key,
            self.record_key,
            self.entity,
            self.record_id,
            self.change_type,
            moment(self.changed_at),
            self.resource,
        )


@dataclass
class Received:
    """What one POST brought: its answer, and counts for the logs (no secret in them)."""

    status: int = ACCEPTED
    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    subscriptions: set = field(default_factory=set)
    malformed: Counter = field(default_factory=Counter)  # Signed items not stored, by why.


def receive(items: Iterable[dict]) -> Received:
    """Verify `items`, store the verified ones durably and queue their delivery.

    `items` may be a stream of any length: it is taken in batches, each verified with one
    lookup and stored in one transaction, so memory holds one batch, never the body.
    """
    inbox = _Inbox()
    try:
        for batch in _batches(items):
            inbox.take(batch)
    except DatabaseError:
        logger.exception("Could not store BC notifications; answering 503")
        inbox.received.status = RETRY_LATER
        return inbox.received
    return inbox.answer()


def _batches(items):
    batch, size = [], 0
    for item in items:
        slim = {name: item.get(name) for name in FIELDS}  # The rest of an item is not kept.
        batch.append(slim)
        size += sum(len(value) for value in slim.values() if isinstance(value, str))
        if len(batch) >= BATCH_ITEMS or size >= BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class _Inbox:
    """What the batches of one body have shown so far."""

    def __init__(self):
        self.received = Received()
        self.malformed_in = set()  # Subscriptions with malformed items, for the log line.
        self.ours = {}  # subscriptionId -> live Subscription, looked up once per body.
        self.creating = None  # Subscriptions being created, looked up once if needed.
        self.in_flight = False

    def take(self, batch):
        received = self.received
        self._look_up({_text(item["subscriptionId"]) for item in batch} - set(self.ours))
        verified, wrong_state, malformed, unknown = [], Counter(), Counter(), set()
        for item in batch:
            subscription = self.ours.get(_text(item["subscriptionId"]))
            if subscription is None:
                received.dropped += 1
                if isinstance(item["clientState"], str):
                    unknown.add(item["clientState"])
                continue
            received.subscriptions.add(subscription.pk)
            if not _state_matches(subscription, item["clientState"]):
                received.dropped += 1
                wrong_state[subscription.pk] += 1
                continue
            notification, why = _notification(subscription, item)
            if notification is None:
                received.dropped += 1
                malformed[subscription.pk] += 1
                received.malformed[why] += 1
                self.malformed_in.add(subscription.pk)
                continue
            verified.append(notification)
        if unknown and not self.in_flight:
            self.in_flight = self._creation_in_flight(unknown)
        if verified or wrong_state or malformed:
            _store(received, verified, wrong_state, malformed)

    def _look_up(self, ids):
        self.ours.update(_live_subscriptions(ids))

    def _creation_in_flight(self, states):
        """Whether a clientState is that of a subscription BC is creating right now."""
        if self.creating is None:
            self.creating = list(
                Subscription.objects.filter(
                    subscription_id="", handshake_until__gt=timezone.now()
                ).only("client_state")
            )
        return any(_state_matches(row, state) for row in self.creating for state in states)

    def answer(self):
        received = self.received
        if not received.subscriptions:
            received.status = RETRY_LATER if self.in_flight else NOT_OURS
        elif self.in_flight:
            # Beside known items: they are stored (BC's retry finds them by key, stored
            # once), and the 503 brings back the items of the subscription whose ID we do
            # not know yet.
            received.status = RETRY_LATER
        if received.malformed:
            _log_malformed(received.malformed, self.malformed_in)
        return received


def _log_malformed(reasons, pks):
    """One line per body: how many signed items could not be stored, and why (no values)."""
    logger.warning(
        "BC notifications: %d correctly signed items malformed and dropped (%s); subscriptions %s",
        sum(reasons.values()),
        ", ".join(f"{why}: {count}" for why, count in sorted(reasons.items())),
        ", ".join(str(pk) for pk in sorted(pks)),
    )


def refuse_oversize(prefix: bytes, *, limit: int) -> list[int]:
    """Count a body over `limit` on the subscriptions it names, log it; their pks.

    Only the whole items in `prefix` (the body's first bytes) are read, and a subscription
    is counted only if it is live, ours, and named with its clientState: a forger cannot
    raise the alarm on our subscriptions. When none is, the log line says so.
    """
    named = {}
    for item in notification_body.complete_items(prefix):
        named.setdefault(_text(item.get("subscriptionId")), set()).add(
            _text(item.get("clientState"))
        )
    try:
        ours = _live_subscriptions(set(named))
        pks = sorted(
            row.pk
            for id_, row in ours.items()
            if any(_state_matches(row, state) for state in named[id_])
        )
        Subscription.objects.filter(pk__in=pks).update(
            oversize_refused=F("oversize_refused") + 1, last_oversize_at=timezone.now()
        )
    except DatabaseError:
        pks = []
        logger.exception("Could not count an oversize BC notification body")
    whose = (
        f"subscriptions {', '.join(map(str, pks))}"
        if pks
        else f"no subscription of ours named with its clientState in its first {len(prefix)} bytes"
    )
    logger.warning(
        "BC notification body over BC_NOTIFICATION_MAX_BYTES (%d bytes): answered 503 so BC "
        "retries it; %s",
        limit,
        whose,
    )
    return pks


def _text(value):
    return value if isinstance(value, str) else ""


def _live_subscriptions(ids):
    # PostgreSQL refuses a NUL in any text it is sent, and no ID of ours holds one.
    ids = {id_ for id_ in ids if id_ and "\x00" not in id_}
    rows = Subscription.objects.filter(subscription_id__in=ids, status__in=Subscription.LIVE)
    return {row.subscription_id: row for row in rows}


def _state_matches(subscription, client_state):
    expected = str(subscription.client_state)
    if not expected or not isinstance(client_state, str):
        return False
    # surrogatepass: a lone UTF-16 surrogate (BC's JSON may escape one) is a mismatch, not a 500.
    return hmac.compare_digest(expected.encode(), client_state.encode("utf-8", "surrogatepass"))


def _notification(subscription, item):
    """The row for a verified `item` and "", or None and why it cannot be stored."""
    resource, change_type = _text(item["resource"]), _text(item["changeType"]).lower()
    if not resource or not change_type:
        return None, "no resource or changeType"
    if "\x00" in resource:  # PostgreSQL cannot store it; BC never sends it.
        return None, "a NUL character in the resource"
    if _LONE_SURROGATE.search(resource):  # No database stores it; BC never sends one.
        return None, "a lone surrogate in the resource"
    match = RESOURCE.fullmatch(resource)
    if not match or not _same_resource(subscription, match):
        return None, "another resource"
    if change_type not in CHANGE_TYPES:
        return None, "a changeType BC does not document"
    is_collection = change_type == ChangeNotification.COLLECTION
    record_id = "" if is_collection else (match["id"] or "")[:100]
    changed_at = _moment(item["lastModifiedDateTime"])
    notification = Verified(
        subscription_id=subscription.pk,
        key=_key(subscription.subscription_id, resource, change_type, item),
        record_key=f"{subscription.pk}:{record_id or ChangeNotification.COLLECTION}",
        entity=subscription.entity,
        record_id=record_id,
        change_type=change_type,
        changed_at=changed_at,
        resource=resource[:10_000],
    )
    return notification, ""


def _same_resource(subscription, match):
    return (
        match["api"].strip("/") == subscription.api_path.strip("/")
        and match["company"].strip("'").lower() == subscription.company_id.lower()
        and match["entity"] == subscription.entity
    )


def _moment(value) -> datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _key(subscription_id, resource, change_type, item):
    """The same change sent again by BC (a retry) gets the same key, so it is stored once."""
    raw = "\n".join([subscription_id, resource, change_type, _text(item["lastModifiedDateTime"])])
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _store(received, verified, wrong_state, malformed):
    """Insert the new notifications, queue their delivery and count them in one transaction.

    Duplicates are filtered before it (and by the unique key within it, should the same
    change arrive twice at once); one write transaction per POST keeps SQLite's single
    writer lock taken once, not three times.
    """
    known = _known_keys([row.key for row in verified])
    fresh = _unique([row for row in verified if row.key not in known])
    with one_writer(), transaction.atomic():
        if fresh:
            _insert(fresh)
            queue_delivery(sorted({row.record_key for row in fresh}))
        _count(verified, wrong_state, malformed, timezone.now())
    received.stored += len(fresh)
    received.duplicates += len(verified) - len(fresh)


INSERTED = (
    "subscription_id",
    "key",
    "record_key",
    "entity",
    "record_id",
    "change_type",
    "changed_at",
    "resource",
    "status",
    "attempts",
    "last_error",
    "received_at",
)


KEY = '"key"'
INSERT_CHUNK = 500  # Rows per statement: 6,000 parameters, well within SQLite's limit.


def _known_keys(keys):
    """The keys among `keys` already stored (BC's retries of what we have)."""
    if connection.vendor == "postgresql":
        return postgres.known_keys(keys)
    return set(ChangeNotification.objects.filter(key__in=keys).values_list("key", flat=True))


def _insert(rows):
    """Insert `rows`, skipping keys already stored.

    Plain SQL rather than bulk_create: building 100 model instances and their per-field SQL
    costs more than the rest of the request together, and the endpoint must answer BC
    quickly under a burst. One statement per INSERT_CHUNK rows, so what is sent stays small
    whatever the size of BC's body: on PostgreSQL its text is the same for any number of
    rows (webhooks/postgres.py); elsewhere a multi-row INSERT.
    """
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    pending = ChangeNotification.Status.PENDING.value
    chunks = [rows[start : start + INSERT_CHUNK] for start in range(0, len(rows), INSERT_CHUNK)]
    if connection.vendor == "postgresql":
        for chunk in chunks:
            postgres.insert(chunk, status=pending, received_at=now)
        return
    with connection.cursor() as cursor:
        for chunk in chunks:
            params = [
                value
                for row in chunk
                for value in (*row.columns(ops.adapt_datetimefield_value), pending, 0, "", now)
            ]
            cursor.execute(_insert_sql(len(chunk)), params)


def _insert_sql(count):
    """The INSERT of `count` rows: names are constants and every value is a parameter."""
    ops = connection.ops
    table = ops.quote_name(ChangeNotification._meta.db_table)
    columns = ", ".join(ops.quote_name(name) for name in INSERTED)
    row = "(" + ", ".join(["%s"] * len(INSERTED)) + ")"
    values = ", ".join([row] * count)
    return f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT ({KEY}) DO NOTHING"  # noqa: S608


def _unique(rows):
    seen = set()
    return [row for row in rows if not (row.key in seen or seen.add(row.key))]


def _count(verified, wrong_state, malformed, now):
    """Bump each subscription's counters: one prepared UPDATE run once per subscription.

    Plain SQL again: a Case/When per subscription built through the ORM cost a third of
    the request; the same UPDATE with parameters costs a fraction of a millisecond each.
    """
    taken = Counter(row.subscription_id for row in verified)
    pks = sorted(set(taken) | set(wrong_state) | set(malformed))
    if not pks:
        return
    heard = connection.ops.adapt_datetimefield_value(now)
    if connection.vendor == "postgresql":
        counts = {pk: (taken[pk], wrong_state[pk], malformed[pk]) for pk in pks}
        postgres.count(counts, heard)
        return
    params = [
        (taken[pk], wrong_state[pk], malformed[pk], bool(taken[pk]), heard, pk)
        for pk in pks  # In key order, so two POSTs never wait on each other's rows crosswise.
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_count_sql(), params)


def _count_sql():
    ops = connection.ops
    received, dropped, malformed, last = (
        ops.quote_name(name)
        for name in (
            "notifications_received",
            "notifications_dropped",
            "notifications_malformed",
            "last_notification_at",
        )
    )
    return (
        f"UPDATE {ops.quote_name(Subscription._meta.db_table)} "  # noqa: S608 - names only
        f"SET {received} = {received} + %s, {dropped} = {dropped} + %s, "
        f"{malformed} = {malformed} + %s, "
        f"{last} = CASE WHEN %s THEN %s ELSE {last} END "
        f"WHERE {ops.quote_name('id')} = %s"
    )
