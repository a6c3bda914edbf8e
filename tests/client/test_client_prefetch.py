"""Paging one request ahead, call() reports and caller headers (issue 12)."""

import json
import threading
import weakref
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from authentications.connections.tokens import TokenError, bc_client
from bcconnect.client import (
    BusinessCentralClient,
    BusinessCentralError,
    BusinessCentralRequestRefused,
    CallResult,
    Page,
    concurrency_limiter,
    forbidden_header,
)
from bcconnect.prefetch import Ahead
from tests.helpers import OFFLINE_BASE, FakeClock, Tokens, fresh, make_client, offline_client

COLLECTION = f"{OFFLINE_BASE}/customers"


@pytest.fixture
def fake(fake_microsoft):
    fake_microsoft.bc.company.generated = 2_500
    return fake_microsoft


def customers_client(fake, **kwargs):
    return make_client(fake, **kwargs).company(fake.bc.company.id)


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("bcconnect-prefetch")]


def checked_out_connections(session):
    """Connections taken from the session's pools and not given back."""
    pools = session.get_adapter("https://").poolmanager.pools
    return sum(pools[key].pool.maxsize - pools[key].pool.qsize() for key in pools.keys())


class PagedCollection:
    """A `responses` callback serving `pages` pages of two rows, recording what happened.

    `events` is the order of things across threads: ("start", n) / ("end", n) around each
    page request, plus whatever the test's consumer appends. `fail` maps a page number to
    the (status, body) it answers instead; `hold` maps a page number to an event its
    request waits for before answering.
    """

    def __init__(self, pages=3, *, fail=None, hold=None, register=True):
        self.pages, self.fail, self.hold = pages, fail or {}, hold or {}
        self.events = []
        self.started = {n: threading.Event() for n in range(1, pages + 1)}
        self.threads = []
        self.headers = []
        if register:
            responses.add_callback(responses.GET, COLLECTION, callback=self)

    def __call__(self, request):
        number = int(parse_qs(urlsplit(request.url).query).get("$skiptoken", ["1"])[0])
        self.events.append(("start", number))
        self.threads.append(threading.current_thread())
        self.headers.append(dict(request.headers))
        self.started[number].set()
        if number in self.hold:
            self.hold[number].wait(10)
        self.events.append(("end", number))
        if number in self.fail:
            status, body = self.fail[number]
            return status, {"request-id": f"req-{number}"}, body
        page = {"value": [{"page": number, "row": row} for row in (1, 2)]}
        if number < self.pages:
            page["@odata.nextLink"] = f"{COLLECTION}?$skiptoken={number + 1}"
        return 200, {"request-id": f"req-{number}"}, json.dumps(page)


# --- the same answers, sooner ---------------------------------------------------------------


def test_prefetched_rows_and_pages_equal_the_plain_ones(fake):
    client = customers_client(fake)

    plain = list(client.iter("customers", page_size=300))
    ahead = list(client.iter("customers", page_size=300, prefetch=True))
    plain_pages = list(client.pages("customers", page_size=300))
    ahead_pages = list(client.pages("customers", page_size=300, prefetch=True))

    assert len(plain) == 2_500
    assert ahead == plain
    assert [p.rows for p in ahead_pages] == [p.rows for p in plain_pages]
    assert [p.next_link for p in ahead_pages] == [p.next_link for p in plain_pages]
    assert [p.more for p in ahead_pages] == [True] * 8 + [False]
    assert {p.status for p in ahead_pages} == {200}
    request_ids = [p.request_id for p in plain_pages + ahead_pages]
    assert all(request_ids) and len(set(request_ids)) == 18
    assert all(isinstance(p.elapsed, float) for p in ahead_pages)


def test_page_is_frozen_and_says_whether_more_follow():
    page = Page(rows=[], status=200, request_id="r", elapsed=0.1, next_link=None)

    assert page.more is False
    with pytest.raises(AttributeError):
        page.status = 500


