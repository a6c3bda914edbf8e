"""Code calls Business Central through the client: paging, ETags, batches, errors."""

import dataclasses
import email.utils
import inspect
import logging
import threading
import typing

import pytest
import requests
import responses

from bcconnect.client import (
    BusinessCentralClient,
    BusinessCentralError,
    BusinessCentralRequestRefused,
    BusinessCentralRetryLaterError,
    RetryPolicy,
    odata_quote,
)
from bcconnect.errors import BcconnectError
from tests.helpers import FakeClock, Tokens, issue_token, make_client, offline_client


@pytest.fixture
def fake(fake_microsoft):
    return fake_microsoft


def customers_path(fake):
    return f"companies({fake.bc.company.id})/customers"


# --- reading ---------------------------------------------------------------------------


def test_companies_and_a_company_by_name_or_id(fake):
    client = make_client(fake)

    companies = client.companies()

    assert [c["name"] for c in companies] == [
        "CRONUS USA, Inc.",
        "CRONUS Canada, Inc.",
        "My Company",
    ]
    by_name = client.company("cronus usa, inc.")
    by_id = client.company(companies[0]["id"])
    assert (
        by_name.base_url
        == by_id.base_url
        == (f"{fake.bc.base_url()}/companies({companies[0]['id']})")
    )
    first = by_name.get("customers", params={"$top": 1})["value"][0]
    assert first["number"] == "C000001"
    assert set(first) >= {"id", "number", "displayName", "@odata.etag", "lastModifiedDateTime"}


def test_unknown_company_name_is_a_clear_error(fake):
    with pytest.raises(BusinessCentralError) as caught:
        make_client(fake).company("Nope Ltd")
    assert caught.value.code == "Company_NotFound"
    assert "Nope Ltd" in str(caught.value)


def test_iter_follows_next_links_and_keeps_the_filter_on_every_page(fake):
    fake.bc.company.generated = 2_500
    client = make_client(fake).company(fake.bc.company.id)

    customers = list(client.iter("customers", {"$filter": "city eq 'Atlanta'"}, page_size=100))

    assert len(customers) == 500
    assert {c["city"] for c in customers} == {"Atlanta"}
    assert len({c["id"] for c in customers}) == 500
    pages = [query for method, path, query in fake.bc.requests if path.endswith("/customers")]
    assert len(pages) >= 5
    assert all("%24filter=city%20eq%20%27Atlanta%27" in q or "$filter=city" in q for q in pages)


def test_iter_holds_one_page_at_a_time(fake):
    fake.bc.company.generated = 300
    client = make_client(fake).company(fake.bc.company.id)
    seen = []

    for customer in client.iter("customers", page_size=100):
        seen.append(customer)
        if len(seen) == 50:
            # The generator asked for the first page only: it is lazy.
            assert fake.bc.count("GET", "/customers") == 1
    assert len(seen) == 300
    assert fake.bc.count("GET", "/customers") == 3


def test_top_limits_the_total_across_pages(fake):
    fake.bc.company.generated = 1_000
    client = make_client(fake).company(fake.bc.company.id)

    customers = list(client.iter("customers", {"$top": 250}, page_size=100))

    assert [c["number"] for c in customers] == [f"C{i:06d}" for i in range(1, 251)]


def test_filter_values_with_quotes_spaces_and_ampersands_are_encoded(fake):
    client = make_client(fake).company(fake.bc.company.id)
    name = "O'Brien & Sons = 100% #1"
    client.post("customers", {"displayName": name})

    found = list(client.iter("customers", {"$filter": f"displayName eq {odata_quote(name)}"}))

    assert [c["displayName"] for c in found] == [name]
    sent = fake.bc.requests[-1][2]
    assert "%20" in sent and "%26" in sent and "%27%27" in sent and "+" not in sent


def test_select_and_expand_style_params_pass_through(fake):
    client = make_client(fake).company(fake.bc.company.id)

    page = client.get("customers", {"$select": "id,number", "$top": 2})

    assert [set(c) for c in page["value"]] == [{"@odata.etag", "id", "number"}] * 2


def test_page_size_is_bounded_by_bc_limit(fake):
    client = make_client(fake)
    with pytest.raises(ValueError, match="20000"):
        client.iter("companies", page_size=20_001)


