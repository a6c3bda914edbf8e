"""Hostile review of endpoints (issue 12): each test here failed before its fix."""

import csv
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line
from pytest_django.asserts import assertContains

from authentications.connections.models import Event
from authentications.endpoints import moves as endpoint_moves
from authentications.endpoints.forms import EndpointForm
from authentications.endpoints.models import Endpoint, EndpointNotReady
from bcconnect.client import BusinessCentralError
from tests.helpers import (
    endpoint_form_data,
    endpoint_url,
    log_in_staff_with,
    move_form,
    moves_shown,
    rename_endpoint,
)

LIST_URL = "/admin/authentications/endpoint/"  # The endpoints' list, where actions post.

pytestmark = pytest.mark.django_db


# --- the bc command never changes data silently ---------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_bc_command_refuses_a_write_endpoint_without_yes(
    tokens_planted, make_endpoint, fake_microsoft, capsys, method
):
    make_endpoint(
        tokens_planted,
        name="Writer",
        method=method,
        body={"displayName": "x"} if method != "DELETE" else None,
        headers=[["If-Match", "*"]] if method != "POST" else [],
    )

    with pytest.raises(SystemExit) as exit_:
        execute_from_command_line(["manage.py", "bc", "--endpoint", "Writer"])

    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert f"Writer sends a {method}" in err and "--yes" in err and err.count("\n") == 1
    assert fake_microsoft.bc.requests == []


def test_bc_command_with_a_format_still_needs_yes_for_a_write(
    tokens_planted, make_endpoint, fake_microsoft
):
    make_endpoint(tokens_planted, name="Create", method="POST", body={"displayName": "y"})

    with pytest.raises(CommandError, match="Add --yes to send it; nothing was sent"):
        call_command("bc", "--endpoint", "Create", "--format", "csv", stdout=io.StringIO())
    assert fake_microsoft.bc.count("POST") == 0


def test_bc_command_yes_does_not_change_a_get(tokens_planted, make_endpoint, fake_microsoft):
    make_endpoint(tokens_planted, name="Reader", params=[["$top", "2"]])
    out = io.StringIO()

    call_command("bc", "--endpoint", "Reader", "--yes", "--all", stdout=out)

    assert len(out.getvalue().splitlines()) == 2
    assert Endpoint.objects.get(name="Reader").method == "GET"


# --- a write test sends exactly what its confirmation page showed ----------------------------


def confirmation_form(page):
    """The fields the confirmation page's form posts (its hidden digest and its button)."""
    nonce = re.search(rb'name="bc_nonce" value="([^"]+)"', page.content).group(1)
    return {"bc_nonce": nonce.decode(), "bc_confirm": "yes"}


def test_a_write_posted_without_its_confirmation_page_is_not_sent(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)

    page = admin_client.post(endpoint_url(endpoint, "test"), {"bc_confirm": "yes"})

    assertContains(page, "This test changes data in Business Central")
    assertContains(page, "nothing was sent")
    assert fake_microsoft.bc.count("PATCH") == 0


