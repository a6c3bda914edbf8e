"""Staff manage authentications in the admin; secrets stay write-only and encrypted."""

import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from pytest_django.asserts import assertContains

from authentications.connections.models import Authentication, Event
from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import add_form_data, admin_change_url, change_form_data

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/authentications/authentication/add/"
LIST_URL = "/admin/authentications/authentication/"
SANDBOX = {"name": "BC sandbox", "button": "_save"}
OBJECT_VIEWS = "sign-in refresh link/regenerate link/email test-connection environments".split()


def raw_row(authentication):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_secret, access_token, refresh_token FROM "
            "authentications_authentication WHERE id = %s",
            [authentication.pk],
        )
        return cursor.fetchone()


def test_secrets_and_tokens_are_encrypted_at_rest(make_authentication):
    authentication = make_authentication(access_token="at-plain-123", refresh_token="rt-plain-456")

    row = raw_row(authentication)

    stored = b"".join(bytes(value) for value in row)
    for plaintext in (CLIENT_SECRET, "at-plain-123", "rt-plain-456"):
        assert plaintext.encode() not in stored
    assert Authentication.objects.get(pk=authentication.pk).refresh_token == "rt-plain-456"


def test_the_pending_flow_is_encrypted_at_rest(admin_client, make_authentication):
    authentication = make_authentication()
    admin_client.post(admin_change_url(authentication).replace("change/", "sign-in/"))
    pending = authentication.authorization_requests.get()
    verifier = __import__("json").loads(pending.flow)["code_verifier"]

    with connection.cursor() as cursor:
        cursor.execute("SELECT flow FROM authentications_authorizationrequest")
        (raw,) = cursor.fetchone()

    assert verifier.encode() not in bytes(raw)


def test_add_page_shows_the_redirect_uri_and_entra_steps(admin_client, fake_microsoft, settings):
    page = admin_client.get(ADD_URL).content.decode()

    assert settings.PUBLIC_BASE_URL + "/authentications/callback/" in page
    assert 'data-copy-target="bc-redirect-uri"' in page
    assert "user_impersonation" in page
    assert "Save and close" in page


def test_add_and_list(admin_client, fake_microsoft):
    response = admin_client.post(ADD_URL, add_form_data(fake_microsoft, **SANDBOX))

    assert response.status_code == 302
    listing = admin_client.get(LIST_URL).content.decode()
    assert "BC sandbox" in listing
    assert 'class="bc-badge not_connected"' in listing
    assert (
        admin_client.get(LIST_URL, {"status__exact": "connected"})
        .content.decode()
        .count("BC sandbox")
        == 0
    )
    assert "BC sandbox" in admin_client.get(LIST_URL, {"q": "sandbox"}).content.decode()


def test_secret_is_required_when_none_is_stored(admin_client, fake_microsoft):
    response = admin_client.post(
        ADD_URL, add_form_data(fake_microsoft, **SANDBOX, client_secret="")
    )

    assertContains(response, "Enter the client secret Value copied from Entra.")
    assert not Authentication.objects.exists()


def test_secret_is_write_only_and_kept_when_blank(admin_client, make_authentication):
    authentication = make_authentication()

    page = admin_client.get(admin_change_url(authentication)).content.decode()
    response = admin_client.post(
        admin_change_url(authentication),
        change_form_data(authentication, name="Renamed", _save="Save and close"),
    )

    assert CLIENT_SECRET not in page
    assert "stored" in page
    assert response.status_code == 302
    authentication.refresh_from_db()
    assert authentication.name == "Renamed"
    assert authentication.client_secret == CLIENT_SECRET


