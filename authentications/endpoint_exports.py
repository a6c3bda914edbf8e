"""Exporting a GET endpoint as CSV or JSON Lines, streamed while BC is paged through.

`open_pages` fetches the first page before anything is streamed, so a refusal (permission,
licence, a wrong company) becomes a message instead of a broken download; the rest is
fetched one page ahead (`prefetch`) and written a page at a time: memory holds two pages,
however many rows BC has.
"""

import csv
import io
import json
import logging
from collections.abc import Iterator

from bcconnect.errors import BcconnectError

from .diagnostics import describe_error

logger = logging.getLogger(__name__)

BOM = "\ufeff"
EXTRA = "_extra"  # Keys first seen after the first page: kept as one JSON object.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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


def csv_chunks(pages, *, excel=False) -> Iterator[str]:
    """CSV text a page at a time: the header from the first page's keys, then `_extra`.

    `excel` starts with a byte-order mark (Excel then reads UTF-8) and quotes text that
    Excel would run as a formula (`=`, `+`, `-`, `@`, tab, CR) with a leading apostrophe,
    in the header row too: its names are BC's keys, which a custom API or web service
    chooses.
    """
    columns = None
    for page in _until_failure(pages, _csv_failure):
        if isinstance(page, str):
            yield page
            return
        if columns is None:
            columns = list(dict.fromkeys(key for row in page.rows for key in row))
            header = [*map(_defuse, columns), EXTRA] if excel else [*columns, EXTRA]
            yield (BOM if excel else "") + _csv_lines([header])
        yield _csv_lines(_csv_rows(page.rows, columns, excel))


def jsonl_chunks(pages) -> Iterator[str]:
    """One JSON object per line, a page at a time."""
    for page in _until_failure(pages, _jsonl_failure):
        if isinstance(page, str):
            yield page
            return
        yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in page.rows)


def json_chunks(pages) -> Iterator[str]:
    """One JSON array of every row, written a page at a time."""
    first = True
    yield "["
    for page in _until_failure(pages, _json_failure):
        for row in [] if isinstance(page, str) else page.rows:
            yield ("\n" if first else ",\n") + json.dumps(row, ensure_ascii=False)
            first = False
        if isinstance(page, str):
            yield ("\n" if first else ",\n") + page
    yield "\n]\n"


def _until_failure(pages, failure):
    """The pages, then, if BC fails midway, one last line saying the export is incomplete.

    The download has started by then, so its status cannot change; the last line makes a
    cut file impossible to mistake for a whole one.
    """
    try:
        yield from pages
    except BcconnectError as err:
        message = f"Export incomplete: {describe_error(err)}"
        logger.warning("Endpoint export stopped: %s", message)
        yield failure(message)


def _csv_failure(message):
    return _csv_lines([[message]])


def _jsonl_failure(message):
    return json.dumps({"_error": message}, ensure_ascii=False) + "\n"


def _json_failure(message):
    return json.dumps({"_error": message}, ensure_ascii=False)


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
