"""Staff download every row of a GET endpoint as CSV or JSON Lines, streamed page by page."""

import csv
import io
import json
import re
import threading

import pytest
from django.http import StreamingHttpResponse

from authentications.endpoints import exports
from bcconnect.client import Page
from tests.helpers import endpoint_url

pytestmark = pytest.mark.django_db


def downloaded(response):
    assert isinstance(response, StreamingHttpResponse), response
    return b"".join(response.streaming_content).decode("utf-8")


def page(rows, more=True):
    return Page(rows=rows, status=200, request_id="r", elapsed=0.0, next_link="x" if more else None)


def test_csv_of_a_multi_page_endpoint(admin_client, tokens_planted, make_endpoint, fake_microsoft):
    fake_microsoft.bc.company.generated = 2_345
    endpoint = make_endpoint(
        tokens_planted, name="All customers", params=[["$select", "number,displayName,city"]]
    )

    response = admin_client.get(endpoint_url(endpoint, "export/csv") + "?raw=1")
    text = downloaded(response)

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["@odata.etag", "number", "displayName", "city", "_extra"]
    assert len(rows) == 1 + 2_345
    assert rows[1][1:] == ["C000001", "Customer 1", "Atlanta", ""]
    assert rows[-1][1] == "C002345"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="all-customers-\d{8}T\d{6}Z-raw\.csv"',
        response["Content-Disposition"],
    )
    assert not text.startswith("\ufeff")


def test_export_pages_through_bc_with_the_stored_page_size(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 45_000  # Three of BC's pages of 20,000.
    endpoint = make_endpoint(tokens_planted, params=[["$select", "number"]])

    text = downloaded(admin_client.get(endpoint_url(endpoint, "export/jsonl")))

    assert len(text.splitlines()) == 45_000
    assert fake_microsoft.bc.count("GET", "/customers") == 3


def test_jsonl_of_a_multi_page_endpoint(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 25_001
    endpoint = make_endpoint(tokens_planted, params=[["$filter", "city eq 'Seattle'"]])

    response = admin_client.get(endpoint_url(endpoint, "export/jsonl"))
    lines = [json.loads(line) for line in downloaded(response).splitlines()]

    assert len(lines) == 5_000
    assert {line["city"] for line in lines} == {"Seattle"}
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"


def test_keys_first_seen_after_the_first_page_go_into_extra():
    pages = [
        page([{"a": 1, "b": "x"}, {"a": 2}]),
        page([{"a": 3, "b": "y", "c": {"deep": [1, 2]}, "d": None}], more=False),
    ]

    text = "".join(exports.csv_chunks(iter(pages)))

    assert list(csv.reader(io.StringIO(text))) == [
        ["a", "b", "_extra"],
        ["1", "x", ""],
        ["2", "", ""],
        ["3", "y", '{"c":{"deep":[1,2]},"d":null}'],
    ]


def test_csv_for_excel_has_a_bom_and_defuses_formulas(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    customer = fake_microsoft.bc.company.generate(0)
    fake_microsoft.bc.company.changed[customer["id"]] = {
        **customer,
        "displayName": '=HYPERLINK("http://evil.example","Ø")',
    }
    endpoint = make_endpoint(tokens_planted, params=[["$top", "1"], ["$select", "displayName"]])

    text = downloaded(admin_client.get(endpoint_url(endpoint, "export/csv")))  # The default.

    assert text.startswith("\ufeff'@odata.etag,displayName,_extra\r\n")  # @ starts a formula
    assert list(csv.reader(io.StringIO(text)))[1][1] == '\'=HYPERLINK("http://evil.example","Ø")'


def test_a_refused_first_page_is_a_message_not_a_download(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.denied["jane@contoso.com"] = {"customers"}
    endpoint = make_endpoint(tokens_planted)

    response = admin_client.get(endpoint_url(endpoint, "export/csv"), follow=True)

    assert response.redirect_chain[-1][0] == endpoint_url(endpoint)
    assert "cannot be exported" in response.content.decode()
    assert "assign a permission set" in response.content.decode()


def test_a_failure_midway_ends_the_file_with_a_line_that_says_so(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 25_000
    endpoint = make_endpoint(tokens_planted, params=[["$select", "number"]])
    fake_microsoft.bc.fail_next(("sleep", 0), ("status", 403))  # Page one served, then 403.

    lines = downloaded(admin_client.get(endpoint_url(endpoint, "export/jsonl"))).splitlines()

    assert len(lines) == 20_001
    assert json.loads(lines[-1]) == {
        "_error": "Export incomplete: Fault injected by the test. (InternalServerError) The "
        "signed-in user (or, for service-to-service, the app's Microsoft Entra application "
        "card in Business Central) lacks a permission: ask a Business Central administrator "
        "to assign a permission set that allows it."
    }


def test_write_endpoints_are_not_exported(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, method="POST", body={"displayName": "x"})

    response = admin_client.get(endpoint_url(endpoint, "export/csv"), follow=True)

    assert "Only GET endpoints can be exported" in response.content.decode()
    assert fake_microsoft.bc.requests == []


def test_a_download_closed_early_leaves_no_thread(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 60_000
    endpoint = make_endpoint(tokens_planted, params=[["$select", "number"]])

    response = admin_client.get(endpoint_url(endpoint, "export/csv"))
    chunks = iter(response.streaming_content)
    next(chunks)
    response.close()

    assert [t for t in threading.enumerate() if t.name.startswith("bcconnect-prefetch")] == []
    assert fake_microsoft.bc.count("GET", "/customers") <= 2


def test_an_empty_answer_has_a_header_only(admin_client, tokens_planted, make_endpoint):
    endpoint = make_endpoint(tokens_planted, params=[["$filter", "city eq 'Nowhere'"]])

    assert downloaded(admin_client.get(endpoint_url(endpoint, "export/csv") + "?raw=1")) == (
        "_extra\r\n"
    )


def test_csv_cells_are_written_the_way_bc_sends_them():
    rows = [{"text": "=1+1", "int": 7, "float": 0.5, "yes": True, "no": False, "none": None}]

    plain = "".join(exports.csv_chunks(iter([page(rows, more=False)])))
    excel = "".join(exports.csv_chunks(iter([page(rows, more=False)]), excel=True))

    assert plain.splitlines()[1] == "=1+1,7,0.5,true,false,,"
    assert excel.splitlines()[1] == "'=1+1,7,0.5,true,false,,"
