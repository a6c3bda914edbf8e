"""Answers that break in transit or are not what was asked: retried, or named, never raw.

Over real HTTP against the fake BC: a socket closed mid-body, gzip spoiled halfway, JSON
cut short, an HTML page with status 200, one entity instead of a collection, a lone UTF-16
surrogate, and a nextLink the client refuses after a page it already has.
"""

import pytest
import requests
import responses

from bcconnect.client import (
    BusinessCentralError,
    BusinessCentralRequestRefused,
    BusinessCentralRetryLaterError,
    RetryPolicy,
)
from tests.helpers import OFFLINE_BASE, FakeClock, make_client, offline_client


@pytest.fixture
def fake(fake_microsoft):
    return fake_microsoft


def customers(fake):
    return f"companies({fake.bc.company.id})/customers"


@pytest.mark.parametrize("fault", ["cut_body", "bad_gzip", "cut_json"])
def test_a_page_cut_in_transit_is_read_again(fake, fault):
    fake.bc.fail_next((fault,))
    clock = FakeClock()

    rows = list(make_client(fake, clock=clock).iter(customers(fake)))

    assert len(rows) == 50 and rows[-1]["number"] == "C000050"
    assert len(clock.sleeps) == 1
    assert fake.bc.count("GET", "/customers") == 2


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("cut_body", "ChunkedEncodingError: the connection closed in the middle of the answer"),
        ("bad_gzip", "ContentDecodingError"),
        ("cut_json", "not valid JSON"),
    ],
)
def test_a_page_cut_every_time_is_the_clients_own_retry_later_error(fake, fault, words):
    fake.bc.fail_next(*[(fault,)] * 3)
    client = make_client(fake, retry=RetryPolicy(max_retries=2))

    with pytest.raises(BusinessCentralRetryLaterError) as caught:
        list(client.iter(customers(fake), prefetch=True))

    assert words in str(caught.value)
    assert not isinstance(caught.value, requests.RequestException)
    assert fake.bc.count("GET", "/customers") == 3


def test_a_post_cut_mid_answer_is_not_repeated(fake):
    client = make_client(fake).company(fake.bc.company.id)
    fake.bc.fail_next(("cut_body",))

    with pytest.raises(BusinessCentralRetryLaterError, match="not repeated"):
        client.post("customers", {"displayName": "Once only"})

    assert fake.bc.count("POST") == 1


def test_an_html_page_with_status_200_says_what_bc_answered(fake):
    fake.bc.fail_next(("html",))

    with pytest.raises(BusinessCentralError) as caught:
        list(make_client(fake).iter(customers(fake)))

    message = str(caught.value)
    assert message.startswith("Business Central answered HTML, not JSON: first bytes '<!DOCTYPE")
    assert "OData collection" not in message
    assert caught.value.code == "Response_NotJson" and not caught.value.transient
    assert fake.bc.count("GET", "/customers") == 1  # Asking again would not help.


@responses.activate
def test_the_bytes_quoted_are_capped_escaped_and_hide_credentials():
    body = "<html>\x1b[2J Bearer eyJhbGciOi.eyJzdWIi.sig " + "x" * 500
    responses.get(f"{OFFLINE_BASE}/companies", body=body, content_type="text/html")

    with pytest.raises(BusinessCentralError) as caught:
        offline_client().pages("companies").__next__()

    message = str(caught.value)
    assert "\x1b" not in message and "\\x1b" in message
    assert "eyJ" not in message and "[hidden]" in message
    assert "x" * 200 not in message


def test_one_entity_is_one_row(fake):
    customer_id = fake.bc.company.customer_id(2)

    (page,) = make_client(fake).pages(f"{customers(fake)}({customer_id})")

    assert page.entity and not page.more
    assert [row["number"] for row in page.rows] == ["C000003"]


def test_a_lone_surrogate_is_replaced_and_counted(fake):
    fake.bc.fail_next(("answer", {"value": [{"name": "half \ud83d", "ok": "\U0001f600"}]}))

    (page,) = make_client(fake).pages(customers(fake))

    assert page.rows == [{"name": "half \ufffd", "ok": "\U0001f600"}]
    assert page.replaced == 1
    page.rows[0]["name"].encode()  # Encodes as UTF-8 now.


def test_the_rows_of_a_page_whose_next_link_is_refused_are_kept(fake):
    fake.bc.next_link = "https://evil.example/steal?$skiptoken=2&access_token=secret"
    received = []

    with pytest.raises(BusinessCentralRequestRefused) as caught:
        for page in make_client(fake).pages(customers(fake), page_size=20, prefetch=True):
            received.extend(page.rows)

    assert len(received) == 20
    assert caught.value.code == "NextLink_Refused"
    assert "https://evil.example/steal" in str(caught.value)
    assert "secret" not in str(caught.value) and "skiptoken" not in str(caught.value)
    assert "rows before it were kept" in str(caught.value)


@responses.activate
def test_environments_answered_with_html_is_the_clients_own_error():
    responses.get(
        "https://api.businesscentral.dynamics.com/environments/v1.2",
        body="<html>Sign in</html>",
        content_type="text/html",
    )

    with pytest.raises(BusinessCentralError, match="answered HTML, not JSON"):
        offline_client().environments()


@responses.activate
def test_a_batch_answered_with_html_is_the_clients_own_error():
    responses.post(f"{OFFLINE_BASE}/$batch", body="<html>Proxy</html>", content_type="text/html")

    with pytest.raises(BusinessCentralError, match="answered HTML, not JSON"):
        offline_client().batch([{"method": "GET", "path": "companies"}])