@responses.activate
def test_page_two_is_requested_while_the_caller_still_reads_page_one():
    bc = PagedCollection(pages=3)
    client = offline_client()

    for row in client.iter("customers", prefetch=True):
        bc.events.append(("read", row["page"], row["row"]))
        if row == {"page": 1, "row": 2}:
            # The consumer is still inside page 1: page 2's request has begun without it.
            assert bc.started[2].wait(10)
            bc.events.append(("done reading", 1))

    events = bc.events
    assert events.index(("start", 2)) < events.index(("done reading", 1))
    # Exactly one ahead: page 3 is asked for only once the caller moved on to page 2.
    assert events.index(("start", 3)) > events.index(("done reading", 1))
    assert [e for e in events if e[0] == "start"] == [("start", 1), ("start", 2), ("start", 3)]
    # Page 1 is fetched by the caller; the pages ahead by threads of the generator's own.
    assert bc.threads[0] is threading.current_thread()
    assert threading.current_thread() not in bc.threads[1:]


def test_prefetch_stays_exactly_one_request_ahead(fake):
    client = customers_client(fake)
    seen = 0

    for _customer in client.iter("customers", page_size=100, prefetch=True):
        seen += 1
        if seen == 50:
            # Wait for the request ahead to finish, then look: one ahead, not two.
            [thread.join(10) for thread in prefetch_threads()]
            assert fake.bc.count("GET", "/customers") == 2
    assert seen == 2_500
    assert fake.bc.count("GET", "/customers") == 25


# --- errors arrive with their page -----------------------------------------------------------


@responses.activate
def test_an_error_on_page_three_is_raised_when_the_caller_reaches_page_three():
    forbidden = '{"error": {"code": "Authorization_Forbidden", "message": "No permission."}}'
    bc = PagedCollection(pages=4, fail={3: (403, forbidden)})
    seen = []

    with pytest.raises(BusinessCentralError) as caught:
        for page in offline_client().pages("customers", prefetch=True):
            seen.append(page.rows[0]["page"])
            if seen == [2]:
                assert bc.started[3].wait(10)  # BC already refused page 3 ...
    # ... but the caller had pages 1 and 2 first, and hears of it at page 3.
    assert seen == [1, 2]
    assert (caught.value.status, caught.value.code) == (403, "Authorization_Forbidden")
    assert caught.value.request_id == "req-3"
    assert ("start", 4) not in bc.events
    assert prefetch_threads() == []


@responses.activate
def test_an_answer_that_is_not_a_collection_is_a_clear_error():
    responses.get(COLLECTION, json=["not", "a", "collection"], headers={"request-id": "r-9"})

    with pytest.raises(BusinessCentralError) as caught:
        list(offline_client().iter("customers", prefetch=True))

    assert caught.value.code == "Response_NotACollection"
    assert caught.value.request_id == "r-9"


# --- nothing outlives the generator ------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize("how", ["close", "break", "lost", "consumer raises"])
def test_leaving_early_stops_the_prefetch_and_leaves_no_thread(how):
    release = threading.Event()
    bc = PagedCollection(pages=5, hold={2: release})
    # The request ahead answers only once the caller is already leaving.
    releaser = threading.Timer(0.05, release.set)
    before = set(threading.enumerate())

    def reach_page_two_in_flight():
        assert bc.started[2].wait(10)
        releaser.start()

    if how == "break":
        for _row in offline_client().iter("customers", prefetch=True):
            reach_page_two_in_flight()
            break
    elif how == "consumer raises":
        with pytest.raises(ZeroDivisionError):
            for row in offline_client().iter("customers", prefetch=True):
                reach_page_two_in_flight()
                row["page"] / 0
    else:
        rows = offline_client().iter("customers", prefetch=True)
        next(rows)
        reach_page_two_in_flight()
        if how == "close":
            rows.close()
        else:
            del rows  # Dropped: finalised at once, no garbage collection needed.

    assert ("end", 2) in bc.events  # Leaving waited for the request under way ...
    releaser.join()
    # ... and no thread outlives it (only prefetchers: another test's thread may still be
    # ending beside this one),
    assert not set(prefetch_threads()) - before
    assert ("start", 3) not in bc.events  # nor is anything more asked for.


