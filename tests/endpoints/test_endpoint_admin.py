"""Staff test endpoints in the admin, choose their company, move and copy them."""

import re

import pytest
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections.models import Event
from authentications.endpoints.models import Endpoint
from tests.helpers import (
    confirmed_write,
    endpoint_url,
    log_in_staff_with,
    move_form,
    moves_shown,
    rename_endpoint,
)

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/authentications/endpoint/"


# --- testing a GET --------------------------------------------------------------------------


def test_testing_a_get_shows_status_rows_and_the_first_rows(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 80
    endpoint = make_endpoint(tokens_planted, params=[["$select", "number,displayName,city"]])

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "HTTP 200")
    assertContains(page, "80 rows; no more pages")
    assertContains(page, "The first 50 rows")
    assertContains(page, "<th>number</th><th>displayName</th><th>city</th>", html=False)
    assertContains(page, "<td>C000050</td>")
    assertNotContains(page, "<td>C000051</td>")
    assertContains(page, "&quot;number&quot;: &quot;C000001&quot;")  # The raw JSON.
    assert re.search(r"<th>BC request id</th><td>[0-9a-f-]{36}</td>", page.content.decode())
    endpoint.refresh_from_db()
    assert endpoint.last_test_status == 200 and endpoint.last_test_rows == 80


def test_the_result_says_more_pages_follow(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 30_000  # More than one BC page of 20,000.
    endpoint = make_endpoint(tokens_planted)

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "20000 rows on the first page; more pages follow")
    assert fake_microsoft.bc.count("GET") == 1


def test_nested_values_are_compact_json_and_long_ones_are_cut(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(
        tokens_planted, params=[["$expand", "customerFinancialDetail"], ["$top", "1"]]
    )
    customer = fake_microsoft.bc.company.generate(0)
    fake_microsoft.bc.company.changed[customer["id"]] = {**customer, "website": "w" * 300}

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "{&quot;id&quot;:")
    assertContains(page, "w" * 120 + "… [cut]")


def test_the_list_shows_the_last_test(admin_client, tokens_planted, make_endpoint):
    endpoint = make_endpoint(tokens_planted, params=[["$top", "7"]])
    admin_client.get(endpoint_url(endpoint, "test"))

    page = admin_client.get(LIST_URL)

    assertContains(page, "HTTP 200 · ")
    assertContains(page, " · 7 rows · ")


def test_the_test_action_opens_the_test_of_one_endpoint(
    admin_client, tokens_planted, make_endpoint
):
    endpoint = make_endpoint(tokens_planted)

    response = admin_client.post(
        LIST_URL, {"action": "test_endpoint", "_selected_action": [endpoint.pk]}
    )

    assert response.status_code == 302 and response["Location"] == endpoint_url(endpoint, "test")


# --- errors in plain words ------------------------------------------------------------------


def test_a_missing_permission_is_explained(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.denied["jane@contoso.com"] = {"customers"}
    endpoint = make_endpoint(tokens_planted)

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "HTTP 403")
    assertContains(page, "Sorry, the current permissions prevented the action")
    assertContains(page, "ask a Business Central administrator to assign a permission set")
    endpoint.refresh_from_db()
    assert endpoint.last_test_status == 403 and "permissions" in endpoint.last_test_error


def test_a_missing_licence_is_explained(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.unlicensed_users.add("jane@contoso.com")
    endpoint = make_endpoint(tokens_planted)

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "no Business Central licence that allows this")


def test_a_wrong_company_is_explained(admin_client, tokens_planted, make_endpoint):
    endpoint = make_endpoint(tokens_planted, company_id="0000beef-e0d4-4f5a-9a1b-0000c0ffee00")

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "HTTP 400")
    assertContains(page, "BadRequest_ResourceNotFound")
    assertContains(page, "choose the company again")


def test_throttling_is_explained_with_the_wait(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.fail_next(("status", 429, {"Retry-After": "600"}))
    endpoint = make_endpoint(tokens_planted)

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "HTTP 429")
    assertContains(page, "is throttling this user")
    assertContains(page, "try again in 600 seconds")


