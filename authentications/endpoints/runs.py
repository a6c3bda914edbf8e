"""Testing an endpoint from the admin: send it once and describe the answer for a person.

A GET reads only its first page (the page says whether more follow); a write is sent once,
after the admin's confirmation. The outcome keeps what BC answered and nothing of the
request's own headers, so the result page cannot show the token or any stored header.
"""

import dataclasses
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from authentications.connections import diagnostics
from authentications.connections.models import Event
from authentications.endpoints.exports import answer_rows, compact, replaced_note
from authentications.endpoints.models import Endpoint, EndpointNotReady, WriteConfirmation
from bcconnect.client import without_lone_surrogates
from bcconnect.errors import BcconnectError

SHOWN_ROWS = 50
CELL_CHARS = 120
RAW_CHARS = 100_000
CUT = "… [cut]"
CONFIRMATION_LIFETIME = timedelta(minutes=30)  # A confirmation page left open longer asks again.
CONFIRMATION_KEPT = timedelta(days=1)  # Used ones are kept this long for their result page.


@dataclass
class Trial:
    ok: bool
    elapsed: float
    status: int | None = None
    request_id: str = ""
    rows: list = field(default_factory=list)  # At most SHOWN_ROWS of the first page.
    row_count: int = 0  # Rows on the first page (or in a write's answer).
    more: bool = False  # Whether BC has more pages.
    raw: str = ""
    error: str = ""
    error_code: str = ""
    entity: bool = False  # BC answered one entity (a GET by key): shown as a field list.
    replaced: int = 0  # Lone UTF-16 surrogates replaced by U+FFFD.
    warning: str = ""  # Why paging would stop after this page (a refused nextLink).
    sent: bool = True  # False when the endpoint could not be sent as stored (no company).

    @property
    def ms(self):
        return round(self.elapsed * 1000)

    @property
    def columns(self):
        """Every key of the rows shown, in the order they first appear."""
        return list(dict.fromkeys(key for row in self.rows for key in row))

    def table(self):
        """The rows shown as cells under `columns`: scalars as text, the rest compact JSON."""
        if self.entity:
            return []
        columns = self.columns
        return [[cell(row[c]) if c in row else "" for c in columns] for row in self.rows]

    def record(self):
        """One entity's fields as (name, value) pairs: a list reads better than a wide row."""
        if not (self.entity and self.rows):
            return []
        return [(key, cell(value)) for key, value in self.rows[0].items()]

    @property
    def replaced_note(self):
        return replaced_note(self.replaced)

    def as_json(self):
        """What the result page needs, for `WriteConfirmation.outcome`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (data or {}).items() if key in names})


def cell(value, *, limit=CELL_CHARS):
    if value is None:
        return ""
    text = value if isinstance(value, str) else compact(value)
    return text if len(text) <= limit else text[:limit] + CUT


def pretty(value):
    value, _ = without_lone_surrogates(value)  # Text from BC's answer is clean already.
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS] + "\n" + CUT


def request_fingerprint(endpoint: Endpoint) -> str:
    """A digest of the exact request a write would send, for its confirmation page.

    The page posts it back, and the write runs only if the endpoint would still send that
    request: an edit, a move or a new company saved while the page was open (or a post
    that never saw the page) shows the confirmation again instead of sending something
    nobody confirmed. It is a digest of what the page shows, so it reveals nothing new.
    """
    request = [
        endpoint.method,
        endpoint.url(),
        sorted(endpoint.request_headers().items()),
        endpoint.body,
        _identity(endpoint.authentication),
        [endpoint.company_id, endpoint.company_name],
    ]
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _identity(authentication):
    """Who the write is sent as: the authentication, its app, tenant, environment and user.

    `generation` moves whenever its credentials, BC URL or connection change, so a new
    sign-in (perhaps by someone else) also asks for a new confirmation.
    """
    return [
        authentication.pk,
        authentication.kind,
        authentication.tenant_id,
        authentication.client_id,
        authentication.base_url,
        authentication.granted_by_oid,
        authentication.generation,
    ]


# --- single-use confirmations -----------------------------------------------------------------


def show_confirmation(endpoint: Endpoint, *, user: str) -> str:
    """Record a confirmation page shown to `user`; its nonce, which the page posts back."""
    now = timezone.now()
    WriteConfirmation.objects.filter(created_at__lt=now - CONFIRMATION_KEPT).delete()
    nonce = secrets.token_urlsafe(32)
    WriteConfirmation.objects.create(
        nonce=nonce,
        endpoint=endpoint,
        fingerprint=request_fingerprint(endpoint),
        shown_to=user,
        created_at=now,
    )
    return nonce


class Confirmation:
    """What became of a posted confirmation (`send_confirmed`)."""

    SENT = "sent"  # Spent now, and the write sent: show its result.
    USED = "used"  # Spent before (a resubmit, a replay, a second tab): nothing sent.
    ASK_AGAIN = "ask again"  # Unknown, expired, someone else's, or the request changed.


def send_confirmed(endpoint: Endpoint, nonce: str, *, user: str):
    """Send the write once for a confirmation nonce: (what happened, its confirmation row).

    Nothing is sent unless the nonce was shown to `user` for this endpoint, is fresh,
    unused, and the endpoint would send exactly what that page showed. The nonce is spent
    by one conditional UPDATE before anything is sent: of two concurrent posts, one sends.
    """
    shown = WriteConfirmation.objects.filter(
        nonce=str(nonce)[:64], endpoint=endpoint, shown_to=user
    ).first()
    if shown is None or not nonce:
        return Confirmation.ASK_AGAIN, None
    if shown.used_at is not None:
        return Confirmation.USED, shown
    if shown.created_at < timezone.now() - CONFIRMATION_LIFETIME or not _still_shown(
        endpoint, shown
    ):
        return Confirmation.ASK_AGAIN, None
    spent = WriteConfirmation.objects.filter(pk=shown.pk, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if not spent:
        return Confirmation.USED, shown
    outcome = try_endpoint(endpoint, actor=user)
    WriteConfirmation.objects.filter(pk=shown.pk).update(outcome=outcome.as_json())
    return Confirmation.SENT, shown


def _still_shown(endpoint, shown):
    try:
        current = request_fingerprint(endpoint)
    except BcconnectError:
        return False  # The confirmation page explains why it cannot be sent.
    return secrets.compare_digest(current, shown.fingerprint)


def confirmed_outcome(endpoint: Endpoint, nonce: str, *, user: str):
    """The result of a sent confirmation, for the result page; None when there is none."""
    shown = WriteConfirmation.objects.filter(
        nonce=str(nonce)[:64], endpoint=endpoint, shown_to=user, outcome__isnull=False
    ).first()
    return None if shown is None else Trial.from_json(shown.outcome)


def try_endpoint(endpoint: Endpoint, *, actor="") -> Trial:
    """Send `endpoint` once (a GET: its first page) and record the outcome on it."""
    started = time.perf_counter()
    try:
        outcome = _read(endpoint) if endpoint.is_read else _write(endpoint)
    except EndpointNotReady as err:  # Nothing was sent: not a test's outcome to remember.
        outcome = _failed(err, time.perf_counter() - started)
        outcome.sent = False
        return outcome
    except BcconnectError as err:  # BC's refusals, token trouble.
        outcome = _failed(err, time.perf_counter() - started)
    remember(endpoint, outcome)
    if not endpoint.is_read:
        _record_write(endpoint, outcome, actor=actor)
    return outcome


def _read(endpoint):
    pages = endpoint.pages(prefetch=False)
    try:
        page = next(pages)
    finally:
        pages.close()
    shown = page.rows[:SHOWN_ROWS]
    return Trial(
        ok=True,
        elapsed=page.elapsed,
        status=page.status,
        request_id=page.request_id or "",
        rows=shown,
        row_count=len(page.rows),
        more=page.more,
        # What BC sent: the entity itself, or the collection's members with its first rows.
        raw=pretty(page.rows[0] if page.entity else {**page.annotations, "value": shown}),
        entity=page.entity,
        replaced=page.replaced,
        warning=page.stop.message if page.stop is not None else "",
    )


def _write(endpoint):
    result = endpoint.call()
    body = result.body
    rows = answer_rows(body)
    return Trial(
        ok=True,
        elapsed=result.elapsed,
        status=result.status,
        request_id=result.request_id or "",
        rows=rows[:SHOWN_ROWS],
        row_count=len(rows),
        raw="" if body is None else pretty(body),
        entity=isinstance(body, dict) and not isinstance(body.get("value"), list),
        replaced=result.replaced,
    )


def _failed(err, elapsed):
    return Trial(
        ok=False,
        elapsed=elapsed,
        status=getattr(err, "status", None),
        request_id=getattr(err, "request_id", "") or "",
        error=diagnostics.describe_error(err),
        error_code=err.code,
    )


def remember(endpoint, outcome):
    """Store the last test's outcome: its own columns only, so an edit saved meanwhile stays."""
    values = {
        "last_tested_at": timezone.now(),
        "last_test_status": outcome.status,
        "last_test_ms": outcome.ms,
        "last_test_rows": outcome.row_count if outcome.ok else None,
        "last_test_error": outcome.error[:300],
    }
    Endpoint.objects.filter(pk=endpoint.pk).update(**values)
    for name, value in values.items():
        setattr(endpoint, name, value)


def _record_write(endpoint, outcome, *, actor):
    result = f"HTTP {outcome.status}" if outcome.ok else f"failed: {outcome.error}"
    endpoint.authentication.record(
        Event.Kind.ENDPOINT_WRITE_TESTED,
        actor=actor,
        detail=f"{endpoint.method} endpoint “{endpoint}” ({endpoint.path}) sent from the "
        f"admin; {result}.",
    )