def test_closing_early_leaves_no_connection_checked_out(fake):
    fake.bc.latency = 0.05
    client = customers_client(fake)
    rows = client.iter("customers", page_size=100, prefetch=True)

    next(rows)
    rows.close()

    assert prefetch_threads() == []
    assert checked_out_connections(client.session) == 0
    assert fake.bc.count("GET", "/customers") == 2


def test_a_consumer_error_midway_leaves_no_connection_checked_out(fake):
    client = customers_client(fake)

    def consume():
        for customer in client.iter("customers", page_size=100, prefetch=True):
            if customer["number"] == "C000150":
                raise KeyError("the consumer failed")

    with pytest.raises(KeyError):
        consume()

    assert prefetch_threads() == []
    assert checked_out_connections(client.session) == 0


@responses.activate
def test_closing_during_a_retry_wait_stops_without_retrying():
    throttled = '{"error": {"code": "Application_TooManyRequests", "message": "Slow down."}}'
    bc = PagedCollection(pages=3, fail={2: (429, throttled)})
    waiting = threading.Event()

    def sleep(seconds):
        waiting.set()
        threading.Event().wait(seconds)

    client = BusinessCentralClient(OFFLINE_BASE, lambda force_refresh=False: "t", sleep=sleep)
    rows = client.iter("customers", prefetch=True)
    next(rows)
    assert waiting.wait(10)  # The prefetch got a 429 and waits its Retry-After ...

    rows.close()  # ... which closing cuts short: no retry is sent.

    assert prefetch_threads() == []
    assert [e for e in bc.events if e[0] == "start"] == [("start", 1), ("start", 2)]


# --- the concurrency cap, tokens -----------------------------------------------------------------


def test_prefetch_with_one_request_at_a_time_still_finishes(fake):
    client = customers_client(fake, max_concurrency=1, concurrency_key="one-at-a-time")
    companies = []

    for customer in client.iter("customers", page_size=500, prefetch=True):
        if customer["number"].endswith("001"):
            # The caller's own request waits for the prefetch's turn: no deadlock.
            companies.append(len(client.get(f"customers({customer['id']})")))

    assert len(companies) == 3
    assert max(fake.bc.max_in_flight.values()) == 1


@responses.activate
def test_the_request_ahead_holds_the_authentications_limit():
    key = "shared-by-the-authentication"
    limiter = concurrency_limiter(key, 1)
    seen_free = []
    bc = PagedCollection(pages=2, register=False)

    def observe(request):
        free = limiter.acquire(blocking=False)
        if free:
            limiter.release()
        seen_free.append(free)
        return bc(request)

    responses.add_callback(responses.GET, COLLECTION, callback=observe)
    client = offline_client(max_concurrency=1, concurrency_key=key)

    rows = list(client.iter("customers", prefetch=True))

    assert len(rows) == 4
    assert seen_free == [False, False]  # Each request, the prefetch's too, held the slot.


@responses.activate
def test_a_401_on_the_request_ahead_refreshes_the_token_in_the_callers_thread():
    bc = PagedCollection(pages=3, register=False)
    calls = []

    def tokens(force_refresh=False):
        calls.append((threading.current_thread(), force_refresh))
        return "new-token" if force_refresh else "old-token"

    def expire_old_token(request):
        if request.headers["Authorization"] == "Bearer old-token" and "skiptoken=2" in request.url:
            return 401, {}, '{"error": {"code": "Authentication_InvalidCredentials"}}'
        return bc(request)

    responses.add_callback(responses.GET, COLLECTION, callback=expire_old_token)
    client = offline_client()
    client.token_provider = tokens

    rows = list(client.iter("customers", prefetch=True))

    assert [row["page"] for row in rows] == [1, 1, 2, 2, 3, 3]
    assert {thread for thread, _ in calls} == {threading.current_thread()}
    assert [force for _, force in calls].count(True) == 1


