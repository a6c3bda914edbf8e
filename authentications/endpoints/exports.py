"""Exporting a GET endpoint as CSV or JSON Lines, streamed while BC is paged through.

`open_pages` fetches the first page before anything is streamed, so a refusal (permission,
licence, a wrong company) becomes a message instead of a broken download; the rest is
fetched one page ahead (`prefetch`) and written a page at a time: memory holds two pages,
however many rows BC has.

Once the first bytes are sent the status cannot change, so the file itself says what went
wrong, in its last lines: `Note: ...` when lone UTF-16 surrogates were replaced by U+FFFD,
then `Export incomplete: ...` when the export stopped early (JSON Lines: objects with one
key, `_notice` and `_error`; CSV: a row of one cell). A `Tally` tells the caller the same.
"""

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from authentications.connections.diagnostics import describe_error
from bcconnect.errors import BcconnectError

logger = logging.getLogger(__name__)

BOM = "\ufeff"
EXTRA = "_extra"  # Keys first seen after the first page: kept as one JSON object.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


INCOMPLETE = "Export incomplete"


@dataclass
class Tally:
    """What an export met, for whoever reports on it after the last line."""

    rows: int = 0
    replaced: int = 0
    incomplete: str = ""  # Why the export stopped early; "" when it is whole.

    @property
    def complete(self):
        return not self.incomplete

    def note(self):
        """One line for people: the problem, or "" when the export is whole and clean."""
        return " ".join(part for part in (self.incomplete, replaced_note(self.replaced)) if part)


def replaced_note(count):
    if not count:
        return ""
    what = "character was" if count == 1 else "characters were"
    return (
        f"Note: {count} {what} half of a UTF-16 surrogate pair (text cut inside an emoji, "
        "perhaps) and became U+FFFD (\ufffd)."
    )


def answer_rows(body):
    """The rows of one answer: its `value` list, or the one entity it is."""
    if isinstance(body, dict) and isinstance(body.get("value"), list):
        return body["value"]
    return [body] if isinstance(body, dict) else []


def open_pages(endpoint, **overrides):
    """The endpoint's pages, the first one already fetched (its error raises here)."""
    pages = endpoint.pages(prefetch=True, **overrides)
    try:
        first = next(pages)
    except BaseException:
        pages.close()
        raise
    return _with_first(first, pages)


def _with_first(first, pages):
    try:
        yield first
        first = None
        yield from pages
    finally:
        pages.close()  # A client that hangs up mid-download cancels the page fetched ahead.


def csv_chunks(pages, *, excel=False, tally=None, notes=True) -> Iterator[str]:
    """CSV text a page at a time: the header from the first page's keys, then `_extra`.

    `excel` starts with a byte-order mark (Excel then reads UTF-8) and quotes text that
    Excel would run as a formula (`=`, `+`, `-`, `@`, tab, CR) with a leading apostrophe,
    in the header row too: its names are BC's keys, which a custom API or web service
    chooses. `notes` ends the file with its notice and incomplete rows (see the module).
    """
    columns = None
    for page in _until_failure(pages, _csv_line, tally, notes):
        if isinstance(page, str):
            yield page
            continue
        if columns is None:
            columns = list(dict.fromkeys(key for row in page.rows for key in row))
            header = [*map(_defuse, columns), EXTRA] if excel else [*columns, EXTRA]
            yield (BOM if excel else "") + _csv_lines([header])
        yield _csv_lines(_csv_rows(page.rows, columns, excel))


def jsonl_chunks(pages, *, tally=None, notes=True) -> Iterator[str]:
    """One JSON object per line, a page at a time."""
    for page in _until_failure(pages, _jsonl_line, tally, notes):
        if isinstance(page, str):
            yield page
            continue
        yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in page.rows)


def json_chunks(pages, *, tally=None, notes=True) -> Iterator[str]:
    """One JSON array of every row, written a page at a time."""
    first = True
    yield "["
    for page in _until_failure(pages, _json_line, tally, notes):
        for row in [] if isinstance(page, str) else page.rows:
            yield ("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False)
            first = False
        if isinstance(page, str):
            yield ("\n" if first else ",\n") + page
            first = False
    yield "\n]\n"


def _until_failure(pages, line, tally=None, notes=True):
    """The pages, then the file's last lines: replaced characters, then an early stop.

    The download has started by then, so its status cannot change; the last line makes a
    cut file impossible to mistake for a whole one. Whatever stops the pages (BC, the
    network, a bug here) ends the file that way: nothing is cut off silently.
    """
    tally = tally if tally is not None else Tally()
    try:
        for page in pages:
            tally.rows += len(page.rows)
            tally.replaced += getattr(page, "replaced", 0)
            yield page
    except BcconnectError as err:
        tally.incomplete = f"{INCOMPLETE}: {describe_error(err)}"
    except Exception:
        logger.exception("Endpoint export stopped by an unexpected error")
        tally.incomplete = f"{INCOMPLETE}: an unexpected error stopped it (it is logged)."
    if tally.incomplete:
        logger.warning("Endpoint export stopped: %s", tally.incomplete)
    if notes and tally.replaced:
        yield line("_notice", replaced_note(tally.replaced))
    if notes and tally.incomplete:
        yield line("_error", tally.incomplete)


def _csv_line(_key, message):
    return _csv_lines([[message]])


def _jsonl_line(key, message):
    return json.dumps({key: message}, ensure_ascii=False) + "\n"


def _json_line(key, message):
    return json.dumps({key: message}, ensure_ascii=False)


def _csv_lines(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _csv_rows(rows, columns, excel):
    """Each row's cells under `columns`, then its `_extra`.

    Written for 200,000 rows: the csv module writes text, numbers and None ("") itself, so
    only booleans (true/false), nested values (compact JSON) and, for Excel, text starting
    like a formula are converted, by one lookup per cell.
    """
    known = set(columns)
    convert = _EXCEL if excel else _CONVERT
    for row in rows:
        line = list(map(row.get, columns))
        if not convert.keys().isdisjoint(map(type, line)):
            line = [convert[v.__class__](v) if v.__class__ in convert else v for v in line]
        if row.keys() <= known:
            line.append("")
        else:
            line.append(compact({k: v for k, v in row.items() if k not in known}))
        yield line


def _defuse(text):
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def compact(value):
    """JSON without spaces: nested values in a cell."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_CONVERT = {bool: lambda value: "true" if value else "false", dict: compact, list: compact}
_EXCEL = {**_CONVERT, str: _defuse}