def test_an_edit_saved_while_the_confirmation_is_open_is_not_sent(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    shown = confirmation_form(admin_client.get(endpoint_url(endpoint, "test")))
    Endpoint.objects.filter(pk=endpoint.pk).update(body={"displayName": "Not what was shown"})

    page = admin_client.post(endpoint_url(endpoint, "test"), shown)

    assertContains(page, "The request changed since its confirmation page was shown")
    assertContains(page, "&quot;displayName&quot;: &quot;Not what was shown&quot;")
    assert fake_microsoft.bc.count("PATCH") == 0
    assert fake_microsoft.bc.company.at(4)["displayName"] != "Not what was shown"


def test_the_confirmation_page_form_sends_the_write(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    shown = confirmation_form(admin_client.get(endpoint_url(endpoint, "test")))

    result = admin_client.post(endpoint_url(endpoint, "test"), shown, follow=True)

    assertContains(result, "HTTP 200")
    assert fake_microsoft.bc.count("PATCH") == 1
    assert fake_microsoft.bc.company.at(4)["displayName"] == "Renamed by a test"


# --- the path says exactly where the request goes ------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["api/v2.0/companies({company})/customers#", "api/v2.0/companies({company})/customers?$top=1"],
)
def test_a_path_with_a_fragment_or_query_is_refused(connected_row, path):
    form = EndpointForm(endpoint_form_data(connected_row, path=path, params=[("$top", "5")]))

    assert not form.is_valid()
    assert "without ? or #" in " ".join(form.errors["path"])


@pytest.mark.parametrize(
    "company_id", ["x)/customers?$top=1#", "0000beef-e0d4-4f5a-9a1b-0000c0ffe)#", ""]
)
def test_a_company_id_that_is_not_a_guid_never_reaches_the_url(
    tokens_planted, make_endpoint, fake_microsoft, company_id
):
    endpoint = make_endpoint(tokens_planted, company_id=company_id, company_name="CRONUS")

    with pytest.raises(EndpointNotReady):
        endpoint.url()
    with pytest.raises(EndpointNotReady):
        list(endpoint.iter())
    assert fake_microsoft.bc.requests == []


# --- the export: a BC whose paging never ends -------------------------------------------------


def downloaded_text(response):
    return b"".join(response.streaming_content).decode("utf-8")


def test_a_next_link_back_at_the_first_page_ends_the_download_with_a_line_that_says_so(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, params=[["$select", "number"], ["$top", "3"]])
    fake_microsoft.bc.next_link = endpoint.url()  # Every page says: read me again.

    text = downloaded_text(admin_client.get(endpoint_url(endpoint, "export/jsonl")))

    lines = text.splitlines()
    assert len(lines) == 3 + 1 and fake_microsoft.bc.count("GET", "/customers") == 1
    assert "paging would never end" in json.loads(lines[-1])["_error"]


def test_a_next_link_back_at_a_later_page_ends_the_download_with_a_line_that_says_so(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, params=[["$select", "number"], ["$top", "3"]])
    fake_microsoft.bc.next_link = endpoint.url(overrides={"$skiptoken": "1"})  # A → B → B

    text = downloaded_text(admin_client.get(endpoint_url(endpoint, "export/jsonl")))

    lines = text.splitlines()
    assert len(lines) == 3 + 3 + 1 and fake_microsoft.bc.count("GET", "/customers") == 2
    assert "paging would never end" in json.loads(lines[-1])["_error"]


def test_a_paging_loop_through_a_second_page_stops_the_command(
    tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, name="Loop", params=[["$select", "number"]])
    fake_microsoft.bc.next_link = endpoint.url(overrides={"$skiptoken": "1"})  # A → B → B
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"^Export incomplete: .*paging would never end"):
        call_command("bc", "--endpoint", "Loop", "--all", stdout=out)
    assert fake_microsoft.bc.count("GET", "/customers") == 2


def test_iter_stops_at_a_paging_loop_without_prefetch(
    tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, params=[["$top", "1"]])
    fake_microsoft.bc.next_link = endpoint.url()

    with pytest.raises(BusinessCentralError, match="paging would never end"):
        list(endpoint.iter(prefetch=False))


# --- CSV for Excel: no formula anywhere, the header row included ---------------------------


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_for_excel_defuses_a_column_name_that_starts_like_a_formula(
    admin_client, tokens_planted, make_endpoint, fake_microsoft, start
):
    customer = fake_microsoft.bc.company.generate(0)
    hostile = f'{start}HYPERLINK("http://evil.example","x")'
    fake_microsoft.bc.company.changed[customer["id"]] = {hostile: "1", "number": f"{start}2"}
    endpoint = make_endpoint(tokens_planted, params=[["$top", "1"]])

    response = admin_client.get(endpoint_url(endpoint, "export/csv") + "?excel=1")

    header, row = list(csv.reader(io.StringIO(downloaded_text(response).removeprefix("\ufeff"))))
    assert header == ["'" + hostile, "number", "_extra"]
    assert row == ["1", f"'{start}2", ""]


# --- "Point at another authentication" moves only what its review page showed --------------


def test_an_endpoint_edited_after_the_review_is_not_moved(
    admin_client, tokens_planted, make_endpoint, make_authentication
):
    other = make_authentication(name="BC other")
    endpoint = make_endpoint(tokens_planted, name="Reviewed")
    chosen = {
        "action": "point_at_another_authentication",
        "_selected_action": [endpoint.pk],
        "authentication": other.pk,
    }
    review = admin_client.post(LIST_URL, {**chosen, "bc_move_step": "review"})
    admin_client.post(
        endpoint_url(endpoint),
        endpoint_form_data(tokens_planted, name="Reviewed", path="api/v2.0/items"),
    )

    done = admin_client.post(
        LIST_URL, {**chosen, "bc_move_step": "confirm", "bc_seen": moves_shown(review)}, follow=True
    )

    endpoint.refresh_from_db()
    assert endpoint.path == "api/v2.0/items" and endpoint.authentication == tokens_planted
    assertContains(done, "changed meanwhile and were not moved")
    assert not Event.objects.filter(kind=Event.Kind.ENDPOINT_MOVED).exists()


def test_a_move_confirmed_without_its_review_page_moves_nothing(
    admin_client, tokens_planted, make_endpoint, make_authentication
):
    other = make_authentication(name="BC other")
    endpoint = make_endpoint(tokens_planted)

    admin_client.post(LIST_URL, move_form(endpoint, other, "confirm"))

    endpoint.refresh_from_db()
    assert endpoint.authentication == tokens_planted


# --- choosing a company races a move ----------------------------------------------------------


