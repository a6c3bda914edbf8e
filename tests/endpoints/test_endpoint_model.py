"""Code calls a named endpoint: `Endpoint.objects.get(name=...).iter()` and `.call()`."""

import threading

import pytest

from authentications.endpoints.models import Endpoint, EndpointNotReady
from bcconnect.client import BusinessCentralRequestRefused

pytestmark = pytest.mark.django_db


def test_iter_pages_through_every_customer_with_prefetch(
    tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 120
    make_endpoint(tokens_planted, name="Customers", params=[["$select", "number,city"]])

    rows = list(Endpoint.objects.get(name="Customers").iter())

    assert len(rows) == 120
    assert set(rows[0]) == {"@odata.etag", "number", "city"}


def test_call_time_overrides_replace_stored_parameters(
    tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(
        tokens_planted, params=[["$filter", "city eq 'Miami'"], ["$select", "number,city"]]
    )

    rows = list(endpoint.iter(**{"$filter": "city eq 'Boston'"}))

    assert {row["city"] for row in rows} == {"Boston"}
    assert "%24filter=city%20eq%20%27Miami%27" not in fake_microsoft.bc.requests[-1][2]
    assert "Boston" in fake_microsoft.bc.requests[-1][2]


def test_get_sends_read_only_intent_unless_unticked(tokens_planted, make_endpoint, fake_microsoft):
    replica = make_endpoint(tokens_planted)
    primary = make_endpoint(tokens_planted, read_only_intent=False)

    list(replica.iter())
    list(primary.iter())

    assert fake_microsoft.bc.intents() == ["ReadOnly", ""]


def test_stored_headers_are_sent(tokens_planted, make_endpoint, fake_microsoft):
    endpoint = make_endpoint(tokens_planted, headers=[["Accept-Language", "da-DK"]])

    list(endpoint.iter())

    assert fake_microsoft.bc.headers_seen[-1][2]["accept-language"] == "da-DK"


def test_odata_web_service_path_with_the_company_name(tokens_planted, make_endpoint):
    endpoint = make_endpoint(
        tokens_planted,
        path="ODataV4/Company('{company_name}')/Customer_Card",
        params=[["$top", "3"]],
    )

    assert [card["No"] for card in endpoint.iter()] == ["C000001", "C000002", "C000003"]
    assert "Company('CRONUS%20USA%2C%20Inc.')" in endpoint.url()


def test_custom_api_path(tokens_planted, make_endpoint):
    endpoint = make_endpoint(
        tokens_planted,
        path="api/contoso/sales/v1.0/companies({company})/customers",
        params=[["$top", "2"], ["$orderby", "displayName desc"]],
    )

    assert [row["displayName"] for row in endpoint.iter()] == ["Customer 9", "Customer 8"]


def test_expand_nests_the_financial_detail(tokens_planted, make_endpoint):
    endpoint = make_endpoint(
        tokens_planted, params=[["$expand", "customerFinancialDetail"], ["$top", "1"]]
    )

    (row,) = endpoint.iter()

    assert row["customerFinancialDetail"]["number"] == row["number"]


def test_call_patches_with_the_stored_if_match(tokens_planted, make_endpoint, fake_microsoft):
    customer = fake_microsoft.bc.company.generate(0)
    endpoint = make_endpoint(
        tokens_planted,
        method=Endpoint.Method.PATCH,
        path=f"api/v2.0/companies({{company}})/customers({customer['id']})",
        headers=[["If-Match", customer["@odata.etag"]]],
        body={"displayName": "Renamed"},
    )

    result = endpoint.call()

    assert result.status == 200 and result.body["displayName"] == "Renamed"
    assert result.etag != customer["@odata.etag"]


def test_iter_refuses_a_write_endpoint(tokens_planted, make_endpoint):
    endpoint = make_endpoint(tokens_planted, method=Endpoint.Method.POST, body={})

    with pytest.raises(ValueError, match="is a POST endpoint: use call"):
        endpoint.iter()


def test_a_path_with_company_placeholder_needs_a_company(tokens_planted, make_endpoint):
    endpoint = make_endpoint(tokens_planted, company_id="", company_name="")

    with pytest.raises(EndpointNotReady, match="choose its company first"):
        endpoint.iter()


def test_a_path_that_climbs_out_is_refused_before_sending(
    tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, path="../Sandbox/api/v2.0/companies")

    with pytest.raises(BusinessCentralRequestRefused):
        list(endpoint.iter())
    assert fake_microsoft.bc.requests == []


def test_closing_iter_early_leaves_no_thread(tokens_planted, make_endpoint, fake_microsoft):
    fake_microsoft.bc.company.generated = 500
    endpoint = make_endpoint(tokens_planted)

    pages = endpoint.pages(page_size=100)
    first = next(pages)
    pages.close()

    assert len(first.rows) == 100 and first.more
    assert [t for t in threading.enumerate() if t.name.startswith("bcconnect-prefetch")] == []
    assert fake_microsoft.bc.count("GET") <= 2


def test_code_may_store_parameters_and_headers_as_dicts(
    tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(
        tokens_planted, params={"$top": "2"}, headers={"Accept-Language": "da-DK"}
    )

    assert len(list(endpoint.iter())) == 2
    assert fake_microsoft.bc.headers_seen[-1][2]["accept-language"] == "da-DK"


def test_the_demo_has_an_endpoint_ready_to_test(db, settings, fake_microsoft):
    from tests.fakes.demo import DEMO_ENDPOINT, set_up_demo

    settings.DEBUG = True

    banner = set_up_demo()
    set_up_demo()  # Again: the demo resets, it does not duplicate.

    endpoint = Endpoint.objects.get(name=DEMO_ENDPOINT)
    assert f"open “{DEMO_ENDPOINT}”" in banner
    assert endpoint.company_id == fake_microsoft.bc.company.id
    assert endpoint.url().endswith("/customers?$select=number,displayName,city,email&$top=100")