def test_no_company_chosen_is_explained_without_a_request(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, company_id="", company_name="")

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "choose its company first")
    assert fake_microsoft.bc.requests == []


# --- writes need a confirmation -------------------------------------------------------------


def test_a_patch_is_confirmed_first_then_sent(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)

    confirmation = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(confirmation, "This test changes data in Business Central")
    assertContains(confirmation, "<strong>Production</strong> environment")
    assertContains(confirmation, "company <strong>CRONUS USA, Inc.</strong>")
    assertContains(confirmation, f"PATCH {endpoint.url()}")
    assertContains(confirmation, "&quot;displayName&quot;: &quot;Renamed by a test&quot;")
    assert fake_microsoft.bc.count("PATCH") == 0

    result = admin_client.post(
        endpoint_url(endpoint, "test"), confirmed_write(admin_client, endpoint), follow=True
    )

    assertContains(result, "HTTP 200")
    assertContains(result, "<td>Renamed by a test</td>")
    assert fake_microsoft.bc.company.at(4)["displayName"] == "Renamed by a test"
    event = Event.objects.get(kind=Event.Kind.ENDPOINT_WRITE_TESTED)
    assert "Rename customer 5" in event.detail and "HTTP 200" in event.detail


def test_a_post_without_the_confirmation_field_is_not_sent(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)

    page = admin_client.post(endpoint_url(endpoint, "test"), {})

    assertContains(page, "This test changes data in Business Central")
    assert fake_microsoft.bc.count("PATCH") == 0


def test_a_stale_etag_is_explained(admin_client, tokens_planted, make_endpoint, fake_microsoft):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    admin_client.post(
        endpoint_url(endpoint, "test"), confirmed_write(admin_client, endpoint), follow=True
    )

    again = admin_client.post(
        endpoint_url(endpoint, "test"), confirmed_write(admin_client, endpoint), follow=True
    )

    assertContains(again, "Another user has already changed the record")
    assertContains(again, "HTTP 409")


# --- permissions ----------------------------------------------------------------------------


def test_viewers_may_test_a_get_but_not_export(client, tokens_planted, make_endpoint):
    endpoint = make_endpoint(tokens_planted, params=[["$top", "2"]])
    log_in_staff_with(client, "view_endpoint")

    assertContains(client.get(endpoint_url(endpoint, "test")), "HTTP 200")
    page = client.get(endpoint_url(endpoint))
    assertNotContains(page, "Download CSV")
    assert client.get(endpoint_url(endpoint, "export/csv")).status_code == 403
    assert client.get(endpoint_url(endpoint, "export/jsonl")).status_code == 403


def test_a_write_test_needs_run_endpoint(client, tokens_planted, make_endpoint, fake_microsoft):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    log_in_staff_with(client, "view_endpoint", "change_endpoint")

    assert client.get(endpoint_url(endpoint, "test")).status_code == 403
    assert client.post(endpoint_url(endpoint, "test"), {"bc_confirm": "y"}).status_code == 403
    assert fake_microsoft.bc.count("PATCH") == 0


def test_run_endpoint_allows_the_write_test(client, tokens_planted, make_endpoint, fake_microsoft):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    log_in_staff_with(client, "view_endpoint", "run_endpoint")

    assertContains(
        client.post(endpoint_url(endpoint, "test"), confirmed_write(client, endpoint), follow=True),
        "HTTP 200",
    )


def test_without_view_permission_nothing_runs(
    client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted)
    log_in_staff_with(client, "run_endpoint")

    assert client.get(endpoint_url(endpoint, "test")).status_code == 403
    assert client.get(endpoint_url(endpoint, "export/csv")).status_code == 403
    assert fake_microsoft.bc.requests == []


def test_an_unknown_endpoint_is_404(admin_client, db):
    assert admin_client.get("/admin/authentications/endpoint/999/test/").status_code == 404
    assert admin_client.get("/admin/authentications/endpoint/x/export/csv/").status_code == 404


# --- the company ----------------------------------------------------------------------------


