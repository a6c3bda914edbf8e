"""A service lists the authentications its key may use, and only those; errors are problems."""

import pytest

from authentications.api import keys
from authentications.api.models import ApiCall
from tests.helpers import problem

LIST = "/api/v1/authentications/"
FIELDS = {"id", "name", "kind", "status", "environment", "base_url", "access_token_expires_at"}


def test_a_key_lists_only_its_authentications(make_key, caller, make_authentication):
    mine = make_authentication(name="BC production")
    make_authentication(name="Someone else's")
    _, plaintext = make_key(mine)

    page = caller(plaintext).get(LIST).json()

    assert page["count"] == 1 and page["next"] is None and page["previous"] is None
    (shown,) = page["results"]
    assert set(shown) == FIELDS
    assert shown["name"] == "BC production" and shown["environment"] == "Production"


def test_a_superusers_all_key_lists_every_authentication(make_key, caller, make_authentication):
    for index in range(3):
        make_authentication(name=f"BC {index}")
    _, plaintext = make_key(all_authentications=True)

    assert caller(plaintext).get(LIST).json()["count"] == 3


def test_one_authentication_and_a_404_for_one_the_key_may_not_use(
    make_key, caller, make_authentication
):
    mine, other = make_authentication(name="Mine"), make_authentication(name="Other")
    _, plaintext = make_key(mine)
    client = caller(plaintext)

    assert client.get(f"{LIST}{mine.pk}/").json()["name"] == "Mine"
    not_mine = problem(client.get(f"{LIST}{other.pk}/"), 404, "not_found")
    missing = problem(client.get(f"{LIST}{other.pk + 1000}/"), 404, "not_found")
    assert not_mine == missing  # Indistinguishable from one that does not exist.


@pytest.mark.parametrize("header", [None, "Api-Key", "Api-Key nope", "Bearer x.y", "Api-Key a.b"])
def test_without_a_usable_key_every_answer_is_the_same_401(db, caller, header):
    client = caller()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(LIST)

    body = problem(response, 401, "api_key_invalid")
    assert response["WWW-Authenticate"] == "Api-Key"
    assert body["detail"] == "A valid API key is required: send Authorization: Api-Key <key>."


def test_revoked_and_expired_keys_get_the_same_401_on_the_next_request(
    make_key, caller, connected_row
):
    key, plaintext = make_key(connected_row)
    client = caller(plaintext)
    assert client.get(LIST).status_code == 200

    keys.revoke(key.prefix)

    assert problem(client.get(LIST), 401, "api_key_invalid")


def test_an_unknown_url_under_the_api_is_a_problem_404(make_key, caller, connected_row):
    _, plaintext = make_key(connected_row)

    problem(caller(plaintext).get("/api/v1/nothing-here/"), 404, "not_found")
    problem(caller(plaintext).post(f"{LIST}{connected_row.pk}/token"), 404, "not_found")


def test_sessions_do_not_open_the_api(admin_client, connected_row):
    problem(admin_client.get(LIST), 401, "api_key_invalid")


def test_every_call_is_audited_without_query_values(make_key, caller, connected_row):
    key, plaintext = make_key(connected_row)
    client = caller(plaintext)

    client.get(f"{LIST}?page=1&secret-ish=value", REMOTE_ADDR="192.0.2.7")
    client.get(f"{LIST}{connected_row.pk}/", REMOTE_ADDR="192.0.2.7")
    caller("nope.nope").get(LIST)

    listed, detail, refused = ApiCall.objects.order_by("id")
    assert (listed.key, listed.key_prefix, listed.method) == (key, key.prefix, "GET")
    assert listed.path == "/api/v1/authentications/?page=&secret-ish="
    assert listed.status == 200 and listed.bytes > 0 and listed.client_ip == "192.0.2.7"
    assert detail.authentication == connected_row
    assert (refused.key, refused.status, refused.code) == (None, 401, "api_key_invalid")
    key.refresh_from_db()
    assert key.last_used_ip == "192.0.2.7" and key.last_used_at is not None


def test_the_audited_path_is_percent_encoded(make_key, caller, connected_row):
    _, plaintext = make_key(connected_row)

    caller(plaintext).get("/api/v1/nothing%00here/\u00e9?a%00b=1")

    assert ApiCall.objects.get().path == "/api/v1/nothing%00here/%C3%A9?a%00b="