def test_environments_lists_what_the_user_can_reach(fake):
    environments = make_client(fake).environments()

    assert [e["name"] for e in environments] == ["Production", "Sandbox"]
    assert fake.bc.requests[-1][1] == "/environments/v1.2"


def test_one_connection_serves_many_requests(fake):
    client = make_client(fake)
    before = fake.connections_opened
    for _ in range(10):
        client.companies()
    assert fake.connections_opened - before == 1


# --- URLs the token must not go to -------------------------------------------------------


def test_absolute_urls_outside_the_base_url_are_refused(fake):
    client = make_client(fake)

    with pytest.raises(BusinessCentralRequestRefused):
        client.get("https://evil.example/v2.0/companies")
    with pytest.raises(BusinessCentralRequestRefused):
        client.get(f"{fake.url}/v2.0/other-tenant/Production/api/v2.0/companies")
    assert fake.bc.requests == []
    assert client.get(f"{fake.bc.base_url()}/companies")["value"]


def test_base_url_on_a_host_not_allowed_is_refused():
    with pytest.raises(BusinessCentralRequestRefused, match="evil.example"):
        BusinessCentralClient(
            "https://evil.example/v2.0/t/Production/api/v2.0",
            lambda force_refresh=False: "token",
            allowed_hosts=["api.businesscentral.dynamics.com"],
        )


BASE = "https://api.businesscentral.dynamics.com/v2.0/tenant/Production/api/v2.0"


@responses.activate
def test_next_link_to_another_host_is_refused():
    responses.get(
        f"{BASE}/companies",
        json={"value": [{"id": 1}], "@odata.nextLink": "https://evil.example/steal?$skiptoken=1"},
    )
    evil = responses.get("https://evil.example/steal", json={"value": []})

    with pytest.raises(BusinessCentralRequestRefused):
        list(offline_client().iter("companies"))
    assert evil.call_count == 0


@responses.activate
def test_redirect_to_another_host_is_not_followed_with_the_token():
    responses.get(f"{BASE}/companies", status=302, headers={"Location": "https://evil.example/x"})
    evil = responses.get("https://evil.example/x", json={})

    with pytest.raises(BusinessCentralRequestRefused):
        offline_client().get("companies")
    assert evil.call_count == 0


@responses.activate
def test_redirect_within_the_base_url_is_followed():
    responses.get(f"{BASE}/companies", status=307, headers={"Location": f"{BASE}/companies2"})
    moved = responses.get(f"{BASE}/companies2", json={"value": []})

    assert offline_client().get("companies") == {"value": []}
    assert moved.calls[0].request.headers["Authorization"] == "Bearer secret-token-value"


@responses.activate
def test_every_request_has_the_timeout():
    call = responses.get(f"{BASE}/companies", json={"value": []})

    offline_client(timeout=(3, 9)).get("companies")

    kwargs = call.calls[0].request.req_kwargs
    assert kwargs["timeout"] == (3, 9)


# --- ETags -----------------------------------------------------------------------------


def test_patch_needs_the_etag_and_detects_a_concurrent_change(fake):
    client = make_client(fake).company(fake.bc.company.id)
    customer = client.get("customers", {"$top": 1})["value"][0]
    path = f"customers({customer['id']})"

    with pytest.raises(BusinessCentralRequestRefused, match="ETag"):
        client.patch(path, {"displayName": "New"}, etag=None)
    with pytest.raises(BusinessCentralRequestRefused):
        client.request("PATCH", path, json={"displayName": "New"})
    assert fake.bc.count("PATCH") == 0

    updated = client.patch(path, {"displayName": "New"}, etag=customer["@odata.etag"])
    assert updated["displayName"] == "New"
    assert updated["@odata.etag"] != customer["@odata.etag"]

    with pytest.raises(BusinessCentralError) as stale:
        client.patch(path, {"displayName": "Newer"}, etag=customer["@odata.etag"])
    assert (stale.value.status, stale.value.code) == (409, "Request_EntityChanged")
    assert stale.value.retry_later is False
    assert stale.value.may_have_applied is False
    assert client.get(path)["displayName"] == "New"