def test_choose_company_lists_and_sets_the_companies_reached(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted, company_id="", company_name="")
    canada = fake_microsoft.bc.companies[1]

    page = admin_client.get(endpoint_url(endpoint, "company"))
    assertContains(page, "CRONUS Canada, Inc.")
    response = admin_client.post(endpoint_url(endpoint, "company"), {"company_id": canada.id})

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.company_id, endpoint.company_name) == (canada.id, canada.name)


def test_a_company_the_authentication_does_not_reach_is_refused(
    admin_client, tokens_planted, make_endpoint
):
    endpoint = make_endpoint(tokens_planted)
    before = endpoint.company_id

    response = admin_client.post(
        endpoint_url(endpoint, "company"), {"company_id": "not-a-company"}, follow=True
    )

    assertContains(response, "not a company this authentication reaches")
    endpoint.refresh_from_db()
    assert endpoint.company_id == before


# --- moving and copying ---------------------------------------------------------------------


def test_point_at_another_authentication_shows_the_changes_then_moves(
    admin_client, tokens_planted, make_endpoint, make_authentication, fake_microsoft
):
    from tests.helpers import plant_tokens

    sandbox_url = fake_microsoft.bc.base_url("Sandbox")
    staging = plant_tokens(
        fake_microsoft, make_authentication(name="BC staging", base_url=sandbox_url)
    )
    endpoint = make_endpoint(tokens_planted, name="Customers")
    chosen = {"action": "point_at_another_authentication", "_selected_action": [endpoint.pk]}

    first = admin_client.post(LIST_URL, chosen)
    assertContains(first, "Review the changes")
    review = admin_client.post(
        LIST_URL, {**chosen, "authentication": staging.pk, "bc_move_step": "review"}
    )
    assertContains(review, "/Production/api/v2.0/companies(")
    assertContains(review, "/Sandbox/api/v2.0/companies(")
    assertContains(review, "CRONUS USA, Inc. → CRONUS USA, Inc.")
    endpoint.refresh_from_db()
    assert endpoint.authentication == tokens_planted

    done = admin_client.post(
        LIST_URL,
        {
            **chosen,
            "authentication": staging.pk,
            "bc_move_step": "confirm",
            "bc_seen": moves_shown(review),
        },
    )

    assert done.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.authentication == staging
    assert endpoint.company_name == "CRONUS USA, Inc."
    events = Event.objects.filter(kind=Event.Kind.ENDPOINT_MOVED)
    assert {e.authentication for e in events} == {tokens_planted, staging}
    assert "moved from “BC production” to “BC staging”" in events[0].detail


def test_a_company_the_new_authentication_does_not_reach_is_dropped(
    admin_client, tokens_planted, make_endpoint, make_authentication
):
    offline = make_authentication(name="BC offline")  # No token: its companies are unknown.
    endpoint = make_endpoint(tokens_planted)
    chosen = {
        "action": "point_at_another_authentication",
        "_selected_action": [endpoint.pk],
        "authentication": offline.pk,
    }

    review = admin_client.post(LIST_URL, {**chosen, "bc_move_step": "review"})
    assertContains(review, "choose the company again after the move")
    admin_client.post(
        LIST_URL, {**chosen, "bc_move_step": "confirm", "bc_seen": moves_shown(review)}
    )

    endpoint.refresh_from_db()
    assert endpoint.authentication == offline and endpoint.company_id == ""


def test_an_endpoint_edited_meanwhile_is_not_moved(
    admin_client, tokens_planted, make_endpoint, make_authentication
):
    from authentications.endpoints import moves as endpoint_moves

    other = make_authentication(name="BC other")
    endpoint = make_endpoint(tokens_planted)
    moves = endpoint_moves.plan_moves([endpoint], other)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        authentication=make_authentication(name="BC third")
    )

    assert endpoint_moves.apply_moves(moves, other) == []
    assert not Event.objects.filter(kind=Event.Kind.ENDPOINT_MOVED).exists()