# --- headers from callers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "Host",
        "X-Api-Key",
        "Ocp-Apim-Subscription-Key",
        "X-Access-Token",
        "X-Client-Secret",
        "X_Auth_User",
        "X-Forwarded-Host",
        "Forwarded",
        "X-HTTP-Method-Override",
        "Content-Length",
        "Transfer-Encoding",
        "X-Bad\r\nAuthorization",
        "X Space",
        "",
    ],
)
def test_headers_that_could_carry_a_credential_or_redirect_trust_are_refused(name):
    assert forbidden_header(name)


@pytest.mark.parametrize(
    "value", ["x\r\nAuthorization: Bearer stolen", "x\nY", "tab\x00nul", "ünïcödé ✓", " padded"]
)
def test_header_values_with_line_breaks_or_odd_characters_are_refused(value):
    assert forbidden_header("X-Custom", value)


@pytest.mark.parametrize(
    "name, value",
    [
        ("Data-Access-Intent", "ReadOnly"),
        ("If-Match", 'W/"JzQ0O0VnQUFBQUo3QlRFQU1BQXdBREFBTUFBQUFBQT0xOzAwOyc="'),
        ("Prefer", "odata.include-annotations=*"),
        ("Accept-Language", "da-DK"),
        ("Isolation", "snapshot"),
        ("X-Custom", "Müller"),
    ],
)
def test_ordinary_headers_are_allowed(name, value):
    assert forbidden_header(name, value) is None


@responses.activate
@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer sneaky-value-1"},
        {"X-Secret": "sneaky-value-1"},
        {"X-Custom": "sneaky-value-1\r\nAuthorization: Bearer x"},
    ],
)
def test_refused_headers_stop_every_request_before_it_is_sent(headers):
    client = offline_client()
    attempts = [
        lambda: client.pages("customers", headers=headers),
        lambda: client.iter("customers", headers=headers, prefetch=True),
        lambda: client.call("GET", "customers", headers=headers),
        lambda: client.request("GET", "customers", headers=headers),
    ]

    for attempt in attempts:
        with pytest.raises(BusinessCentralRequestRefused) as caught:
            attempt()
        assert caught.value.code == "Header_Refused"
        assert "sneaky-value-1" not in str(caught.value)
        assert "Bearer" not in str(caught.value)
    assert len(responses.calls) == 0


@responses.activate
def test_caller_headers_go_with_every_page_next_to_the_page_size():
    bc = PagedCollection(pages=2)
    headers = {"Data-Access-Intent": "ReadOnly", "prefer": "odata.include-annotations=*"}

    pages = list(offline_client().pages("customers", page_size=2, headers=headers, prefetch=True))

    assert len(pages) == 2
    for sent in bc.headers:
        assert sent["Data-Access-Intent"] == "ReadOnly"
        assert sent["Prefer"] == "odata.include-annotations=*, odata.maxpagesize=2"
        assert sent["Authorization"] == "Bearer secret-token-value"


def test_a_refused_method_is_not_sent(fake):
    with pytest.raises(BusinessCentralRequestRefused) as caught:
        customers_client(fake).call("GET /x HTTP/1.1\r\nHost: evil", "customers")
    assert caught.value.code == "Method_Refused"
    assert fake.bc.requests == []


# --- call() -------------------------------------------------------------------------------------


def test_call_reports_status_request_id_etag_and_body(fake):
    tokens = Tokens(fake)
    client = customers_client(fake, tokens=tokens)

    created = client.call("POST", "customers", json={"displayName": "Reported Ltd"})
    assert isinstance(created, CallResult)
    assert created.status == 201
    assert created.request_id and created.request_id == created.headers["request-id"]
    assert created.etag == created.body["@odata.etag"]
    path = f"customers({created.body['id']})"

    changed = client.call("PATCH", path, json={"city": "Miami"}, etag=created.etag)
    assert (changed.status, changed.body["city"]) == (200, "Miami")
    assert changed.etag != created.etag

    gone = client.call("DELETE", path, etag=changed.etag)
    assert (gone.status, gone.body) == (204, None)
    for result in (created, changed, gone):
        assert tokens.current not in repr(result)
        assert "Authorization" not in result.headers