def test_delete_needs_an_etag_or_an_explicit_star(fake):
    client = make_client(fake).company(fake.bc.company.id)
    first, second = client.get("customers", {"$top": 2})["value"]

    with pytest.raises(BusinessCentralRequestRefused):
        client.delete(f"customers({first['id']})", etag="")
    assert client.delete(f"customers({first['id']})", etag=first["@odata.etag"]) is None
    assert client.delete(f"customers({second['id']})", etag="*") is None
    with pytest.raises(BusinessCentralError) as gone:
        client.get(f"customers({first['id']})")
    assert gone.value.status == 404


# --- a change retried after its answer was lost -----------------------------------------


def test_a_patch_whose_answer_was_lost_says_the_first_attempt_may_have_applied(fake):
    client = make_client(fake).company(fake.bc.company.id)
    customer = client.get("customers", {"$top": 1})["value"][0]
    path = f"customers({customer['id']})"
    fake.bc.fail_next(("drop_after",))  # BC applies the PATCH; the answer never arrives.

    with pytest.raises(BusinessCentralError) as caught:
        client.patch(path, {"displayName": "Applied once"}, etag=customer["@odata.etag"])

    error = caught.value
    assert (error.status, error.code, error.may_have_applied) == (
        409,
        "Request_EntityChanged",
        True,
    )
    assert "may have been applied" in str(error)
    assert fake.bc.count("PATCH") == 2
    assert client.get(path)["displayName"] == "Applied once"


def test_a_delete_whose_answer_was_lost_says_the_first_attempt_may_have_applied(fake):
    client = make_client(fake).company(fake.bc.company.id)
    customer = client.get("customers", {"$top": 1})["value"][0]
    fake.bc.fail_next(("drop_after",))

    with pytest.raises(BusinessCentralError) as caught:
        client.delete(f"customers({customer['id']})", etag=customer["@odata.etag"])

    assert (caught.value.status, caught.value.may_have_applied) == (404, True)
    assert "may have been applied" in str(caught.value)


@responses.activate
@pytest.mark.parametrize("first", [requests.ReadTimeout("slow"), 504])
def test_a_412_after_an_uncertain_first_attempt_may_have_applied(first):
    url = f"{BASE}/companies(1)/items(2)"
    if isinstance(first, int):
        responses.patch(url, status=first)
    else:
        responses.patch(url, body=first)
    responses.patch(url, status=412, json={"error": {"code": "PreconditionFailed"}})

    with pytest.raises(BusinessCentralError) as caught:
        offline_client().patch("companies(1)/items(2)", {"x": 1}, etag='W/"1"')

    assert (caught.value.status, caught.value.may_have_applied) == (412, True)
    assert len(responses.calls) == 2


@responses.activate
def test_a_404_on_a_first_attempt_is_a_plain_not_found():
    responses.delete(f"{BASE}/companies(1)/items(2)", status=404)

    with pytest.raises(BusinessCentralError) as caught:
        offline_client().delete("companies(1)/items(2)", etag='W/"1"')

    assert caught.value.may_have_applied is False
    assert "may have been applied" not in str(caught.value)


# --- $batch ----------------------------------------------------------------------------


def updates(client, count, *, failing=None):
    customers = list(client.iter("customers", {"$top": count}))
    operations = [
        {
            "method": "PATCH",
            "path": f"customers({c['id']})",
            "json": {"displayName": f"Batched {i}"},
            "etag": c["@odata.etag"],
        }
        for i, c in enumerate(customers)
    ]
    if failing is not None:
        operations[failing]["json"] = {"noSuchField": 1}
    return operations


def test_empty_batch_sends_nothing(fake):
    assert make_client(fake).batch([]) == []
    assert fake.bc.count("POST", "$batch") == 0


@pytest.mark.parametrize("count, calls", [(1, 1), (100, 1), (250, 3)])
def test_batches_are_split_in_hundreds_and_answered_in_order(fake, count, calls):
    fake.bc.company.generated = 300
    client = make_client(fake).company(fake.bc.company.id)

    results = client.batch(updates(client, count))

    assert fake.bc.count("POST", "$batch") == calls
    assert [r.status for r in results] == [200] * count
    assert [r.body["displayName"] for r in results] == [f"Batched {i}" for i in range(count)]