def test_moving_needs_the_change_permission(
    client, tokens_planted, make_endpoint, make_authentication
):
    other = make_authentication(name="BC other")
    endpoint = make_endpoint(tokens_planted)
    log_in_staff_with(client, "view_endpoint", "run_endpoint")

    client.post(LIST_URL, move_form(endpoint, other, "confirm"))

    endpoint.refresh_from_db()
    assert endpoint.authentication == tokens_planted


def test_duplicate_copies_one_endpoint_untested(admin_client, tokens_planted, make_endpoint):
    endpoint = make_endpoint(tokens_planted, name="Customers", params=[["$top", "3"]])
    admin_client.get(endpoint_url(endpoint, "test"))

    response = admin_client.post(
        LIST_URL, {"action": "duplicate", "_selected_action": [endpoint.pk]}
    )
    again = admin_client.post(LIST_URL, {"action": "duplicate", "_selected_action": [endpoint.pk]})

    copy = Endpoint.objects.get(name="Customers (copy)")
    assert response["Location"] == endpoint_url(copy)
    assert Endpoint.objects.filter(name="Customers (copy 2)").exists() and again.status_code == 302
    assert copy.params == [["$top", "3"]] and copy.company_id == endpoint.company_id
    assert copy.last_tested_at is None


def test_a_patch_whose_answer_was_lost_says_it_may_have_been_applied(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    fake_microsoft.bc.fail_next(("drop_after",))  # Applied, then the connection drops.

    page = admin_client.post(
        endpoint_url(endpoint, "test"), confirmed_write(admin_client, endpoint), follow=True
    )

    assertContains(page, "The first attempt may have been applied")
    assert fake_microsoft.bc.company.at(4)["displayName"] == "Renamed by a test"


def test_a_hung_answer_is_given_up_on_and_retried(
    admin_client, tokens_planted, make_endpoint, fake_microsoft, settings
):
    settings.BC_HTTP_TIMEOUT = (2, 0.5)
    fake_microsoft.bc.fail_next(("sleep", 1.5))
    endpoint = make_endpoint(tokens_planted, params=[["$top", "3"]])

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "HTTP 200")
    assert fake_microsoft.bc.count("GET", "/customers") == 2


def test_a_confirmed_post_creates_and_a_confirmed_delete_deletes(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    create = make_endpoint(
        tokens_planted,
        name="Create customer",
        method=Endpoint.Method.POST,
        body={"displayName": "Made in the admin"},
    )
    assertContains(admin_client.get(endpoint_url(create, "test")), "(creates a record)")

    created = admin_client.post(
        endpoint_url(create, "test"), confirmed_write(admin_client, create), follow=True
    )

    assertContains(created, "HTTP 201")
    (new_id,) = fake_microsoft.bc.company.created
    remove = make_endpoint(
        tokens_planted,
        name="Delete customer",
        method=Endpoint.Method.DELETE,
        path=f"api/v2.0/companies({{company}})/customers({new_id})",
        headers=[["If-Match", "*"]],
    )
    assertContains(admin_client.get(endpoint_url(remove, "test")), "(deletes a record)")
    deleted = admin_client.post(
        endpoint_url(remove, "test"), confirmed_write(admin_client, remove), follow=True
    )

    assertContains(deleted, "HTTP 204")
    assert fake_microsoft.bc.company.get(new_id) is None
    assert Event.objects.filter(kind=Event.Kind.ENDPOINT_WRITE_TESTED).count() == 2


def test_a_credential_stored_by_code_is_not_shown_on_the_confirmation(
    admin_client, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    endpoint.headers.append(["X-Api-Key", "stored-by-code-secret"])
    endpoint.save()

    page = admin_client.get(endpoint_url(endpoint, "test"))
    assertContains(page, "X-Api-Key: (refused, not sent)")
    assertNotContains(page, "stored-by-code-secret")
    sent = admin_client.post(
        endpoint_url(endpoint, "test"), confirmed_write(admin_client, endpoint), follow=True
    )

    assertContains(sent, "Header_Refused")
    assertNotContains(sent, "stored-by-code-secret")
    assert fake_microsoft.bc.count("PATCH") == 0
