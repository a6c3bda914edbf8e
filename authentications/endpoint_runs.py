"""Testing an endpoint from the admin: send it once and describe the answer for a person.

A GET reads only its first page (the page says whether more follow); a write is sent once,
after the admin's confirmation. The outcome keeps what BC answered and nothing of the
request's own headers, so the result page cannot show the token or any stored header.
"""

import hashlib
import json
import time
from dataclasses import dataclass, field

from django.utils import timezone

from bcconnect.errors import BcconnectError

from . import diagnostics
from .endpoint_exports import answer_rows, compact
from .endpoints import Endpoint
from .models import Event

SHOWN_ROWS = 50
CELL_CHARS = 120
RAW_CHARS = 100_000
CUT = "… [cut]"


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

    @property
    def ms(self):
        return round(self.elapsed * 1000)

    @property
    def columns(self):
        """Every key of the rows shown, in the order they first appear."""
        return list(dict.fromkeys(key for row in self.rows for key in row))

    def table(self):
        """The rows shown as cells under `columns`: scalars as text, the rest compact JSON."""
        columns = self.columns
        return [[cell(row[c]) if c in row else "" for c in columns] for row in self.rows]


def cell(value, *, limit=CELL_CHARS):
    if value is None:
        return ""
    text = value if isinstance(value, str) else compact(value)
    return text if len(text) <= limit else text[:limit] + CUT


def pretty(value):
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
    ]
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def try_endpoint(endpoint: Endpoint, *, actor="") -> Trial:
    """Send `endpoint` once (a GET: its first page) and record the outcome on it."""
    started = time.perf_counter()
    try:
        outcome = _read(endpoint) if endpoint.is_read else _write(endpoint)
    except BcconnectError as err:  # BC's refusals, token trouble, no company chosen yet.
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
    return Trial(
        ok=True,
        elapsed=page.elapsed,
        status=page.status,
        request_id=page.request_id or "",
        rows=page.rows[:SHOWN_ROWS],
        row_count=len(page.rows),
        more=page.more,
        raw=pretty({"value": page.rows[:SHOWN_ROWS]}),
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