def test_non_atomic_batch_reports_the_failing_operation_and_runs_the_rest(fake):
    fake.bc.company.generated = 300
    client = make_client(fake).company(fake.bc.company.id)

    results = client.batch(updates(client, 250, failing=120))

    failed = [i for i, r in enumerate(results) if not r.ok]
    assert failed == [120]
    assert results[120].error.status == 400
    assert "noSuchField" in results[120].error.message
    assert client.get(f"customers({fake.bc.company.customer_id(121)})")["displayName"] == (
        "Batched 121"
    )


def test_atomic_batch_rolls_back_the_failed_chunk_and_stops(fake):
    fake.bc.company.generated = 300
    client = make_client(fake).company(fake.bc.company.id)

    results = client.batch(updates(client, 250, failing=120), atomic=True)

    assert all(r.ok and not r.rolled_back for r in results[:100])
    assert all(r.rolled_back for r in results[100:200])
    assert results[120].error.code == "BadRequest"
    assert all(r.status is None for r in results[200:])
    assert fake.bc.count("POST", "$batch") == 2
    names = {c["id"]: c["displayName"] for c in client.iter("customers", {"$top": 250})}
    assert names[fake.bc.company.customer_id(99)] == "Batched 99"
    assert names[fake.bc.company.customer_id(100)] == "Customer 101"  # rolled back
    assert names[fake.bc.company.customer_id(210)] == "Customer 211"  # never sent


def test_atomic_batch_of_one_hundred_sends_isolation_snapshot(fake):
    fake.bc.company.generated = 100
    client = make_client(fake).company(fake.bc.company.id)

    results = client.batch(updates(client, 100), atomic=True)

    assert all(r.ok for r in results)


@responses.activate
def test_atomic_batch_sends_the_isolation_header():
    call = responses.post(f"{BASE}/$batch", json={"responses": [{"id": "0", "status": 201}]})

    offline_client().batch([{"method": "POST", "path": "companies(1)/items", "json": {}}], True)

    assert call.calls[0].request.headers["Isolation"] == "snapshot"
    body = call.calls[0].request.body
    assert b'"url": "companies(1)/items"' in body


def test_batch_refuses_patch_without_etag_before_sending(fake):
    client = make_client(fake)
    with pytest.raises(BusinessCentralRequestRefused, match="Operation 0"):
        client.batch([{"method": "DELETE", "path": "companies(x)/customers(y)"}])
    assert fake.bc.requests == []


# --- concurrency -----------------------------------------------------------------------


def test_many_threads_never_exceed_five_requests_in_flight(fake):
    fake.bc.latency = 0.02
    client = make_client(fake)
    errors = []

    def work():
        try:
            for _ in range(3):
                client.companies()
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert fake.bc.max_in_flight["jane@contoso.com"] == 5
    assert fake.bc.count("GET") == 60


def test_company_clients_share_the_authentication_limit(fake):
    client = make_client(fake)
    scoped = client.company(fake.bc.company.id)
    assert scoped._limiter is client._limiter


def test_the_fake_answers_429_beyond_five_concurrent_requests(fake):
    """The limit is real: without the client's semaphore BC throttles."""
    fake.bc.latency = 0.3  # Long enough that twelve requests overlap even on a busy machine.
    token = issue_token(fake)
    url = f"{fake.bc.base_url()}/companies"
    statuses = []

    def call():
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 429 in statuses


# --- 401 and retries -------------------------------------------------------------------


def test_expired_token_is_refreshed_once_and_the_request_retried(fake):
    expired = issue_token(fake, lifetime=-1)
    tokens = Tokens(fake, first=expired)

    assert make_client(fake, tokens).companies()

    assert tokens.calls == [False, True]
    assert fake.bc.count("GET") == 2


def test_a_second_401_is_final(fake):
    tokens = Tokens(fake, first="not-a-token", refresh_works=False)

    with pytest.raises(BusinessCentralError) as caught:
        make_client(fake, tokens).companies()

    assert tokens.calls == [False, True]
    assert fake.bc.count("GET") == 2
    assert (caught.value.status, caught.value.code) == (401, "Authentication_InvalidCredentials")
    assert caught.value.retry_later is False


def test_unlicensed_user_gets_bc_plain_words(fake):
    fake.bc.unlicensed_users.add("jane@contoso.com")
    with pytest.raises(BusinessCentralError, match="no Business Central license"):
        make_client(fake).companies()


