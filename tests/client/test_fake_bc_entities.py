"""The fake BC serves vendors, items and sales orders with their lines, as BC v2.0 does:
the demo's endpoints can read more than customers."""

import pytest
import requests

from bcconnect.client import BusinessCentralError
from tests.helpers import issue_token, make_client

UNKNOWN_ID = "5d115c9c-44e3-ea11-bb43-000d3a2feca1"


@pytest.fixture
def company(fake_microsoft):
    return make_client(fake_microsoft).company(fake_microsoft.bc.company.id)


@pytest.mark.parametrize(
    ("entity", "count", "fields"),
    [
        ("vendors", 5, {"number", "displayName", "city", "email", "balance", "blocked"}),
        ("items", 6, {"number", "displayName", "type", "inventory", "unitPrice", "unitCost"}),
        (
            "salesOrders",
            4,
            {"number", "orderDate", "customerNumber", "customerName", "status"}
            | {"totalAmountIncludingTax", "sellToCity", "shipToPostCode"},
        ),
        (
            "salesOrderLines",
            8,
            {"documentId", "sequence", "lineType", "lineObjectNumber", "quantity"}
            | {"unitPrice", "amountIncludingTax"},
        ),
    ],
)
def test_each_entity_lists_realistic_rows_with_bc_field_names(company, entity, count, fields):
    rows = list(company.iter(entity))

    assert len(rows) == count
    for row in rows:
        assert fields <= row.keys()
        assert row["id"] and row["@odata.etag"].startswith('W/"')
    assert len({row["id"] for row in rows}) == count


def test_pages_follow_next_links_and_select_keeps_the_etag(fake_microsoft, company):
    pages = list(company.pages("items", params={"$select": "number,unitPrice"}, page_size=4))

    assert [len(page.rows) for page in pages] == [4, 2]
    first = pages[0].rows[0]
    assert set(first) == {"@odata.etag", "number", "unitPrice"}
    assert first == {"@odata.etag": first["@odata.etag"], "number": "1896-S", "unitPrice": 1000.8}


def test_one_row_by_id_and_an_unknown_id_is_a_404_in_bcs_words(company):
    vendor = company.iter("vendors").__next__()

    assert company.get(f"vendors({vendor['id']})") == vendor
    with pytest.raises(BusinessCentralError) as refused:
        company.get(f"vendors({UNKNOWN_ID})")
    assert refused.value.status == 404
    assert refused.value.code == "BadRequest_NotFound"
    assert f"The Vendor does not exist. Identification fields and values: Id='{UNKNOWN_ID}'" in (
        refused.value.message
    )


def test_an_orders_lines_belong_to_it_and_add_up_to_its_total(company):
    order = list(company.iter("salesOrders", params={"$filter": "number eq 'S-ORD101002'"}))[0]

    lines = list(company.iter(f"salesOrders({order['id']})/salesOrderLines"))

    assert [line["sequence"] for line in lines] == [10000, 20000, 30000]
    assert {line["documentId"] for line in lines} == {order["id"]}
    total = round(sum(line["amountIncludingTax"] for line in lines), 2)
    assert total == order["totalAmountIncludingTax"]
    customer = company.get(f"customers({order['customerId']})")
    assert (order["customerNumber"], order["customerName"]) == (
        customer["number"],
        customer["displayName"],
    )
    other_line = list(company.iter("salesOrderLines"))[0]
    with pytest.raises(BusinessCentralError, match="The Sales Line does not exist"):
        company.get(f"salesOrders({order['id']})/salesOrderLines({other_line['id']})")


def test_companies_have_their_own_ids(fake_microsoft):
    client = make_client(fake_microsoft)
    first, second = fake_microsoft.bc.companies[:2]

    ids = [
        {row["id"] for row in client.company(company.id).iter("items")}
        for company in (first, second)
    ]

    assert ids[0] and not ids[0] & ids[1]


def test_writes_are_refused_and_unknown_entities_stay_404(fake_microsoft):
    token = issue_token(fake_microsoft)
    root = f"{fake_microsoft.bc.base_url()}/companies({fake_microsoft.bc.company.id})"
    headers = {"Authorization": f"Bearer {token}"}

    created = requests.post(f"{root}/items", json={"displayName": "x"}, headers=headers, timeout=10)
    unknown = requests.get(f"{root}/employeesOfTheMonth", headers=headers, timeout=10)

    assert created.status_code == 405
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "BadRequest_NotFound"
