"""API keys in the admin: made with a dedicated permission, shown once, revoked by another."""

import re

from authentications.api import keys
from authentications.api.models import ApiCall, ApiKey
from tests.helpers import log_in_staff_with

ADD_URL = "/admin/authentications/apikey/add/"
LIST_URL = "/admin/authentications/apikey/"


def add_form(authentication, **overrides):
    return {
        "name": "Storefront",
        "scopes": ["tokens", "bc.read"],
        "authentications": [authentication.pk],
        "rate_limit": "",
        **overrides,
    }


def test_staff_with_add_permission_make_a_key_and_see_it_once(client, connected_row):
    log_in_staff_with(client, "add_apikey", "view_apikey")

    page = client.post(ADD_URL, add_form(connected_row))

    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    plaintext = re.search(r'value="([A-Za-z0-9]{8}\.[A-Za-z0-9]{32})"', page.content.decode())[1]
    key = keys.find_key(plaintext)
    assert key.owner.username.startswith("staff-")
    assert key.scopes == ["tokens", "bc.read"]
    assert list(key.authentications.all()) == [connected_row]
    assert not page.cookies.get("messages")  # The key never travels in a message cookie.
    listing = client.get(LIST_URL).content.decode()
    change = client.get(f"{LIST_URL}{key.pk}/change/").content.decode()
    assert key.prefix in listing
    assert plaintext.partition(".")[2] not in listing + change
    assert key.hashed_key not in change


def test_view_only_staff_see_names_and_prefixes_but_cannot_make_keys(
    client, make_key, connected_row
):
    key, plaintext = make_key(connected_row)
    log_in_staff_with(client, "view_apikey")

    listing = client.get(LIST_URL).content.decode()

    assert key.name in listing and key.prefix in listing
    assert plaintext not in listing
    assert client.post(ADD_URL, add_form(connected_row)).status_code == 403
    assert ApiKey.objects.count() == 1


def test_only_a_superuser_may_give_a_key_every_authentication(client, admin_user, connected_row):
    log_in_staff_with(client, "add_apikey", "view_apikey")
    client.post(ADD_URL, add_form(connected_row, all_authentications="on"))
    assert ApiKey.objects.get().all_authentications is False

    client.force_login(admin_user)
    client.post(ADD_URL, add_form(connected_row, name="All", all_authentications="on"))
    assert ApiKey.objects.get(name="All").all_authentications is True


def test_a_key_without_authentications_is_refused(client, admin_user, connected_row):
    client.force_login(admin_user)

    page = client.post(ADD_URL, add_form(connected_row, authentications=[]))

    assert "Choose the authentications" in page.content.decode()
    assert not ApiKey.objects.exists()


def test_revoking_needs_the_revoke_permission(client, make_key, connected_row):
    key, plaintext = make_key(connected_row)
    action = {"action": "revoke_keys", "_selected_action": [key.pk]}

    log_in_staff_with(client, "view_apikey", "change_apikey")
    client.post(LIST_URL, action)
    assert keys.find_key(plaintext) == key

    log_in_staff_with(client, "view_apikey", "revoke_apikey")
    client.post(LIST_URL, action)
    assert keys.find_key(plaintext) is None


def test_the_audit_is_read_only_and_filterable_by_key_and_authentication(
    client, admin_user, make_key, connected_row
):
    key, _ = make_key(connected_row)
    ApiCall.objects.create(
        key=key, key_prefix=key.prefix, authentication=connected_row, method="GET",
        path="/api/v1/authentications/", status=200, duration_ms=3,
    )  # fmt: skip
    client.force_login(admin_user)

    by_key = client.get(f"/admin/authentications/apicall/?key__id__exact={key.pk}")
    by_auth = client.get(
        f"/admin/authentications/apicall/?authentication__id__exact={connected_row.pk}"
    )

    assert "/api/v1/authentications/" in by_key.content.decode()
    assert "/api/v1/authentications/" in by_auth.content.decode()
    assert client.get("/admin/authentications/apicall/add/").status_code == 403