def test_429_waits_for_retry_after_seconds(fake):
    fake.bc.fail_next(("status", 429, {"Retry-After": "7"}))
    clock = FakeClock()

    assert make_client(fake, clock=clock).companies()

    assert clock.sleeps == [7.0]


def test_503_waits_for_retry_after_as_an_http_date(fake):
    clock = FakeClock()
    when = email.utils.formatdate(clock.now + 30, usegmt=True)
    fake.bc.fail_next(("status", 503, {"Retry-After": when}))

    assert make_client(fake, clock=clock).companies()

    assert clock.sleeps == [pytest.approx(30, abs=1)]


def test_without_retry_after_the_backoff_grows_with_jitter(fake):
    fake.bc.fail_next(("status", 503), ("status", 502), ("status", 504))
    clock = FakeClock()

    assert make_client(fake, clock=clock, retry=RetryPolicy(backoff_base=1.0)).companies()

    assert clock.sleeps == [0.75, 1.5, 3.0]  # base * 2**n * (0.5 + random/2), random = 0.5


def test_retries_stop_after_max_retries(fake):
    fake.bc.fail_next(*[("status", 503)] * 4)
    clock = FakeClock()

    with pytest.raises(BusinessCentralRetryLaterError) as caught:
        make_client(fake, clock=clock, retry=RetryPolicy(max_retries=2)).companies()

    assert caught.value.status == 503
    assert len(clock.sleeps) == 2
    assert fake.bc.count("GET") == 3


def test_retry_after_beyond_the_time_budget_raises_at_once(fake):
    fake.bc.fail_next(("status", 429, {"Retry-After": "600"}))
    clock = FakeClock()

    with pytest.raises(BusinessCentralRetryLaterError) as caught:
        make_client(fake, clock=clock, retry=RetryPolicy(retry_budget=60)).companies()

    assert clock.sleeps == []
    assert caught.value.retry_after == 600
    assert caught.value.code == "Application_TooManyRequests"


def test_the_backoff_stops_growing_at_its_cap(fake):
    fake.bc.fail_next(("status", 503), ("status", 503), ("status", 503))
    clock = FakeClock()

    client = make_client(fake, clock=clock, retry=RetryPolicy(backoff_base=1.0, backoff_cap=2.0))
    assert client.companies()

    assert clock.sleeps == [0.75, 1.5, 1.5]  # min(cap, base * 2**n) * 0.75


