"""What staff and the command see when BC's answer is cut, odd, one entity or half an emoji.

Over real HTTP against the fake BC: the test page, the CSV and JSON Lines downloads and
`manage.py bc` each say what happened, and an export that stopped early never looks whole.
"""

import csv
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from pytest_django.asserts import assertContains, assertNotContains

from authentications.endpoints.models import Endpoint
from tests.helpers import endpoint_url

pytestmark = pytest.mark.django_db

HALF_EMOJI = {"value": [{"number": "C1", "displayName": "Smile \ud83d"}, {"number": "C2"}]}


def downloaded(response):
    assert isinstance(response, StreamingHttpResponse), response
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.fixture
def paged(make_endpoint, tokens_planted, fake_microsoft):
    """An endpoint whose 45 customers come in three pages of 20, 20 and 5."""
    fake_microsoft.bc.company.generated = 45
    return make_endpoint(
        tokens_planted,
        name="Paged",
        params=[["$select", "number"]],
        headers=[["Prefer", "odata.maxpagesize=20"]],
    )


@pytest.fixture
def one_customer(make_endpoint, tokens_planted, fake_microsoft):
    customer_id = fake_microsoft.bc.company.customer_id(2)
    return make_endpoint(
        tokens_planted,
        name="One customer",
        path=f"api/v2.0/companies({{company}})/customers({customer_id})",
    )


# --- a connection dropped mid-body ----------------------------------------------------------


@pytest.mark.parametrize("fault", ["cut_body", "bad_gzip", "cut_json"])
def test_a_page_cut_mid_body_is_read_again_and_the_download_is_whole(
    admin_client, paged, fake_microsoft, fault
):
    fake_microsoft.bc.fail_next(("sleep", 0), (fault,))  # Page two is cut once.

    lines = downloaded(admin_client.get(endpoint_url(paged, "export/jsonl"))).splitlines()

    assert [json.loads(line)["number"] for line in lines] == [f"C{n:06d}" for n in range(1, 46)]
    paged.refresh_from_db()
    assert paged.last_export_complete and paged.last_export_rows == 45


def test_bc_all_reads_a_cut_page_again(tokens_planted, fake_microsoft):
    fake_microsoft.bc.fail_next(("cut_body",))
    out = io.StringIO()

    call_command("bc", "BC production", "GET", "companies", "--all", stdout=out)

    assert len(out.getvalue().splitlines()) == 3


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_an_export_that_stops_early_says_so_in_its_last_line_and_in_the_admin(
    admin_client, paged, fake_microsoft, format
):
    fake_microsoft.bc.fail_next(("sleep", 0), ("html",))  # Page two is a proxy's page.

    text = downloaded(admin_client.get(endpoint_url(paged, f"export/{format}")))

    last = text.splitlines()[-1]
    if format == "jsonl":
        assert list(json.loads(last)) == ["_error"]
        last = json.loads(last)["_error"]
    else:
        (last,) = next(csv.reader([last]))  # A marker row of one cell.
    assert last.startswith("Export incomplete: Business Central answered HTML, not JSON")
    assert "first bytes '<!DOCTYPE html>" in last
    paged.refresh_from_db()
    assert paged.last_export_complete is False and paged.last_export_rows == 20
    change_page = admin_client.get(endpoint_url(paged))
    assertContains(change_page, "20 rows, then stopped")
    assertContains(change_page, "Export incomplete: Business Central answered HTML")


def test_bc_endpoint_all_exits_non_zero_with_one_line_when_cut_short(paged, fake_microsoft):
    fake_microsoft.bc.fail_next(("sleep", 0), ("html",))
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"^Export incomplete: .*answered HTML, not JSON"):
        call_command("bc", "--endpoint", "Paged", "--all", stdout=out)

    assert len(out.getvalue().splitlines()) == 20


# --- answers that are not OData ---------------------------------------------------------------