def test_a_company_chosen_as_the_endpoint_moves_is_not_stored(
    tokens_planted, make_endpoint, make_authentication, fake_microsoft
):
    from authentications.endpoints import moves as endpoint_moves

    endpoint = make_endpoint(tokens_planted, company_id="", company_name="")
    other = make_authentication(name="BC other")
    Endpoint.objects.filter(pk=endpoint.pk).update(authentication=other)  # Moved meanwhile.

    chosen = endpoint_moves.set_company(endpoint, fake_microsoft.bc.company.id)

    stored = Endpoint.objects.get(pk=endpoint.pk)
    assert chosen is None and stored.authentication == other and stored.company_id == ""


# --- no credential in a header value or a query row ----------------------------------------

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2FwaS5idXNpbmVzc2NlbnRyYWwifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "value", [f"Bearer {JWT}", "basic dXNlcjpwYXNzd29yZA==", f"prefix {JWT}", "NTLM TlRMTVNTUAAB"]
)
def test_a_credential_under_an_innocent_header_name_is_refused(connected_row, value):
    form = EndpointForm(endpoint_form_data(connected_row, headers=[("X-Tracking", value)]))

    assert not form.is_valid()
    assert "looks like a credential" in " ".join(form.errors["headers"])
    assert value not in str(form.errors)


@pytest.mark.parametrize(
    "name, value",
    [("access_token", "abc"), ("subscription-key", "abc"), ("code", JWT), ("$filter", JWT)],
)
def test_a_credential_in_a_query_row_is_refused(connected_row, name, value):
    form = EndpointForm(endpoint_form_data(connected_row, params=[(name, value)]))

    assert not form.is_valid()
    assert "cannot be stored" in " ".join(form.errors["params"])
    assert value not in str(form.errors)


def test_a_credential_stored_by_code_is_not_shown_to_a_viewer(
    client, admin_client, tokens_planted, make_endpoint
):
    def admin_client_page(endpoint):
        return admin_client.get(endpoint_url(endpoint)).content.decode()

    endpoint = make_endpoint(
        tokens_planted,
        params=[["access_token", "plain-secret-1"], ["$top", "2"]],
        headers=[["X-Tracking", f"Bearer {JWT}"]],
    )
    log_in_staff_with(client, "view_endpoint")

    page = client.get(endpoint_url(endpoint)).content.decode()
    edit_page = admin_client_page(endpoint)

    for shown in (page, edit_page):
        assert "plain-secret-1" not in shown and JWT not in shown
        assert "the query parameter &#x27;access_token&#x27; is not sent" in shown
    assert "access_token: (refused, not shown)<br>$top: 2" in page
    assert "X-Tracking: (refused, not shown)" in page


def test_an_etag_and_ordinary_values_are_not_mistaken_for_credentials(connected_row):
    form = EndpointForm(
        endpoint_form_data(
            connected_row,
            params=[("$filter", "displayName eq 'Basic Stuff'"), ("company", "CRONUS")],
            headers=[("Accept-Language", "da-DK"), ("Prefer", "odata.maxpagesize=100")],
        )
    )

    assert form.is_valid(), form.errors


def test_a_credential_query_row_stored_by_code_is_never_sent(
    tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, params={"api_key": "plain-secret-3"})

    with pytest.raises(EndpointNotReady) as caught:
        list(endpoint.iter())
    with pytest.raises(EndpointNotReady):
        list(endpoint.iter(code=f"Bearer {JWT}"))
    assert fake_microsoft.bc.requests == [] and "plain-secret-3" not in str(caught.value)


# --- Duplicate at the name's max length -------------------------------------------------------


def test_duplicates_of_a_name_at_max_length_stay_within_it_and_unique(
    admin_client, tokens_planted, make_endpoint
):
    name = "N" * Endpoint._meta.get_field("name").max_length
    endpoint = make_endpoint(tokens_planted, name=name)

    for _ in range(3):
        admin_client.post(LIST_URL, {"action": "duplicate", "_selected_action": [endpoint.pk]})

    names = set(Endpoint.objects.exclude(pk=endpoint.pk).values_list("name", flat=True))
    assert names == {
        "N" * 93 + " (copy)",
        "N" * 91 + " (copy 2)",
        "N" * 91 + " (copy 3)",
    }


def test_a_copy_whose_name_is_taken_at_insert_takes_the_next_one(tokens_planted, make_endpoint):
    """What two staff duplicating at once meet: the first free-looking name is taken by the
    time the copy is inserted. The insert itself decides, so the copy takes the next name."""
    endpoint = make_endpoint(tokens_planted, name="Orders")
    make_endpoint(tokens_planted, name="Orders (copy)")  # The other click won this name.

    copy = endpoint_moves.duplicate(endpoint)

    assert copy.name == "Orders (copy 2)"
    assert Endpoint.objects.filter(name__startswith="Orders").count() == 3