def test_the_retry_policy_has_the_documented_defaults_and_cannot_change():
    policy = RetryPolicy()

    assert (policy.max_retries, policy.retry_budget) == (5, 120.0)  # README: 5 within 2 min.
    assert (policy.backoff_base, policy.backoff_cap) == (0.5, 30.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_retries = 0


@pytest.mark.parametrize(
    "derive",
    [
        lambda client, fake: client.company(fake.bc.company.id),
        lambda client, fake: client.environment_client("api/v2.0"),
    ],
    ids=["company", "environment_client"],
)
def test_derived_clients_keep_the_retry_policy_clock_and_connection(fake, derive):
    clock = FakeClock()
    client = make_client(fake, clock=clock, retry=RetryPolicy(max_retries=1, backoff_base=4.0))
    client.companies()
    before = fake.connections_opened
    fake.bc.fail_next(("status", 503), ("status", 503))

    with pytest.raises(BusinessCentralRetryLaterError):
        derive(client, fake).get("")

    assert clock.sleeps == [3.0]  # One retry, after 4.0 * 0.75, on the parent's clock.
    assert fake.connections_opened == before  # The parent's pooled session.


def test_dropped_connection_is_retried_for_a_get(fake):
    fake.bc.fail_next(("drop",))
    clock = FakeClock()

    assert make_client(fake, clock=clock).companies()

    assert len(clock.sleeps) == 1


def test_dropped_connection_is_not_retried_for_a_post(fake):
    client = make_client(fake).company(fake.bc.company.id)
    fake.bc.fail_next(("drop",))

    with pytest.raises(BusinessCentralRetryLaterError, match="not repeated"):
        client.post("customers", {"displayName": "Once only"})

    assert fake.bc.count("POST") == 1


def test_read_timeout_is_retried_then_reported(fake):
    fake.bc.fail_next(("sleep", 0.5), ("sleep", 0.5))
    clock = FakeClock()

    with pytest.raises(BusinessCentralRetryLaterError, match="ReadTimeout"):
        make_client(
            fake, clock=clock, timeout=(5, 0.1), retry=RetryPolicy(max_retries=1)
        ).companies()


def test_429_on_post_is_retried_because_bc_did_not_run_it(fake):
    client = make_client(fake).company(fake.bc.company.id)
    fake.bc.fail_next(("status", 429, {"Retry-After": "1"}))

    created = client.post("customers", {"displayName": "After throttling"})

    assert created["displayName"] == "After throttling"


def test_504_on_post_is_not_repeated(fake):
    client = make_client(fake).company(fake.bc.company.id)
    fake.bc.fail_next(("status", 504))

    with pytest.raises(BusinessCentralRetryLaterError):
        client.post("customers", {"displayName": "Maybe created"})
    assert fake.bc.count("POST") == 1


# --- errors and logs -------------------------------------------------------------------


def test_error_carries_status_code_message_and_request_id(fake):
    client = make_client(fake).company(fake.bc.company.id)

    with pytest.raises(BusinessCentralError) as caught:
        client.get("customers(00000000-0000-0000-0000-000000000000)")

    error = caught.value
    assert error.status == 404
    assert error.code == "BadRequest_NotFound"
    assert error.message.startswith("The Customer does not exist")
    assert len(error.request_id) == 36
    assert error.request_id in str(error)


@responses.activate
def test_error_without_a_bc_body_still_reads_plainly():
    responses.get(f"{BASE}/companies", status=500, body="<html>oops</html>")

    with pytest.raises(BusinessCentralRetryLaterError) as caught:
        offline_client().get("companies")
    assert caught.value.message == "Business Central answered 500 Internal Server Error"


def test_client_errors_have_the_app_error_shape():
    refused = BusinessCentralError("BC said no.", code="Permission_Denied", status=403)
    busy = BusinessCentralRetryLaterError("BC is busy.", code="TooMany", status=429)
    unsafe = BusinessCentralRequestRefused("Not sent.", code="Url_Unsafe")

    assert all(isinstance(err, BcconnectError) for err in (refused, busy, unsafe))
    assert isinstance(unsafe, ValueError)
    assert (refused.transient, busy.transient, unsafe.transient) == (False, True, False)
    assert (busy.message, busy.code) == ("BC is busy.", "TooMany")
    assert str(refused) == "BC said no. (Permission_Denied) [HTTP 403]"


def test_retry_later_is_kept_as_a_read_only_alias_of_transient():
    """`retry_later` is documented in the README; `transient` is the canonical name."""
    busy = BusinessCentralRetryLaterError("BC is busy.")
    refused = BusinessCentralError("BC said no.")

    assert (busy.retry_later, refused.retry_later) == (True, False)
    with pytest.raises(AttributeError):
        busy.retry_later = False


def test_no_token_in_logs_or_errors(fake, caplog):
    tokens = Tokens(fake, first=issue_token(fake, lifetime=-1))
    client = make_client(fake, tokens)
    caplog.set_level(logging.DEBUG)
    fake.bc.fail_next(("status", 503), ("drop",))

    client.companies()
    with pytest.raises(BusinessCentralError) as caught:
        client.get("companies(00000000-0000-0000-0000-000000000000)")

    assert "GET" in caplog.text and "/companies" in caplog.text and "200" in caplog.text
    texts = [caplog.text, str(caught.value), repr(vars(caught.value))]
    for token in tokens.issued:
        assert all(token not in text for text in texts)
    assert "Authorization" not in caplog.text


# --- the public surface ----------------------------------------------------------------


def public_methods():
    names = [name for name in vars(BusinessCentralClient) if not name.startswith("_")]
    return ["__init__", *names]


@pytest.mark.parametrize("name", public_methods())
def test_every_public_method_of_the_client_is_typed(name):
    method = getattr(BusinessCentralClient, name)
    hints = typing.get_type_hints(method)
    parameters = set(inspect.signature(method).parameters) - {"self"}

    assert parameters <= set(hints), parameters - set(hints)
    assert "return" in hints
