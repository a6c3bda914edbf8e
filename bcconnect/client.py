"""The Business Central API client: a plain library, handed a token provider.

It knows HTTP, OData and BC's limits, and nothing about Django or where tokens come from
(`authentications.connections.tokens.bc_client` wires it to a stored authentication). One
`requests.Session` per client keeps connections pooled; `company()` clients share it.
"""

import contextlib
import copy
import email.utils
import json as jsonlib
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from bcconnect.errors import BcconnectError
from bcconnect.headers import could_carry_credential, forbidden_header, shown_header_name
from bcconnect.prefetch import SLEEP_SLICE, Ahead, Cancelled, cancellable_sleep

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 20_000  # BC answers at most this many entities per page.
MAX_BATCH_SIZE = 100  # BC refuses a $batch with more operations.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# 502 and 504 come from a gateway that may have passed the request on: only repeat
# requests that are safe to repeat. 429 and 503 mean BC did not run the request.
RETRY_ANY_METHOD = frozenset({429, 503})
FATE_UNKNOWN_STATUSES = RETRY_STATUSES - RETRY_ANY_METHOD  # 502, 504
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
METHODS = IDEMPOTENT_METHODS | {"POST", "PATCH"}
CONDITIONAL_METHODS = frozenset({"PATCH", "PUT", "DELETE"})
REQUEST_ID_HEADERS = ("request-id", "ms-correlation-x", "x-ms-request-id", "client-request-id")
MAX_REDIRECTS = 5
DEFAULT_MAX_CONCURRENCY = 5  # BC allows each user five requests at a time.
# Answers to a retried change that its lost first attempt would explain: the ETag moved
# on (409, 412) or the entity is gone (404).
MAY_HAVE_APPLIED_STATUSES = frozenset({404, 409, 412})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Raised while the answer's body is read: the connection broke after the status line was
# sent (ChunkedEncodingError: a socket closed mid-body; ContentDecodingError: gzip cut or
# spoiled). Like ConnectionError and Timeout, a repeat may well succeed.
LOST_ANSWER_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
SHOWN_BYTES = 120  # How much of an answer that is not JSON a message quotes.
REPLACEMENT = "\ufffd"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Quoted bytes of an odd answer never show what looks like a credential (a hostile or
# misconfigured server may echo the Authorization header back).
_SHOWN_CREDENTIAL = re.compile(r"(bearer|basic)\s+\S+|eyJ[\w-]{4,}\.[\w-]*\.?[\w-]*", re.IGNORECASE)
_AUTHORITY = re.compile(
    r"(?P<host>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?", re.IGNORECASE
)
_ENVIRONMENT_ROOT = re.compile(r"/v2\.0/[^/]+/[^/]+(?=/|$)")

# Query options: a dict, or (name, value) pairs when a name repeats.
Params = dict[str, Any] | Iterable[tuple[str, Any]] | None


class BusinessCentralError(BcconnectError):
    """A request BC refused or could not answer. Never holds a token.

    `transient` is True when the same request may succeed later unchanged (throttling,
    outages, network): the class says so (`BusinessCentralRetryLaterError`), so that
    catching that class and reading the flag always agree. False when a person has to act
    (permissions, data, configuration). `may_have_applied` is True when a change was
    repeated after its first attempt's fate was lost (network error, 502, 504) and the
    repeat was refused in a way that attempt explains (409, 412, 404): check the entity
    before doing it again.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        request_id: str = "",
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
        may_have_applied: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.request_id = request_id
        self.method = method
        self.url = url
        self.retry_after = retry_after
        self.may_have_applied = may_have_applied

    @property
    def retry_later(self) -> bool:
        """`transient` under the name the README documents; `transient` is canonical."""
        return self.transient

    def __str__(self) -> str:
        parts = [self.message]
        if self.code and self.code not in self.message:
            parts.append(f"({self.code})")
        if self.status:
            parts.append(f"[HTTP {self.status}]")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return " ".join(parts)


class BusinessCentralRetryLaterError(BusinessCentralError):
    """BC is throttling, unavailable or unreachable: try the same request again later."""

    transient = True


class BusinessCentralRequestRefused(BusinessCentralError, ValueError):
    """The client refused to send a request (unsafe URL, PATCH without an ETag)."""


class UnsafeUrlError(ValueError):
    """A URL whose destination is not certain; the message says why, without the URL."""


@dataclass(frozen=True)
class Exchange:
    """One request sent to BC, as `on_exchange` hears of it: never its URL, headers or body.

    `status` is None when no answer came (`timed_out` says whether time ran out).
    """

    method: str
    seconds: float
    status: int | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class UrlTarget:
    """Where requests really sends a URL: the origin it connects to and the path it asks."""

    scheme: str
    host: str
    port: int
    path: str

    def contains(self, other: "UrlTarget") -> bool:
        """Whether `other` is on this origin, at this path or under it."""
        if (other.scheme, other.host, other.port) != (self.scheme, self.host, self.port):
            return False
        root = self.path.rstrip("/")
        return other.path == root or other.path.startswith(root + "/")


def url_target(url: str) -> UrlTarget:
    """Where requests will send `url`; `UnsafeUrlError` when that is not certain.

    The origin is read from the URL requests prepares, the way its adapter reads it to pick
    a connection, and urllib3 and urllib.parse must read the caller's URL the same way: a
    backslash, for one, splits them (`https://evil\\@bc.example/` is `bc.example` to
    urllib.parse and `evil` to urllib3). So backslashes, control characters, user info and
    hosts that are not plain ASCII names are refused outright, and so are `.` and `..`
    path segments, raw or percent-encoded (`%2e%2e`, `.%2e`, `..%2f`), which would climb.
    """
    url = str(url)
    _refuse_odd_characters(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        raise UnsafeUrlError("it is not an http(s) URL with a host")
    if "@" in parts.netloc:
        raise UnsafeUrlError("it has user info (user@) before the host")
    authority = _AUTHORITY.fullmatch(parts.netloc)
    if authority is None:
        raise UnsafeUrlError("its host is not a plain ASCII host name")
    prepared = _prepared_url(url)
    connected, parsed = urlsplit(prepared), parse_url(prepared)
    as_given = (scheme, authority["host"].strip("[]").lower(), _port(authority["port"]))
    by_adapter = (connected.scheme, connected.hostname, connected.port)
    by_urllib3 = (parsed.scheme, (parsed.host or "").strip("[]").lower(), parsed.port)
    if not as_given == by_adapter == by_urllib3:
        raise UnsafeUrlError("urllib3 and urllib.parse read different hosts in it")
    _refuse_dot_segments(parts.path)
    _refuse_dot_segments(connected.path)
    return UrlTarget(
        scheme, connected.hostname, connected.port or DEFAULT_PORTS[scheme], connected.path
    )


def _refuse_odd_characters(url):
    if "\\" in url:
        raise UnsafeUrlError("it contains a backslash")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise UnsafeUrlError("it contains a control character")
    if url != url.strip():
        raise UnsafeUrlError("it starts or ends with whitespace")


def _port(digits):
    return int(digits) if digits else None


def _prepared_url(url):
    """The URL as requests sends it (requoted, IDNA-encoded): what its adapter connects to."""
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except (requests.RequestException, LocationParseError, ValueError):
        raise UnsafeUrlError("requests cannot parse it") from None
    return prepared.url


def _refuse_dot_segments(path):
    """Refuse `path` if a segment is `.` or `..` once decoded, however many times.

    Decoding repeatedly catches `%252e`; splitting the decoded path on `/` and `\\`
    catches separators smuggled as `%2f` or `%5c` around the dots.
    """
    previous = None
    while path != previous:
        previous, path = path, unquote(path)
        if any(segment in (".", "..") for segment in re.split(r"[/\\]", path)):
            raise UnsafeUrlError("its path has a '.' or '..' segment (raw or percent-encoded)")


def _refusal(url, reason, *, code="Url_Unsafe"):
    return BusinessCentralRequestRefused(
        f"Refusing to send the bearer token to {_loggable(url)}: {reason}.",
        code=code,
        url=_loggable(url),
    )


def _network_error(message, *, method, url, retry_after=None):
    """BC could not be reached, or its answer was lost: worth the same request later."""
    return BusinessCentralRetryLaterError(
        message, code="Network_Error", method=method, url=_loggable(url), retry_after=retry_after
    )


def environment_root(url: str) -> str:
    """`scheme://host/v2.0/<tenant>/<environment>` for a BC URL under it, else the URL.

    The bearer token may go anywhere under it: `api/v2.0`, Microsoft's other APIs
    (`api/microsoft/automation/v2.0`), custom APIs (`api/<publisher>/<group>/<version>`)
    and `ODataV4` all live there, while another environment or tenant does not.
    """
    url = url.rstrip("/")
    parts = urlsplit(url)
    match = _ENVIRONMENT_ROOT.match(parts.path)
    if match is None:
        return url
    return f"{parts.scheme}://{parts.netloc}{match.group()}"


@dataclass(frozen=True)
class RetryPolicy:
    """How long the client retries what BC may answer later (429, 503, network errors).

    At most `max_retries` retries, and none whose wait would end more than `retry_budget`
    seconds after the first attempt. When BC names no Retry-After, the wait doubles from
    `backoff_base` up to `backoff_cap` seconds, with jitter.
    """

    max_retries: int = 5
    retry_budget: float = 120.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0

    def backoff(self, retries: int, jitter: float) -> float:
        """Seconds to wait after `retries` retries; `jitter` is a random number in [0, 1)."""
        delay = min(self.backoff_cap, self.backoff_base * 2**retries)
        return delay * (0.5 + jitter / 2)  # Clients throttled together spread out.


class TokenProvider(Protocol):
    """Returns a valid access token; a fresh one, not a cached one, when `force_refresh`."""

    def __call__(self, force_refresh: bool = False) -> str: ...


@dataclass(frozen=True)
class Page:
    """One page of a collection, with how BC answered it.

    `next_link` is the next page's URL, already checked to be under the environment root;
    `elapsed` is the seconds its request took, retries included. `entity` is True when BC
    answered one entity (a GET by key, no `value` array): it is the page's one row.
    `annotations` are the answer's other top-level members (`@odata.context`, ...), so what
    BC sent can be shown; `replaced` counts lone UTF-16 surrogates replaced by U+FFFD.
    `stop` is the error that ends the paging after this page (a refused nextLink): the
    page's rows are whole, the pages after it were not read.
    """

    rows: list[dict[str, Any]]
    status: int
    request_id: str | None
    elapsed: float
    next_link: str | None
    entity: bool = False
    annotations: dict[str, Any] = field(default_factory=dict)
    replaced: int = 0
    stop: BusinessCentralError | None = None

    @property
    def more(self) -> bool:
        return self.next_link is not None


@dataclass(frozen=True)
class CallResult:
    """How BC answered one request: what the admin's endpoint test shows.

    `body` is the parsed JSON (the text when BC sent something else, None when it sent
    nothing); `headers` are BC's response headers, without any that could carry a
    credential (Set-Cookie); the request's own headers are never kept.
    """

    status: int
    request_id: str | None
    elapsed: float
    etag: str | None
    body: Any
    headers: dict[str, str]
    replaced: int = 0  # Lone UTF-16 surrogates in the body, replaced by U+FFFD.


@dataclass
class BatchResult:
    """One operation's answer inside a `$batch`, in the order the operations were given."""

    status: int | None
    body: object = None
    headers: dict = field(default_factory=dict)
    error: BusinessCentralError | None = None
    rolled_back: bool = False  # An atomic chunk failed: this operation's change was undone.

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and self.status < 400


# --- the per-authentication concurrency limit ------------------------------------------

_limiters = {}
_limiters_lock = threading.Lock()


def concurrency_limiter(key: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore for `key`: every client of one authentication shares it."""
    with _limiters_lock:
        limiter = _limiters.get((key, limit))
        if limiter is None:
            limiter = _limiters[(key, limit)] = threading.BoundedSemaphore(limit)
        return limiter


# --- helpers ---------------------------------------------------------------------------


def odata_quote(value: object) -> str:
    """A string literal for `$filter`: single quotes doubled, as OData requires."""
    return "'" + str(value).replace("'", "''") + "'"


def _encode_params(params):
    """Encode a query string the way OData servers read it: spaces as %20, `$` kept."""
    if not params:
        return ""
    pairs = params.items() if isinstance(params, dict) else params
    return "&".join(
        f"{quote(str(key), safe='$')}={quote(str(value), safe='$,()/:')}"
        for key, value in pairs
        if value is not None
    )


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def error_from_response(
    response: requests.Response, *, method: str, may_have_applied: bool = False
) -> BusinessCentralError:
    """Turn a BC error answer into the right exception, with BC's own code and message.

    With `may_have_applied`, the message says that an earlier attempt of this change may
    have been applied, so that a 409, 412 or 404 is not read as someone else's doing.
    """
    code, message = "", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code") or "")
        message = str(body["error"].get("message") or "")
    if not message:
        message = f"Business Central answered {response.status_code} {response.reason or ''}"
        message = message.strip()
    if may_have_applied:
        message = (
            f"{message} The first attempt may have been applied: its answer was lost, so "
            f"the {method} was sent again; check the entity before repeating it."
        )
    request_id = _request_id(response) or ""
    cls = (
        BusinessCentralRetryLaterError
        if response.status_code in RETRY_STATUSES or response.status_code >= 500
        else BusinessCentralError
    )
    return cls(
        message,
        status=response.status_code,
        code=code,
        request_id=request_id,
        method=method,
        url=_loggable(response.url or ""),
        may_have_applied=may_have_applied,
    )


def _request_id(response):
    """BC's id for the request (`request-id`), which Microsoft support asks for."""
    return next(
        (response.headers[name] for name in REQUEST_ID_HEADERS if name in response.headers), None
    )


def _body(response):
    """The parsed JSON answer (lone surrogates replaced) and how many were replaced; the
    text when it is not JSON; None when there is none."""
    if response.status_code == 204 or not response.content:
        return None, 0
    try:
        return without_lone_surrogates(response.json(), response.content)
    except ValueError:
        return without_lone_surrogates(response.text)


def without_lone_surrogates(value: Any, raw: bytes | None = None) -> tuple[Any, int]:
    """`value` with each lone UTF-16 surrogate replaced by U+FFFD, and how many there were.

    JSON may escape half of a surrogate pair (`"\\ud83d"`: text that BC cut by length
    inside an emoji); Python keeps it as a lone surrogate, which no UTF-8 output can
    encode. With `raw`, the answer's bytes, nothing is walked unless they hold such an
    escape: the common answer costs one scan.
    """
    if raw is not None and not _SURROGATE_ESCAPE.search(raw):
        return value, 0
    count = 0

    def clean(item):
        nonlocal count
        if isinstance(item, str):
            fixed, found = _LONE_SURROGATE.subn(REPLACEMENT, item)
            count += found
            return fixed
        if isinstance(item, dict):
            return {clean(key): clean(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [clean(inner) for inner in item]
        return item

    cleaned = clean(value)
    return cleaned, count


def shown_bytes(content: bytes, *, limit: int = SHOWN_BYTES) -> str:
    """The first bytes of an answer, fit for a message: printable, capped, no credential."""
    text = content[: limit * 4].decode("utf-8", "replace")
    text = _SHOWN_CREDENTIAL.sub("[hidden]", text)
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
    return repr(text[:limit] + ("…" if len(text) > limit or len(content) > limit * 4 else ""))


class _UnreadableAnswer(Exception):
    """A 2xx answer that is not the JSON asked for; `retry` when it looks cut short."""

    def __init__(self, error, *, retry):
        super().__init__(error.message)
        self.error, self.retry = error, retry


def _json_answer(response, *, method, url):
    """BC's JSON answer (lone surrogates replaced) and the count replaced.

    A body that does not parse but claims JSON (or names no type) was most likely cut
    short in transit: worth reading again. HTML or another type is a proxy, a sign-in
    page or a wrong URL answering instead of BC: asking again will not help.
    """
    try:
        return without_lone_surrogates(response.json(), response.content)
    except ValueError as err:
        problem = err
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    details = {
        "status": response.status_code,
        "request_id": _request_id(response) or "",
        "method": method,
        "url": _loggable(url),
    }
    first = shown_bytes(response.content)
    if not response.content:
        error = BusinessCentralError(
            "Business Central answered with an empty body, not JSON.",
            code="Response_Empty",
            **details,
        )
        raise _UnreadableAnswer(error, retry=False)
    looks_html = response.content.lstrip()[:1] == b"<"
    if "html" in content_type or (looks_html and "json" not in content_type):
        kind = "HTML"
    elif content_type and "json" not in content_type:
        kind = content_type[:60]
    else:
        error = BusinessCentralRetryLaterError(
            f"Business Central's answer is not valid JSON ({_json_problem(problem)}; cut "
            f"off in transit, or malformed): first bytes {first}.",
            code="Response_BadJson",
            **details,
        )
        raise _UnreadableAnswer(error, retry=True)
    error = BusinessCentralError(
        f"Business Central answered {kind}, not JSON: first bytes {first}.",
        code="Response_NotJson",
        **details,
    )
    raise _UnreadableAnswer(error, retry=False)


def _json_problem(err):
    message = getattr(err, "msg", None)
    position = getattr(err, "pos", None)
    if message and position is not None:
        return f"{message} at byte {position}"
    return "it does not parse"


def _lost_answer(err):
    """How a failed attempt is named in a message: no URL, no query, no token."""
    if isinstance(err, _UnreadableAnswer):
        return err.error.message
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return f"{type(err).__name__}: the connection closed in the middle of the answer"
    if isinstance(err, requests.exceptions.ContentDecodingError):
        return f"{type(err).__name__}: the compressed answer was cut or spoiled"
    return type(err).__name__


def _response_headers(response):
    """BC's response headers, leaving out any that could carry a credential."""
    return {
        name: value for name, value in response.headers.items() if not could_carry_credential(name)
    }


def _call_result(response, *, elapsed):
    body, replaced = _body(response)
    etag = response.headers.get("ETag")
    if etag is None and isinstance(body, dict):
        etag = body.get("@odata.etag")
    return CallResult(
        status=response.status_code,
        request_id=_request_id(response),
        elapsed=elapsed,
        etag=etag,
        body=body,
        headers=_response_headers(response),
        replaced=replaced,
    )


def checked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """`headers` as a dict, or `BusinessCentralRequestRefused` naming the one refused."""
    checked = {}
    for name, value in dict(headers or {}).items():
        reason = forbidden_header(name, value)
        if reason:
            raise BusinessCentralRequestRefused(
                f"Header {shown_header_name(name)} refused: {reason}.", code="Header_Refused"
            )
        checked[name] = value
    return checked


def _checked_method(method):
    method = str(method).upper()
    if method not in METHODS:
        raise BusinessCentralRequestRefused(
            f"Method {method[:20]!r} refused: use one of {', '.join(sorted(METHODS))}.",
            code="Method_Refused",
        )
    return method


def _loops(next_link, seen):
    """Whether `next_link` was followed already (the paging loops); remembers it in `seen`.

    A server whose nextLink points back at a page already read would otherwise keep an
    export or `iter()` running, and growing, forever. One URL per page is kept.
    """
    if not next_link:
        return False
    if next_link in seen:
        return True
    seen.add(next_link)
    return False


def _paging_loop(next_link):
    return BusinessCentralError(
        "Business Central's next-page link points back at a page already read: the paging "
        "would never end, so it was stopped.",
        code="Paging_Loop",
        method="GET",
        url=_loggable(next_link),
    )


def _refused_next_link(refusal):
    """The error that ends paging at a refused nextLink; its page's rows are kept."""
    return BusinessCentralRequestRefused(
        f"{refusal.message.rstrip('.')}; it was Business Central's next-page link, so the "
        "rows before it were kept and the pages after it were not read.",
        code="NextLink_Refused",
        method="GET",
        url=refusal.url,
    )


def _loggable(url):
    """The URL fit for a message or a log line.

    No query (OData filters may hold customer data), no fragment, no user info (it may
    be a password), and control characters escaped so a terminal shows them, not obeys.
    """
    url = re.split(r"[?#]", str(url), maxsplit=1)[0]
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if sep and "@" in authority:
        url = f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in url)


class RawAnswer:
    """BC's answer to `open()`: status and headers read, the body still on the wire.

    `chunks()` yields the body as it arrives (gzip undone) and closes the answer at its
    end; a connection lost mid-body raises `BusinessCentralRetryLaterError`, nothing of
    requests. Call `close()` when the body is not wanted.
    """

    def __init__(self, response: requests.Response, *, method: str) -> None:
        self._response, self.method = response, method
        self.status = response.status_code
        self.headers = _response_headers(response)
        self.url = response.url
        self.request_id = _request_id(response)

    def chunks(self, size: int = 64 * 1024) -> Iterator[bytes]:
        try:
            yield from self._response.iter_content(size)
        except LOST_ANSWER_ERRORS as err:
            raise _network_error(
                f"Business Central's answer was cut off: {_lost_answer(err)}",
                method=self.method,
                url=self.url,
            ) from None
        finally:
            self._response.close()

    def close(self) -> None:
        self._response.close()


class BusinessCentralClient:
    """Calls one BC API root with bearer tokens from `token_provider`.

    `token_provider(force_refresh=False) -> str` is asked for every request, so a token
    refreshed elsewhere is picked up at once; on a 401 it is asked once with
    `force_refresh=True`. `retry` says how long to retry what BC may answer later; `sleep`,
    `clock` and `random` are injectable for tests. `on_exchange(Exchange)`, when given, is
    told of every request sent (each retry, redirect and refresh too): metrics hook in here.

    Paths are relative to `base_url`. The token goes only under `environment_url`, the
    environment root (`.../v2.0/<tenant>/<environment>`; for a base URL not of that form,
    the base URL itself): absolute URLs, nextLinks and redirects elsewhere are refused, as
    is any URL whose destination `url_target` finds uncertain. `environment_client(path)`
    reaches the environment's other APIs and `ODataV4` by relative paths.
    """

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = (5, 60),
        retry: RetryPolicy = RetryPolicy(),
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        concurrency_key: str | None = None,
        allowed_hosts: Iterable[str] | None = None,
        api_host: str | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = random.random,
        on_exchange: Callable[[Exchange], object] | None = None,
    ) -> None:
        root_url = base_url.rstrip("/")
        self.environment_url = environment_root(root_url)
        self.token_provider = token_provider
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry = retry
        self.max_concurrency = max_concurrency
        self.concurrency_key = concurrency_key or root_url
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None
        parts = urlsplit(root_url)
        self.api_host = (api_host or f"{parts.scheme}://{parts.netloc}").rstrip("/")
        self._sleep, self._clock, self._random = sleep, clock, random
        self._on_exchange = on_exchange
        self._limiter = concurrency_limiter(self.concurrency_key, max_concurrency)
        self._boundary = self._target(self.environment_url)
        self._check_host(self._boundary)
        self._check_host(self._target(self.api_host))
        self._aim(base_url, root_url=root_url)

    def __repr__(self) -> str:
        return f"<BusinessCentralClient {self.base_url}>"

    # --- public API ----------------------------------------------------------------------

    def get(self, path: str, params: Params = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any) -> Any:
        return self.request("POST", path, json=json)

    def patch(self, path: str, json: Any, etag: str | None) -> Any:
        return self.request("PATCH", path, json=json, headers={"If-Match": self._etag(etag)})

    def delete(self, path: str, etag: str | None) -> Any:
        return self.request("DELETE", path, headers={"If-Match": self._etag(etag)})

    def iter(
        self, path: str, params: Params = None, page_size: int | None = None, **options: Any
    ) -> Iterator[dict[str, Any]]:
        """Yield every entity of a collection, one page in memory at a time.

        `options` are those of `pages()`: `headers=`, and `prefetch=True` to fetch the next
        page while the caller reads this one (then two pages are in memory).
        """
        return self._rows(self.pages(path, params, page_size=page_size, **options))

    def pages(
        self,
        path: str,
        params: Params = None,
        *,
        page_size: int | None = None,
        headers: Mapping[str, str] | None = None,
        prefetch: bool = False,
    ) -> Iterator[Page]:
        """Yield a collection page by page, following `@odata.nextLink`.

        With `prefetch`, page N+1 is requested (in a thread of this generator's own, under
        the same concurrency limit) as page N is handed over: exactly one request ahead.
        Its error, if any, is raised when the caller asks for page N+1. Closing the
        generator (`close()`, `break` out of a loop over it, losing it) waits for that
        request to end, at most the client's timeout, so no thread or connection is left.
        Headers, URL and page size are checked here, before anything is sent.
        """
        headers = self._page_headers(page_size, checked_headers(headers))
        url = self._url(path, params)
        if prefetch:
            return self._pages_ahead(url, headers)
        return self._pages(url, headers)

    @staticmethod
    def _page_headers(page_size, headers):
        if page_size is not None:
            if not 1 <= int(page_size) <= MAX_PAGE_SIZE:
                raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
            prefer = [value for name, value in headers.items() if name.lower() == "prefer"]
            headers = {name: value for name, value in headers.items() if name.lower() != "prefer"}
            headers["Prefer"] = ", ".join([*prefer, f"odata.maxpagesize={int(page_size)}"])
        return headers

    @staticmethod
    def _rows(pages):
        """Yield the rows of `pages`, letting go of each page before asking for the next."""
        with contextlib.closing(pages):
            for page in pages:
                rows, page = page.rows, None
                yield from rows
                rows = None

    def _pages(self, url, headers):
        seen = {url}
        while url:
            page = self._page(url, headers)
            url, loops, stop = page.next_link, _loops(page.next_link, seen), page.stop
            yield page
            page = None  # Not held while the next page is read: one page in memory.
            if stop is not None:
                raise stop
            if loops:
                raise _paging_loop(url)

    def _pages_ahead(self, url, headers):
        seen = {url}
        page, ahead = self._page(url, headers), None
        try:
            while True:
                url, loops, stop = page.next_link, _loops(page.next_link, seen), page.stop
                ahead = self._fetch_ahead(url, headers) if url and not loops else None
                yield page
                page = None  # The caller has it, or has let it go: at most two pages held.
                if stop is not None:
                    raise stop
                if not url:
                    return
                if loops:
                    raise _paging_loop(url)
                page = (ahead and ahead.result()) or self._page(url, headers)
                ahead = None
        finally:
            if ahead is not None:
                ahead.cancel()

    def _fetch_ahead(self, url, headers):
        """Start fetching the page at `url` in a thread; a None result means "fetch it here".

        Only HTTP runs in that thread. The token is taken here, in the caller's thread, since
        a token provider may use a database whose connections belong to the thread that
        opened them; a 401 there gives up, and the caller's thread fetches the page again,
        refreshing the token as any request does.
        """
        try:
            token = self.token_provider(force_refresh=False)
        except Exception:
            # Not raised now but when the caller reaches that page: it is fetched then,
            # in the caller's thread, and the token provider raises again if it must.
            return None

        def tokens(force_refresh=False):
            if force_refresh:
                raise _RefreshInCallerThread
            return token

        def work(cancelled):
            try:
                return self._page(url, headers, tokens=tokens, cancelled=cancelled)
            except _RefreshInCallerThread:
                return None

        return Ahead(work, name=f"bcconnect-prefetch-{self.concurrency_key}")

    def _page(self, url, headers, **attempt):
        """One page: a collection's `value`, or the one entity BC answered (a GET by key).

        Its body is read inside the retries (`_send(read=...)`), so an answer cut off in
        transit is asked for again like a dropped connection.
        """
        started = time.perf_counter()
        response, (body, replaced) = self._send(
            "GET",
            url,
            headers=headers,
            read=lambda answer: (answer, _json_answer(answer, method="GET", url=url)),
            **attempt,
        )
        elapsed = time.perf_counter() - started
        if not isinstance(body, dict):
            raise BusinessCentralError(
                f"Business Central answered JSON that is neither an OData collection nor an "
                f"entity (a {type(body).__name__}): first bytes {shown_bytes(response.content)}.",
                status=response.status_code,
                code="Response_NotACollection",
                request_id=_request_id(response) or "",
                method="GET",
                url=_loggable(url),
            )
        entity = not isinstance(body.get("value"), list)
        next_link, stop = (None if entity else body.get("@odata.nextLink")), None
        if next_link:
            try:
                next_link = self._resolve(next_link, base=self.base_url + "/")
            except BusinessCentralRequestRefused as err:
                next_link, stop = None, _refused_next_link(err)
        return Page(
            rows=[body] if entity else body["value"],
            status=response.status_code,
            request_id=_request_id(response),
            elapsed=elapsed,
            next_link=next_link or None,
            entity=entity,
            annotations={} if entity else {k: v for k, v in body.items() if k != "value"},
            replaced=replaced,
            stop=stop,
        )

    def companies(self) -> list[dict[str, Any]]:
        return list(self.iter("companies"))

    def company(self, id_or_name: str | uuid.UUID) -> Self:
        """A client scoped to `/companies({id})`, found by id, name or display name."""
        company_id = self._company_id(id_or_name)
        return self._derive(f"{self.root_url}/companies({company_id})", root_url=self.root_url)

    def environment_client(self, path: str = "") -> Self:
        """A client for `path` under the environment root, sharing this one's token and limit.

        `environment_client("ODataV4")` reaches the web services (then
        `.get("Company('CRONUS USA, Inc.')/Customer_Card")`),
        `environment_client("api/microsoft/automation/v2.0")` Microsoft's automation API and
        `environment_client("api/<publisher>/<group>/<version>")` a custom API, whose
        `company()` and `batch()` then work against that API's root.
        """
        path = str(path).strip("/")
        url = f"{self.environment_url}/{path}" if path else self.environment_url
        return self._derive(url, root_url=url)

    def _derive(self, base_url, *, root_url):
        """This client aimed elsewhere under its environment root, sharing everything else.

        Token provider, session, timeout, retry policy, concurrency limit, allowed hosts
        and the environment root all stay the parent's, so derived clients of one
        authentication pool connections and count against one limit.
        """
        derived = copy.copy(self)
        derived._aim(base_url, root_url=root_url)
        return derived

    def _aim(self, base_url, *, root_url):
        """Make `base_url` what paths are relative to, and `root_url` where `$batch` goes."""
        self.base_url = base_url.rstrip("/")
        self.root_url = root_url.rstrip("/")
        self._check_url(self.root_url)
        self._check_url(self.base_url)

    def environments(self) -> list[dict[str, Any]]:
        """The BC environments the token's user can reach (the admin center API)."""
        url = f"{self.api_host}/environments/v1.2"
        _, (body, _) = self._send(
            "GET", url, read=lambda answer: (answer, _json_answer(answer, method="GET", url=url))
        )
        return body.get("value", []) if isinstance(body, dict) else []

    def batch(
        self, operations: Iterable[Mapping[str, Any]], atomic: bool = False
    ) -> list[BatchResult]:
        """Run operations through `$batch`, 100 at a time; results in the given order.

        An operation is a dict: `method`, `path` (relative to this client), optional
        `json`, `etag` and `headers`. Failures come back per operation, not raised. With
        `atomic=True` each call of up to 100 runs in one transaction (`Isolation:
        snapshot`): atomicity holds per call, so after a failed call the remaining
        operations are not sent (their result has `status=None`).
        """
        requests_ = [self._batch_request(index, op) for index, op in enumerate(operations)]
        results = []
        for start in range(0, len(requests_), MAX_BATCH_SIZE):
            chunk = requests_[start : start + MAX_BATCH_SIZE]
            if atomic and any(not result.ok for result in results):
                results.extend(self._not_sent(len(chunk)))
                continue
            results.extend(self._run_batch(chunk, atomic=atomic))
        return results

    def request(self, method: str, path: str, **options: Any) -> Any:
        """`call()` for its body: the parsed JSON answer, or None when BC sends no body."""
        return self.call(method, path, **options).body

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
    ) -> CallResult:
        """Send one request and report how BC answered (status, request id, time, ETag).

        `etag` becomes If-Match; PATCH, PUT and DELETE need one. Headers are checked
        (`forbidden_header`) before anything is sent.
        """
        method = _checked_method(method)
        headers = checked_headers(headers)
        if etag is not None:
            headers["If-Match"] = self._etag(etag)
        self._require_if_match(
            method,
            headers,
            f"{method} needs an ETag (If-Match); pass etag='*' to overwrite blindly.",
        )
        url = self._url(path, params)
        started = time.perf_counter()
        response = self._send(method, url, json=json, headers=headers)
        return _call_result(response, elapsed=time.perf_counter() - started)

    def open(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> "RawAnswer":
        """Send one request as given and hand back BC's answer unread, whatever its status.

        For a proxy: `query` is a query string as the caller wrote it, `body` the bytes to
        send; the answer is streamed (`RawAnswer.chunks()`), never held whole. Everything
        `call()` checks is checked here before anything is sent (method, headers, If-Match,
        the URL under the environment root); the 401 refresh, the retries, the redirect
        rules and the concurrency limit apply as to any request.
        """
        method = _checked_method(method)
        headers = checked_headers(headers)
        self._require_if_match(
            method, headers, f"{method} needs an ETag: send If-Match (* to overwrite blindly)."
        )
        url = self._url(path)
        if query:
            url = self._check_url(f"{url}{'&' if '?' in url else '?'}{query}")
        response = self._send(method, url, data=body, headers=headers, passthrough=True)
        return RawAnswer(response, method=method)

    # --- URLs ----------------------------------------------------------------------------

    def _check_host(self, target):
        if self.allowed_hosts is not None and target.host not in self.allowed_hosts:
            raise BusinessCentralRequestRefused(
                f"Bearer tokens are not sent to {target.host}: not an allowed BC host.",
                code="Host_NotAllowed",
            )

    def _url(self, path, params=None):
        """The checked URL for `path`: relative to the base URL, or absolute."""
        path = str(path)
        if "://" in path or path.startswith("//"):
            url = path
        else:
            url = f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url
        query = _encode_params(params)
        if query:
            url += ("&" if "?" in url else "?") + query
        return self._check_url(url)

    def _check_url(self, url):
        """`url` if the token may go there: a certain destination under the environment root."""
        if not self._boundary.contains(self._target(url)):
            raise _refusal(url, f"it is outside {self.environment_url}", code="Url_OutsideBaseUrl")
        return url

    @staticmethod
    def _target(url):
        try:
            return url_target(url)
        except UnsafeUrlError as err:
            raise _refusal(url, err) from None

    def _resolve(self, link, *, base):
        """A nextLink or Location made absolute and checked.

        Its own path is checked before joining too: `urljoin` would quietly resolve raw
        `..` segments, and a server has no reason to send any.
        """
        link = str(link)
        try:
            _refuse_odd_characters(link)
            _refuse_dot_segments(urlsplit(link).path)
        except UnsafeUrlError as err:
            raise _refusal(link, err) from None
        return self._check_url(urljoin(base, link))

    @staticmethod
    def _etag(etag):
        if not etag:
            raise BusinessCentralRequestRefused(
                "An ETag is required (the entity's @odata.etag); pass etag='*' to overwrite "
                "blindly.",
                code="ETag_Required",
            )
        return etag

    @staticmethod
    def _require_if_match(method, headers, refusal):
        """Refuse a PATCH, PUT or DELETE without If-Match: BC would apply it blindly."""
        if method in CONDITIONAL_METHODS and not headers.get("If-Match"):
            raise BusinessCentralRequestRefused(refusal, code="ETag_Required", method=method)

    def _company_id(self, id_or_name):
        try:
            return str(uuid.UUID(str(id_or_name)))
        except ValueError:
            pass
        wanted = str(id_or_name).casefold()
        for company in self.iter("companies"):
            names = (company.get("name", ""), company.get("displayName", ""))
            if wanted in {name.casefold() for name in names if name}:
                return company["id"]
        raise BusinessCentralError(
            f"No company named {id_or_name!r} in this environment.", code="Company_NotFound"
        )

    # --- $batch --------------------------------------------------------------------------

    def _batch_request(self, index, op):
        method = op.get("method", "GET").upper()
        headers = dict(op.get("headers") or {})
        if "etag" in op:
            headers["If-Match"] = self._etag(op["etag"])
        self._require_if_match(
            method,
            headers,
            f"Operation {index}: {method} needs an ETag; pass etag='*' to overwrite blindly.",
        )
        url = self._url(op["path"], op.get("params"))
        request = {"method": method, "id": str(index), "url": url, "headers": headers}
        if op.get("json") is not None:
            request["body"] = op["json"]
            request["headers"].setdefault("Content-Type", "application/json")
        return request

    def _run_batch(self, chunk, *, atomic):
        headers = {"Accept": "application/json"}
        if atomic:
            headers["Isolation"] = "snapshot"
        base = self.root_url + "/"  # Inner URLs are relative to the service root.
        body = {
            "requests": [
                {**request, "url": request["url"][len(base) :]}
                if request["url"].startswith(base)
                else request
                for request in chunk
            ]
        }
        url = f"{self.root_url}/$batch"
        response, (answer, _) = self._send(
            "POST",
            url,
            json=body,
            headers=headers,
            read=lambda answer: (answer, _json_answer(answer, method="POST", url=url)),
        )
        listed = answer.get("responses") if isinstance(answer, dict) else None
        answers = {str(a.get("id")): a for a in listed or [] if isinstance(a, dict)}
        results = [self._batch_result(answers.get(r["id"]), r) for r in chunk]
        if atomic and any(not result.ok for result in results):
            for result in results:
                result.rolled_back = True
        return results

    @staticmethod
    def _batch_result(answer, request):
        if answer is None:
            return BatchResult(
                status=None,
                error=BusinessCentralError(
                    "Not run: an earlier operation of this atomic batch failed.",
                    code="Batch_NotRun",
                    method=request["method"],
                    url=_loggable(request["url"]),
                ),
            )
        status, body = int(answer.get("status", 0)), answer.get("body")
        headers = answer.get("headers") or {}
        error = None
        if status >= 400:
            details = body.get("error", {}) if isinstance(body, dict) else {}
            error = BusinessCentralError(
                details.get("message") or f"Operation failed with HTTP {status}",
                status=status,
                code=details.get("code", ""),
                method=request["method"],
                url=_loggable(request["url"]),
            )
        return BatchResult(status=status, body=body, headers=headers, error=error)

    @staticmethod
    def _not_sent(count):
        return [
            BatchResult(
                status=None,
                error=BusinessCentralError(
                    "Not sent: an earlier atomic batch failed.", code="Batch_NotSent"
                ),
            )
            for _ in range(count)
        ]

    # --- sending, retrying ---------------------------------------------------------------

    def _send(
        self,
        method,
        url,
        *,
        json=None,
        data=None,
        headers=None,
        tokens=None,
        cancelled=None,
        read=None,
        passthrough=False,
    ):
        """Send with auth, the concurrency limit, retries and redirects kept on the API host.

        `tokens` replaces the client's token provider for this request. Once `cancelled` is
        set (its caller is gone), waits for a retry or for the concurrency limit stop with
        `Cancelled` and nothing more is sent. `read(response)`, when given, makes what is
        returned, inside the retries: an answer it finds cut short (`_UnreadableAnswer`
        with `retry`) is asked for again, as a dropped connection is. Any other failure of
        requests becomes a `BusinessCentralError`: nothing of requests escapes.
        With `passthrough` (the proxy), BC's answer comes back unread (streamed) whatever
        its status, once the 401 refresh and the retries that fit the budget are done: an
        error answer, or one whose Retry-After would outlast the budget, is returned as is.
        """
        tokens = tokens or self.token_provider
        sleep = self._sleep if cancelled is None else cancellable_sleep(self._sleep, cancelled)
        state = _Attempts(deadline=self._clock() + self.retry.retry_budget)
        idempotent = method in IDEMPOTENT_METHODS or (
            method == "PATCH" and (headers or {}).get("If-Match", "*") != "*"
        )
        while True:
            try:
                token = tokens(force_refresh=state.take_refresh())
                response = self._send_once(
                    method, url, json, headers, token, cancelled, data=data, stream=passthrough
                )
            except LOST_ANSWER_ERRORS as err:
                state.fate_unknown = True
                if not idempotent:
                    raise _network_error(
                        f"Network error during {method}; not repeated because it may have "
                        f"reached BC: {_lost_answer(err)}",
                        method=method,
                        url=url,
                    ) from None
                self._wait_or_raise(state, None, method, url, sleep, network_error=err)
                continue
            except requests.RequestException as err:
                raise BusinessCentralError(
                    f"The request to Business Central could not be made: {type(err).__name__}.",
                    code="Request_Failed",
                    method=method,
                    url=_loggable(url),
                ) from None
            if response.status_code == 401 and not state.refreshed:
                state.refreshed = state.force_refresh = True  # Once: a second 401 is final.
                response.close()
                continue
            if response.status_code in RETRY_STATUSES and (
                idempotent or response.status_code in RETRY_ANY_METHOD
            ):
                state.fate_unknown |= response.status_code in FATE_UNKNOWN_STATUSES
                if not self._wait_or_raise(
                    state, response, method, url, sleep, give_back=passthrough
                ):
                    return response
                continue
            if response.is_redirect:
                url = self._redirect_target(response, method, state)
                continue
            if response.status_code >= 400 and not passthrough:
                raise error_from_response(
                    response,
                    method=method,
                    may_have_applied=state.may_have_applied(method, response.status_code),
                )
            if read is None:
                return response
            try:
                return read(response)
            except _UnreadableAnswer as err:
                if not (err.retry and idempotent):
                    raise err.error from None
                self._wait_or_raise(state, None, method, url, sleep, network_error=err)

    def _send_once(
        self, method, url, json, headers, token, cancelled=None, data=None, stream=False
    ):
        all_headers = {"Accept": "application/json", **(headers or {})}
        all_headers["Authorization"] = f"Bearer {token}"
        if json is not None:
            data = jsonlib.dumps(json).encode()
            all_headers.setdefault("Content-Type", "application/json")
        started = time.perf_counter()
        with self._slot(cancelled):
            try:
                response = self.session.request(
                    method,
                    url,
                    data=data,
                    headers=all_headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=stream,
                )
            except requests.RequestException as err:
                seconds = time.perf_counter() - started
                logger.debug(
                    "BC %s %s failed after %.0f ms: %s",
                    method,
                    url,
                    seconds * 1000,
                    type(err).__name__,
                )
                self._tell(method, seconds, timed_out=isinstance(err, requests.Timeout))
                raise
        seconds = time.perf_counter() - started
        logger.debug("BC %s %s -> %s in %.0f ms", method, url, response.status_code, seconds * 1000)
        self._tell(method, seconds, status=response.status_code)
        return response

    def _tell(self, method, seconds, **answer):
        if self._on_exchange is not None:
            self._on_exchange(Exchange(method, seconds, **answer))

    @contextlib.contextmanager
    def _slot(self, cancelled):
        """A place under the authentication's concurrency limit, unless cancelled first."""
        if cancelled is None:
            self._limiter.acquire()
        else:
            while not self._limiter.acquire(timeout=SLEEP_SLICE):
                if cancelled.is_set():
                    raise Cancelled
            if cancelled.is_set():
                self._limiter.release()
                raise Cancelled
        try:
            yield
        finally:
            self._limiter.release()

    def _wait_or_raise(
        self, state, response, method, url, sleep, network_error=None, give_back=False
    ):
        """Sleep before the next attempt and return True; or, when none fits, raise (or
        return False with `give_back`: the caller hands BC's answer back as it is)."""
        delay = None
        if response is not None:
            delay = parse_retry_after(response.headers.get("Retry-After"), now=self._clock())
        if delay is None:
            delay = self.retry.backoff(state.retries, self._random())
        out_of_budget = self._clock() + delay > state.deadline
        if state.retries >= self.retry.max_retries or out_of_budget:
            if response is not None and give_back:
                return False
            if response is not None:
                error = error_from_response(response, method=method)
                error.retry_after = delay
                raise error
            if isinstance(network_error, _UnreadableAnswer):
                error = network_error.error
                error.message = f"{error.message} ({state.retries + 1} attempts)"
                error.args = (error.message,)
                error.retry_after = delay
                raise error from None
            raise _network_error(
                f"Business Central could not be reached after {state.retries + 1} attempts: "
                f"{_lost_answer(network_error)}",
                method=method,
                url=url,
                retry_after=delay,
            ) from None
        if response is not None:
            response.close()
        state.retries += 1
        logger.debug("BC %s %s: retry %s in %.2f s", method, url, state.retries, delay)
        sleep(delay)
        return True

    def _redirect_target(self, response, method, state):
        """Follow a redirect only within the API root; elsewhere the token would leak."""
        location = response.headers.get("Location", "")
        response.close()
        state.redirects += 1
        if method not in ("GET", "HEAD") or state.redirects > MAX_REDIRECTS:
            raise BusinessCentralError(
                f"Business Central redirected a {method} (or redirected too often); not followed.",
                status=response.status_code,
                code="Redirect_NotFollowed",
                method=method,
                url=_loggable(urljoin(response.url, location)),
            )
        return self._resolve(location, base=response.url)


class _RefreshInCallerThread(Exception):
    """A prefetch thread got a 401: the caller's thread fetches the page with a new token."""


@dataclass
class _Attempts:
    deadline: float
    retries: int = 0
    redirects: int = 0
    refreshed: bool = False
    force_refresh: bool = False
    fate_unknown: bool = False  # An earlier attempt may have reached BC; its answer was lost.

    def may_have_applied(self, method, status):
        """Whether a lost earlier attempt of this change explains BC refusing the repeat."""
        return (
            self.fate_unknown
            and method in CONDITIONAL_METHODS
            and status in MAY_HAVE_APPLIED_STATUSES
        )

    def take_refresh(self):
        """Whether to force a token refresh on this attempt (only the one after a 401)."""
        force, self.force_refresh = self.force_refresh, False
        return force