def test_a_new_secret_replaces_the_stored_one(admin_client, make_authentication):
    authentication = make_authentication()

    admin_client.post(
        admin_change_url(authentication),
        change_form_data(authentication, client_secret="brand-new", _save="Save and close"),
    )

    authentication.refresh_from_db()
    assert authentication.client_secret == "brand-new"
    message = LogEntry.objects.get().get_change_message()
    assert "brand-new" not in message and CLIENT_SECRET not in message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("client_id", "not-a-guid", "Enter a GUID"),
        ("tenant_id", "#", "Directory (tenant) ID as a GUID"),
        ("tenant_id", "../etc", "Directory (tenant) ID as a GUID"),
        ("tenant_id", "?x=1", "Directory (tenant) ID as a GUID"),
        ("base_url", "http://api.businesscentral.dynamics.com/v2.0/x/y/api/v2.0", "https://"),
        ("base_url", "https://attacker.example/v2.0/x/y/api/v2.0", "not one of them"),
        ("base_url", "not a url", "Enter a valid URL"),
        ("name", "", "This field is required"),
    ],
)
def test_invalid_input_gets_a_clear_message_and_saves_nothing(
    admin_client, fake_microsoft, field, value, message
):
    response = admin_client.post(
        ADD_URL, add_form_data(fake_microsoft, **{**SANDBOX, field: value})
    )

    assertContains(response, message)
    assert not Authentication.objects.exists()


def test_base_url_may_use_an_allowed_extra_host(admin_client, fake_microsoft, settings):
    settings.BC_API_ALLOWED_HOSTS = ["bc.internal.example"]

    response = admin_client.post(
        ADD_URL,
        add_form_data(
            fake_microsoft, **SANDBOX, base_url="https://bc.internal.example/v2.0/t/e/api/v2.0"
        ),
    )

    assert response.status_code == 302


def test_a_duplicate_name_is_refused(admin_client, make_authentication, fake_microsoft):
    make_authentication(name="BC sandbox")

    response = admin_client.post(ADD_URL, add_form_data(fake_microsoft, **SANDBOX))

    assert "already exists" in response.content.decode()


def test_change_page_shows_masked_token_expiry_and_history(admin_client, make_authentication):
    authentication = make_authentication(
        access_token="eyJ0eXAiOiJKV1QiLCJub25jZSI6IkFCQyJ9.secretpart.signature-xyz123",
        refresh_token="refresh-secret-value-0123456789",
    )
    authentication.record(Event.Kind.SIGN_IN_STARTED, actor="admin", detail="from the admin")

    page = admin_client.get(admin_change_url(authentication)).content.decode()

    assert authentication.masked_access_token in page
    assert authentication.access_token not in page
    assert "refresh-secret-value" not in page
    assert "Sign-in started" in page and "from the admin" in page


def test_staff_without_permission_cannot_reach_the_admin(client, django_user_model):
    user = django_user_model.objects.create_user("clerk", password="pw-clerk-123")
    client.force_login(user)

    assert client.get(LIST_URL).status_code == 302


def test_secrets_never_reach_pages_or_logs(admin_client, make_authentication, caplog, sign_in):
    caplog.set_level(logging.DEBUG)
    authentication = make_authentication()
    response = admin_client.post(
        admin_change_url(authentication), change_form_data(authentication, _continue="Save")
    )
    answer = sign_in(admin_client, response)
    authentication.refresh_from_db()

    pages = [
        admin_client.get(answer["Location"]),
        admin_client.get(LIST_URL),
        admin_client.get(admin_change_url(authentication)),
        admin_client.get(admin_change_url(authentication).replace("change/", "history/")),
        admin_client.get(admin_change_url(authentication).replace("change/", "delete/")),
        admin_client.get(ADD_URL),
    ]
    text = "".join(page.content.decode() for page in pages) + caplog.text
    assert all(page.status_code == 200 for page in pages)
    for secret in (CLIENT_SECRET, authentication.access_token, authentication.refresh_token):
        assert secret not in text
    assert str(authentication) == authentication.name


@pytest.mark.parametrize("view", OBJECT_VIEWS)
def test_a_malformed_id_in_an_object_view_address_is_not_found(admin_client, view):
    """An address typed or cut short by hand is a 404, as for an unknown id: never a 500."""
    response = admin_client.post(f"{LIST_URL}not-a-number/{view}/")

    assert response.status_code == 404
