"""Staff add an authentication, click Save, sign in at Microsoft and get a token."""

from urllib.parse import parse_qs, urlsplit

import pytest
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections.models import Authentication, AuthorizationRequest, Event
from authentications.signin.flows import binding_cookie_name
from tests.fakes.entra import CLIENT_ID, TENANT_ID
from tests.helpers import add_form_data, admin_change_url, change_form_data

pytestmark = pytest.mark.django_db


def test_save_redirects_to_the_microsoft_sign_in_page(admin_client, fake_microsoft, settings):
    response = admin_client.post(
        "/admin/authentications/authentication/add/", add_form_data(fake_microsoft)
    )

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}" == fake_microsoft.url
    assert location.path == f"/{TENANT_ID}/oauth2/v2.0/authorize"
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [settings.PUBLIC_BASE_URL + "/authentications/callback/"]
    assert set(query["scope"][0].split()) == {
        f"{fake_microsoft.url}/user_impersonation",
        "openid",
        "profile",
        "offline_access",
    }
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["response_mode"] == ["form_post"]
    state = query["state"][0]
    assert len(state) >= 43
    pending = AuthorizationRequest.objects.get(state=state)
    assert pending.started_via == "admin"
    assert pending.used_at is None
    cookie = response.cookies[binding_cookie_name(state)]
    assert cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"] == "None"
    assert cookie["path"] == "/authentications/callback/"


def test_round_trip_stores_the_token_and_shows_access_token_received(
    admin_client, fake_microsoft, sign_in
):
    response = admin_client.post(
        "/admin/authentications/authentication/add/", add_form_data(fake_microsoft)
    )

    answer = sign_in(admin_client, response)

    authentication = Authentication.objects.get(name="BC production")
    assert answer.status_code == 303
    assert answer["Location"].startswith(admin_change_url(authentication))
    page = admin_client.get(answer["Location"])
    content = page.content.decode()
    assert "Access token received" in content
    assert authentication.status == Authentication.Status.CONNECTED
    assert authentication.access_token.startswith("fake-at-")
    assert authentication.refresh_token.startswith("fake-rt-")
    assert authentication.access_token not in content
    assert authentication.masked_access_token in content
    assert authentication.granted_by_upn == "jane@contoso.com"
    assert authentication.granted_by_name == "Jane Doe"
    assert authentication.granted_by_oid == fake_microsoft.entra.users["jane@contoso.com"].oid
    assert "Jane Doe (jane@contoso.com) via Admin" in content
    assert authentication.access_token_expires_at is not None
    assert list(authentication.events.values_list("kind", flat=True)) == [
        Event.Kind.SIGN_IN_GRANTED,
        Event.Kind.SIGN_IN_STARTED,
    ]
    pending = AuthorizationRequest.objects.get()
    assert pending.used_at is not None and pending.outcome == "granted"


def test_reloading_the_change_page_later_shows_no_stale_message(admin_client, make_authentication):
    authentication = make_authentication()

    page = admin_client.get(admin_change_url(authentication) + "?signin=not-a-uuid")

    assertNotContains(page, "Access token received")


def test_save_and_close_does_not_sign_in(admin_client, fake_microsoft):
    data = add_form_data(fake_microsoft)
    del data["_continue"]
    data["_save"] = "Save and close"

    response = admin_client.post("/admin/authentications/authentication/add/", data)

    assert response["Location"] == "/admin/authentications/authentication/"
    assert not AuthorizationRequest.objects.exists()


def test_save_with_a_valid_token_and_unchanged_credentials_stays(
    admin_client, make_authentication, fake_microsoft, sign_in
):
    authentication = make_authentication()
    sign_in(
        admin_client,
        admin_client.post(
            admin_change_url(authentication), change_form_data(authentication, _continue="Save")
        ),
    )

    response = admin_client.post(
        admin_change_url(authentication),
        change_form_data(authentication, expected_user="", _continue="Save"),
    )

    assert response.status_code == 302
    assert response["Location"] == admin_change_url(authentication)


def test_changing_the_secret_signs_in_again(
    admin_client, make_authentication, fake_microsoft, sign_in
):
    authentication = make_authentication()
    sign_in(
        admin_client,
        admin_client.post(
            admin_change_url(authentication), change_form_data(authentication, _continue="Save")
        ),
    )
    fake_microsoft.entra.register_app(CLIENT_ID, "new-secret-value")

    response = admin_client.post(
        admin_change_url(authentication),
        change_form_data(authentication, client_secret="new-secret-value", _continue="Save"),
    )

    assert response["Location"].startswith(fake_microsoft.url)
    authentication.refresh_from_db()
    assert authentication.client_secret == "new-secret-value"


def test_sign_in_button_starts_a_new_sign_in(admin_client, make_authentication, sign_in):
    authentication = make_authentication()

    response = admin_client.post(admin_change_url(authentication).replace("change/", "sign-in/"))

    assert sign_in(admin_client, response).status_code == 303
    authentication.refresh_from_db()
    assert authentication.status == Authentication.Status.CONNECTED


def test_sign_in_button_refuses_get(admin_client, make_authentication):
    authentication = make_authentication()

    response = admin_client.get(admin_change_url(authentication).replace("change/", "sign-in/"))

    assert response.status_code == 405
    assert not AuthorizationRequest.objects.exists()


def test_unknown_tenant_on_save_is_a_clear_message(admin_client, fake_microsoft):
    response = admin_client.post(
        "/admin/authentications/authentication/add/",
        add_form_data(fake_microsoft, tenant_id="nosuchtenant.onmicrosoft.com"),
        follow=True,
    )

    assertContains(response, "Microsoft does not know the directory")
    assert not AuthorizationRequest.objects.exists()


def test_a_domain_tenant_works(admin_client, fake_microsoft, sign_in):
    response = admin_client.post(
        "/admin/authentications/authentication/add/",
        add_form_data(fake_microsoft, tenant_id="contoso.onmicrosoft.com"),
    )

    assert sign_in(admin_client, response).status_code == 303
    assert Authentication.objects.get().status == Authentication.Status.CONNECTED
