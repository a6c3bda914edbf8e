"""The BC proxy: a caller's request sent on to its authentication's BC base URL, and BC's
answer streamed back.

Everything goes through the BC client (`bc_client(...).open`): the token, the 401 refresh,
the retries, the concurrency cap and the rule that the token goes nowhere but under the
environment root. Before that, the path is checked here as the caller sent it (raw, still
percent-encoded): whatever could leave the base URL (an absolute URL, `..` raw or encoded,
a backslash, `@`, an encoded slash) is refused and nothing is sent. The proxy never waits
longer than BC_API_MAX_WAIT_SECONDS for BC's Retry-After: a longer one is passed back at
once with BC's status. `@odata.nextLink` values in BC's JSON are rewritten to point back
here, so a caller pages with the same key and never sees a URL it could not call.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit

from django.conf import settings

from authentications.connections.models import Authentication
from authentications.connections.tokens import FAST_FIELDS, bc_client
from bcconnect.client import RawAnswer, RetryPolicy

# What a caller may say to BC beyond the body; anything else (cookies, Authorization, ...)
# stays here.
FORWARDED = ("If-Match", "If-None-Match", "Prefer", "Accept-Language", "Data-Access-Intent",
             "Isolation", "Content-Type")  # fmt: skip
PASSED_BACK = ("Content-Type", "ETag", "Retry-After", "OData-Version", "Preference-Applied",
               "request-id", "Location", "OData-EntityId")  # fmt: skip
POINTING_AT_BC = ("Location", "OData-EntityId")  # Rewritten like nextLinks.
CHUNK = 64 * 1024
# What the proxy reads of the authentication: where BC is, and the token for the first call.
PROXY_FIELDS = (*FAST_FIELDS, "base_url")
LONGEST_LINK = 64 * 1024  # A nextLink longer than this is passed on as BC wrote it.
_NEXT_LINK = re.compile(
    rb'@odata\.nextLink"\s*:\s*"((?:[^"\\]|\\.){0,%d})"' % LONGEST_LINK, re.DOTALL
)
_KEY = b"@odata.nextLink"


class TokenRefusedByBc(Exception):
    """BC answered 401 to a freshly refreshed token: not the caller's key, the connection."""


class PathRefused(ValueError):
    """A path that could leave the base URL; the message says why, without the path."""


def checked_path(raw: str) -> str:
    """`raw` (as the caller sent it) when it stays under the base URL, else PathRefused.

    Each rule is applied to the path as sent and again after each percent-decoding, so
    `%2e%2e`, `%252e%252e` and `..%2f` are seen for what they become.
    """
    previous, text = None, raw
    while text != previous:
        _refuse_in(text)
        previous, text = text, unquote(text)
        if text.count("/") != previous.count("/"):
            raise PathRefused("it has an encoded slash (%2F)")
    return raw


def _refuse_in(text):
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise PathRefused("it has a control character")
    if "\\" in text:
        raise PathRefused("it has a backslash")
    if "@" in text:
        raise PathRefused("it has an @ (user info)")
    if "://" in text or text.startswith("/"):
        raise PathRefused("it is an absolute URL, not a path under the base URL")
    if any(segment in (".", "..") for segment in text.split("/")):
        raise PathRefused("it has a '.' or '..' segment")


def raw_target(request, marker: str) -> tuple[str, str]:
    """The path after `marker` and the query string, as the caller sent them.

    The server's raw request line (gunicorn's RAW_URI, or REQUEST_URI) still holds what
    Django's decoded path has lost (an encoded slash); without one, the decoded path is
    quoted again.
    """
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw:
        parts = urlsplit(raw)
        path, query = parts.path, parts.query
    else:
        path = quote(request.path, safe="/:@!$&'()*+,;=-._~%")
        query = request.META.get("QUERY_STRING", "")
    _, found, after = path.partition(marker)
    if not found:
        raise PathRefused("its start is encoded; send /api/v1/authentications/<id>/bc/ as is")
    return after, query


@dataclass(frozen=True)
class Forwarded:
    """BC's answer on its way back: status, the headers that matter, the body streamed."""

    status: int
    headers: dict[str, str]
    body: Iterator[bytes]
    request_id: str | None


def forward(
    authentication: Authentication,
    *,
    method: str,
    path: str,
    query: str,
    body: bytes | None,
    headers,
    here: str,
) -> Forwarded:
    """Send the caller's request to BC and return the answer to stream back.

    `here` is this proxy's URL for the authentication (…/bc/): BC URLs under the base URL
    in the answer become URLs under it. `authentication` was just read with its token
    (PROXY_FIELDS): the first request sends that token without reading it again.
    """
    client = bc_client(authentication, retry=proxy_retry_policy(), just_read=True)
    sent = {name: headers[name] for name in FORWARDED if headers.get(name)}
    answer = client.open(method, checked_path(path), query=query, body=body, headers=sent)
    if answer.status == 401:  # Passed back as is, it would read as "your API key is wrong".
        answer.close()
        raise TokenRefusedByBc
    links = LinkRewriter(bc_base=client.base_url + "/", here=here)
    kept = {name: answer.headers[name] for name in PASSED_BACK if name in answer.headers}
    for name in POINTING_AT_BC:
        if name in kept:
            kept[name] = links.rewrite(kept[name], base=answer.url)
    return Forwarded(answer.status, kept, _body(answer, links), answer.request_id)


def proxy_retry_policy():
    """Retries only while they fit the bound a caller may be held (BC_API_MAX_WAIT_SECONDS)."""
    return RetryPolicy(retry_budget=settings.BC_API_MAX_WAIT_SECONDS)


def _body(answer: RawAnswer, links):
    chunks = answer.chunks(CHUNK)
    if "json" in answer.headers.get("Content-Type", "").lower():
        return links.stream(chunks, base=answer.url)
    return chunks


class LinkRewriter:
    """Rewrites BC URLs under the base URL into this proxy's URLs, in headers and JSON."""

    def __init__(self, *, bc_base: str, here: str):
        self.bc_base, self.here = bc_base, here

    def rewrite(self, url: str, *, base: str) -> str:
        absolute = urljoin(base, url)
        if not absolute.startswith(self.bc_base):
            return url  # Not somewhere this proxy reaches: left as BC wrote it.
        return self.here + absolute[len(self.bc_base) :]

    def stream(self, chunks, *, base):
        """`chunks` with every `@odata.nextLink` rewritten; memory bounded by one chunk and
        one link, since a link cut between two chunks is held back until it is whole."""
        pending = b""
        for chunk in chunks:
            data = pending + chunk
            out, done = self._rewritten(data, base)
            hold = _incomplete_from(data, done)
            pending = data[hold:]
            yield out + data[done:hold]
        if pending:
            yield pending

    def _rewritten(self, data, base):
        parts, done = [], 0
        for match in _NEXT_LINK.finditer(data):
            parts += [data[done : match.start(1)], self._link(match.group(1), base)]
            done = match.end(1)
        return b"".join(parts), done

    def _link(self, raw, base):
        try:
            url = json.loads(b'"' + raw + b'"')
        except ValueError:
            return raw
        return json.dumps(self.rewrite(url, base=base))[1:-1].encode()


def _incomplete_from(data, done):
    """Where a nextLink that may continue in the next chunk starts (len(data) if none)."""
    start = data.rfind(_KEY, done)
    if start != -1 and len(data) - start <= LONGEST_LINK + 64:
        return start
    for size in range(len(_KEY) - 1, 0, -1):
        if data.endswith(_KEY[:size]) and len(data) - size >= done:
            return len(data) - size
    return len(data)