def test_call_refuses_a_change_without_an_etag_before_sending(fake):
    client = customers_client(fake)
    sent = len(fake.bc.requests)

    for method in ("PATCH", "DELETE"):
        with pytest.raises(BusinessCentralRequestRefused) as caught:
            client.call(method, "customers(1)", json={})
        assert caught.value.code == "ETag_Required"
    assert len(fake.bc.requests) == sent


@responses.activate
def test_call_keeps_bc_headers_but_not_cookies():
    responses.get(
        COLLECTION,
        json={"value": []},
        headers={
            "request-id": "r-1",
            "Set-Cookie": "ARRAffinity=session-cookie-value; Secure",
            "OData-Version": "4.0",
        },
    )

    result = offline_client().call("GET", "customers")

    assert result.headers["OData-Version"] == "4.0"
    assert result.request_id == "r-1"
    assert "session-cookie-value" not in repr(result)
    assert "secret-token-value" not in repr(result)


# --- through a stored authentication ------------------------------------------------------------


@pytest.mark.django_db
def test_prefetch_through_a_stored_authentication_reads_tokens_in_the_callers_thread(
    tokens_planted, fake_microsoft
):
    fake_microsoft.bc.company.generated = 450
    # The row is not committed (the test runs in a transaction): a prefetch thread asking
    # the database for the token would not find it.
    client = bc_client(tokens_planted).company(fake_microsoft.bc.company.id)

    rows = client.iter("customers", page_size=100, prefetch=True)
    first = next(rows)
    with fake_microsoft.entra.lock:  # BC stops accepting the token while page 1 is read.
        fake_microsoft.entra.access_tokens.pop(tokens_planted.access_token)
    rest = list(rows)

    assert [first, *rest] == list(client.iter("customers", page_size=100))
    assert fresh(tokens_planted).access_token != tokens_planted.access_token  # refreshed once
    assert prefetch_threads() == []


@responses.activate
def test_a_token_provider_failure_waits_for_the_page_that_needed_it():
    PagedCollection(pages=3)
    asked = []

    def tokens(force_refresh=False):
        asked.append(force_refresh)
        if len(asked) >= 2:  # Revoked while page 1 is read.
            raise TokenError("The refresh token was revoked.", code="invalid_grant")
        return "token"

    client = offline_client()
    client.token_provider = tokens
    seen = []

    with pytest.raises(TokenError):
        for page in client.pages("customers", prefetch=True):
            seen.append(page.rows[0]["page"])

    assert seen == [1]


# --- attacks -------------------------------------------------------------------------------------


@responses.activate
def test_a_next_link_to_another_host_is_refused_before_its_page_is_requested_ahead():
    responses.get(
        COLLECTION,
        json={"value": [{"id": 1}], "@odata.nextLink": "https://evil.example/steal?$skiptoken=2"},
    )
    evil = responses.get("https://evil.example/steal", json={"value": []})

    with pytest.raises(BusinessCentralRequestRefused):
        list(offline_client().iter("customers", prefetch=True))

    assert evil.call_count == 0
    assert prefetch_threads() == []


def test_closing_while_the_request_ahead_hangs_waits_no_longer_than_the_read_timeout(fake):
    fake.bc.fail_next(("sleep", 0), ("sleep", 5))  # Page 2 hangs past the read timeout.
    client = customers_client(fake, timeout=(5, 0.3))
    rows = client.iter("customers", page_size=100, prefetch=True)

    next(rows)
    rows.close()  # The read timeout ends the request ahead; its retry is not waited for.

    assert prefetch_threads() == []
    assert checked_out_connections(client.session) == 0
    assert fake.bc.count("GET", "/customers") == 2