def test_the_test_page_says_bc_answered_html(admin_client, paged, fake_microsoft):
    fake_microsoft.bc.fail_next(("html",))

    page = admin_client.get(endpoint_url(paged, "test"))

    assertContains(page, "Business Central answered HTML, not JSON: first bytes")
    assertContains(page, "&lt;!DOCTYPE html&gt;")  # Quoted, escaped.
    assertNotContains(page, "OData collection")


def test_the_test_page_says_the_json_did_not_parse(admin_client, paged, fake_microsoft):
    fake_microsoft.bc.fail_next(*[("cut_json",)] * 6)

    page = admin_client.get(endpoint_url(paged, "test"))

    assertContains(page, "answer is not valid JSON")
    assertNotContains(page, "OData collection")


# --- one entity --------------------------------------------------------------------------------


def test_one_entity_is_one_record_on_the_test_page(admin_client, one_customer):
    page = admin_client.get(endpoint_url(one_customer, "test"))

    assertContains(page, '<td id="bc-row-count">1 record</td>', html=False)
    assertContains(page, '<table class="bc-record" id="bc-record">')
    assertContains(page, '<tr><th scope="row">number</th><td>C000003</td></tr>')
    assertNotContains(page, 'id="bc-rows"')
    raw = re.search(r'<pre class="bc-raw" id="bc-raw">(.*?)</pre>', page.content.decode(), re.S)
    assert "&quot;value&quot;" not in raw.group(1)  # BC sent no value array.
    assert "&quot;number&quot;: &quot;C000003&quot;" in raw.group(1)
    one_customer.refresh_from_db()
    assert one_customer.last_test_rows == 1


@pytest.mark.parametrize("format", ["jsonl", "csv", "json"])
def test_one_entity_is_one_row_in_every_format_of_bc_all(one_customer, format):
    out = io.StringIO()

    call_command("bc", "--endpoint", "One customer", "--all", "--format", format, stdout=out)

    text = out.getvalue()
    if format == "jsonl":
        assert [json.loads(line)["number"] for line in text.splitlines()] == ["C000003"]
    elif format == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [row["number"] for row in rows] == ["C000003"]
    else:
        assert [row["number"] for row in json.loads(text)] == ["C000003"]


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_one_entity_is_one_row_in_the_downloads(admin_client, one_customer, format):
    text = downloaded(admin_client.get(endpoint_url(one_customer, f"export/{format}")))

    assert "C000003" in text and len(text.splitlines()) == (1 if format == "jsonl" else 2)


# --- half an emoji ------------------------------------------------------------------------------


def test_a_lone_surrogate_does_not_break_the_test_page(admin_client, paged, fake_microsoft):
    fake_microsoft.bc.fail_next(("answer", HALF_EMOJI))

    page = admin_client.get(endpoint_url(paged, "test"))

    assert page.status_code == 200
    assertContains(page, "Smile \ufffd")
    assertContains(page, "1 character was half of a UTF-16 surrogate pair")


def test_a_lone_surrogate_is_replaced_and_noted_in_the_download(
    admin_client, paged, fake_microsoft
):
    fake_microsoft.bc.fail_next(("answer", HALF_EMOJI))

    lines = downloaded(admin_client.get(endpoint_url(paged, "export/jsonl"))).splitlines()

    assert json.loads(lines[0])["displayName"] == "Smile \ufffd"
    assert list(json.loads(lines[-1])) == ["_notice"]
    assert "became U+FFFD" in json.loads(lines[-1])["_notice"]
    paged.refresh_from_db()
    assert paged.last_export_complete and "half of a UTF-16" in paged.last_export_note


def test_a_lone_surrogate_is_replaced_and_noted_on_stderr_by_bc(paged, fake_microsoft):
    fake_microsoft.bc.fail_next(("answer", HALF_EMOJI))
    out, err = io.StringIO(), io.StringIO()

    call_command("bc", "--endpoint", "Paged", "--all", stdout=out, stderr=err)

    assert out.getvalue().splitlines()[0] == '{"number": "C1", "displayName": "Smile \ufffd"}'
    assert "1 character was half of a UTF-16 surrogate pair" in err.getvalue()


