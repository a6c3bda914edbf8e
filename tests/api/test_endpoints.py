"""Saved endpoints through the API: listed, run as the admin's Test runs them, exported."""

import csv
import io
import json

import pytest

from authentications.connections.models import Event
from tests.helpers import expiring, problem, rename_endpoint

ENDPOINTS = "/api/v1/endpoints/"


@pytest.fixture
def with_scopes(make_key, caller, tokens_planted):
    def make(*scopes):
        return caller(make_key(tokens_planted, scopes=scopes)[1])

    return make


def downloaded(response):
    return b"".join(response.streaming_content).decode()


def test_only_the_endpoints_of_the_keys_authentications_are_listed(
    with_scopes, tokens_planted, make_endpoint, make_authentication
):
    mine = make_endpoint(tokens_planted, name="Customers")
    make_endpoint(make_authentication(name="Other"), name="Not mine")

    page = with_scopes("endpoints").get(ENDPOINTS).json()

    assert [shown["name"] for shown in page["results"]] == ["Customers"]
    assert page["results"][0]["id"] == mine.pk
    problem(with_scopes("bc.read").get(ENDPOINTS), 403, "scope_missing")


def test_running_a_get_endpoint_answers_like_the_admins_test(
    with_scopes, tokens_planted, make_endpoint
):
    endpoint = make_endpoint(tokens_planted, params=[["$top", "3"]])

    run = with_scopes("endpoints").post(f"{ENDPOINTS}{endpoint.pk}/run/").json()

    assert run["ok"] is True and run["status"] == 200 and run["row_count"] == 3
    assert len(run["rows"]) == 3 and run["error"] == ""
    endpoint.refresh_from_db()
    assert endpoint.last_test_status == 200  # Remembered, as a Test in the admin is.


def test_running_a_write_endpoint_needs_bc_write_too(
    with_scopes, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)

    refused = with_scopes("endpoints").post(f"{ENDPOINTS}{endpoint.pk}/run/")
    assert "bc.write" in problem(refused, 403, "scope_missing")["detail"]
    assert fake_microsoft.bc.count("PATCH") == 0

    run = with_scopes("endpoints", "bc.write").post(f"{ENDPOINTS}{endpoint.pk}/run/").json()
    assert run["ok"] is True and run["status"] == 200
    assert fake_microsoft.bc.count("PATCH") == 1
    event = Event.objects.filter(kind=Event.Kind.ENDPOINT_WRITE_TESTED).get()
    assert event.actor.startswith("API key ")


def test_another_keys_endpoint_is_a_404(with_scopes, make_endpoint, make_authentication):
    other = make_endpoint(make_authentication(name="Other"))

    problem(with_scopes("endpoints").post(f"{ENDPOINTS}{other.pk}/run/"), 404, "not_found")
    problem(with_scopes("endpoints").get(f"{ENDPOINTS}{other.pk}/export/"), 404, "not_found")


def test_a_run_for_a_connection_that_needs_a_person_is_a_409(
    with_scopes, tokens_planted, make_endpoint, fake_microsoft
):
    endpoint = make_endpoint(tokens_planted)
    fake_microsoft.entra.revoke_user("jane@contoso.com")
    expiring(tokens_planted, seconds=-10)

    problem(with_scopes("endpoints").post(f"{ENDPOINTS}{endpoint.pk}/run/"), 409, "needs_sign_in")


def test_the_export_streams_every_row_as_csv_defused_for_excel(
    with_scopes, tokens_planted, make_endpoint, fake_microsoft
):
    fake_microsoft.bc.company.generated = 1_234
    customer = fake_microsoft.bc.company.generate(0)
    fake_microsoft.bc.company.changed[customer["id"]] = {**customer, "displayName": "=1+1"}
    endpoint = make_endpoint(tokens_planted, params=[["$select", "number,displayName"]])

    response = with_scopes("endpoints").get(f"{ENDPOINTS}{endpoint.pk}/export/?file=csv")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(downloaded(response).removeprefix("\ufeff"))))
    assert len(rows) == 1 + 1_234
    assert rows[1][2] == "'=1+1"


def test_the_export_as_json_lines(with_scopes, tokens_planted, make_endpoint, fake_microsoft):
    endpoint = make_endpoint(tokens_planted, params=[["$top", "7"]])

    response = with_scopes("endpoints").get(f"{ENDPOINTS}{endpoint.pk}/export/?file=jsonl")

    lines = downloaded(response).splitlines()
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert len(lines) == 7 and all("id" in json.loads(line) for line in lines)


def test_only_get_endpoints_export_and_only_as_csv_or_jsonl(
    with_scopes, tokens_planted, make_endpoint, fake_microsoft
):
    write = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    read = make_endpoint(tokens_planted)
    client = with_scopes("endpoints")

    problem(client.get(f"{ENDPOINTS}{write.pk}/export/"), 400, "not_a_read")
    problem(client.get(f"{ENDPOINTS}{read.pk}/export/?file=xlsx"), 400, "invalid_input")