def test_two_prefetching_iterations_share_one_slot_without_deadlock(fake):
    client = customers_client(fake, max_concurrency=1, concurrency_key="two-readers")
    first = client.iter("customers", page_size=200, prefetch=True)
    second = client.iter("customers", {"$filter": "city eq 'Miami'"}, page_size=50, prefetch=True)

    pairs = list(zip(first, second, strict=False))

    assert len(pairs) == 500  # Miami is one city in five
    assert {b["city"] for _, b in pairs} == {"Miami"}
    assert max(fake.bc.max_in_flight.values()) == 1
    first.close()
    assert prefetch_threads() == []


def test_work_ahead_cancelled_from_its_own_thread_does_not_join_itself():
    """The garbage collector may finalise a generator in the prefetch thread itself."""
    go = threading.Event()
    holder = {}

    def work(cancelled):
        go.wait(10)
        holder["ahead"].cancel()
        return cancelled.is_set()

    holder["ahead"] = Ahead(work, name="bcconnect-prefetch-test")
    go.set()

    assert holder["ahead"].result() is True
    assert prefetch_threads() == []


def test_a_throttled_page_ahead_waits_its_retry_after_like_any_request(fake):
    fake.bc.fail_next(("sleep", 0), ("status", 429, {"Retry-After": "2"}))
    clock = FakeClock()
    client = customers_client(fake, clock=clock)

    rows = list(client.iter("customers", page_size=500, prefetch=True))

    assert len(rows) == 2_500
    assert sum(clock.sleeps) == pytest.approx(2.0)
    assert fake.bc.count("GET", "/customers") == 6


def test_paging_ahead_logs_no_token_and_no_header_value(fake, caplog):
    tokens = Tokens(fake)
    client = customers_client(fake, tokens=tokens)
    headers = {"Data-Access-Intent": "ReadOnly", "X-Trace": "trace-value-0042"}
    caplog.set_level("DEBUG", logger="bcconnect")

    pages = list(client.pages("customers", page_size=500, headers=headers, prefetch=True))
    result = client.call("GET", "customers", params={"$top": 1}, headers=headers)

    assert len(pages) == 5 and result.status == 200
    assert "GET" in caplog.text  # The requests were logged, from both threads ...
    for secret in (tokens.current, "trace-value-0042", "Bearer"):  # ... without these.
        assert secret not in caplog.text
        assert secret not in repr(pages) + repr(result)


@responses.activate
def test_closing_while_the_request_ahead_waits_for_the_limit_sends_nothing_more():
    key = "busy-elsewhere"
    limiter = concurrency_limiter(key, 1)
    bc = PagedCollection(pages=3)
    asked = []

    def tokens(force_refresh=False):
        asked.append(force_refresh)
        if len(asked) == 2:  # As the request ahead starts, another request takes the place.
            assert limiter.acquire(blocking=False)
        return "token"

    client = offline_client(max_concurrency=1, concurrency_key=key)
    client.token_provider = tokens
    # The other request gives its place back in a while, should closing wait for it.
    releaser = threading.Timer(5, limiter.release)
    rows = client.iter("customers", prefetch=True)
    next(rows)
    releaser.start()
    try:
        rows.close()

        assert prefetch_threads() == []
        assert [e for e in bc.events if e[0] == "start"] == [("start", 1)]
    finally:
        releaser.join()


@responses.activate
@pytest.mark.parametrize("prefetch, held", [(False, 1), (True, 2)])
def test_a_page_let_go_is_not_kept_while_the_next_ones_are_read(prefetch, held):
    """One page in memory when reading (iter() lets go of each), two when paging ahead."""
    bc = PagedCollection(pages=5, register=False)
    pages_seen, alive_at_request = [], []

    def count_alive(request):
        alive_at_request.append(sum(ref() is not None for ref in pages_seen))
        return bc(request)

    responses.add_callback(responses.GET, COLLECTION, callback=count_alive)
    for page in offline_client().pages("customers", prefetch=prefetch):
        pages_seen.append(weakref.ref(page))
        page = None

    # While page N+1 is requested, page N is gone; paging ahead, page N+1 may be with the
    # caller while N+2 is requested, never N as well.
    assert len(alive_at_request) == 5
    assert max(alive_at_request) <= held - 1