# --- a refused nextLink -------------------------------------------------------------------------


def test_the_rows_before_a_refused_next_link_are_exported_then_the_error(
    admin_client, paged, fake_microsoft, tokens_planted
):
    fake_microsoft.bc.next_link = "https://evil.example/steal?$skiptoken=20&sig=s3cr3t"

    lines = downloaded(admin_client.get(endpoint_url(paged, "export/jsonl"))).splitlines()

    assert len(lines) == 21
    error = json.loads(lines[-1])["_error"]
    assert error.startswith("Export incomplete: Refusing to send the bearer token to ")
    assert "https://evil.example/steal" in error and "s3cr3t" not in error
    assert tokens_planted.access_token not in error
    paged.refresh_from_db()
    assert paged.last_export_complete is False and paged.last_export_rows == 20


# --- downloads: defused by default, one filename pattern -------------------------------------


def test_the_default_csv_is_defused_and_the_raw_one_is_labelled_for_programs(
    admin_client, make_endpoint, tokens_planted, fake_microsoft
):
    customer = fake_microsoft.bc.company.generate(0)
    fake_microsoft.bc.company.changed[customer["id"]] = {**customer, "displayName": "=1+1"}
    endpoint = make_endpoint(
        tokens_planted, name="Formulas", params=[["$top", "1"], ["$select", "displayName"]]
    )

    default = admin_client.get(endpoint_url(endpoint, "export/csv"))
    raw = admin_client.get(endpoint_url(endpoint, "export/csv") + "?raw=1")

    assert list(csv.reader(io.StringIO(downloaded(default))))[1][1] == "'=1+1"
    assert list(csv.reader(io.StringIO(downloaded(raw))))[1][1] == "=1+1"
    stamp = r"\d{8}T\d{6}Z"
    assert re.fullmatch(
        rf'attachment; filename="formulas-{stamp}\.csv"', default["Content-Disposition"]
    )
    assert re.fullmatch(
        rf'attachment; filename="formulas-{stamp}-raw\.csv"', raw["Content-Disposition"]
    )
    change_page = admin_client.get(endpoint_url(endpoint))
    assertContains(change_page, "Download CSV (for Excel)</a>")
    assertContains(change_page, "Download raw CSV (for programs)</a>")


def test_jsonl_is_named_with_the_same_pattern(admin_client, paged):
    response = admin_client.get(endpoint_url(paged, "export/jsonl"))
    downloaded(response)

    assert re.fullmatch(
        r'attachment; filename="paged-\d{8}T\d{6}Z\.jsonl"', response["Content-Disposition"]
    )


# --- small things -----------------------------------------------------------------------------


def test_testing_without_a_company_says_one_is_needed_and_offers_to_choose(
    admin_client, make_endpoint, tokens_planted, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, company_id="", company_name="")

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "Not sent: a company is needed")
    assertContains(page, f'href="{endpoint_url(endpoint, "company")}">Choose company</a>')
    assertNotContains(page, "no answer")
    assertNotContains(page, "Failed")
    assert fake_microsoft.bc.requests == []
    assert Endpoint.objects.get(pk=endpoint.pk).last_tested_at is None


def test_one_row_is_one_row_not_one_rows(admin_client, make_endpoint, tokens_planted):
    endpoint = make_endpoint(tokens_planted, name="Top one", params=[["$top", "1"]])

    page = admin_client.get(endpoint_url(endpoint, "test"))
    listing = admin_client.get("/admin/authentications/endpoint/")

    assertContains(page, "1 row; no more pages")
    assertContains(listing, " · 1 row · ")
    assertNotContains(listing, "1 rows")


def test_the_subscription_api_help_text_shows_the_placeholders(admin_client):
    page = admin_client.get("/admin/authentications/subscription/add/")

    assertContains(page, "api/&lt;publisher&gt;/&lt;group&gt;/&lt;version&gt;")
    assertNotContains(page, "<publisher>")
