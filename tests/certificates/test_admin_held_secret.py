"""After a validation error the client secret typed is kept for the retry, never echoed into
the page: a one-time token in the form points at it, encrypted in the server-side session."""

import re

import pytest
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections import held_secrets
from authentications.connections.models import Authentication
from tests.helpers import add_form_data, admin_change_url, change_form_data, fresh

pytestmark = pytest.mark.django_db

ADD = "/admin/authentications/authentication/add/"
TYPED = "typed-Secret~value.1234567890"


def hold_token(response):
    found = re.search(rb'name="client_secret_hold" value="([^"]*)"', response.content)
    return found.group(1).decode() if found else ""


def test_the_add_page_keeps_the_typed_secret_without_showing_it(admin_client, fake_microsoft):
    data = add_form_data(fake_microsoft, client_secret=TYPED, base_url="not a url", button="_save")

    first = admin_client.post(ADD, data)

    assert first.status_code == 200
    assertNotContains(first, TYPED)
    assert TYPED not in str(admin_client.session.items())  # Encrypted in the session too.
    assertContains(first, "kept from your last try")
    token = hold_token(first)
    assert token
    retry = {**data, "client_secret": "", "client_secret_hold": token}
    retry["base_url"] = add_form_data(fake_microsoft)["base_url"]

    second = admin_client.post(ADD, retry)

    assert second.status_code == 302
    assert Authentication.objects.get(name="BC production").client_secret == TYPED


def test_the_token_works_once_and_only_in_its_session(admin_client, client, fake_microsoft):
    data = add_form_data(fake_microsoft, client_secret=TYPED, base_url="not a url", button="_save")
    token = hold_token(admin_client.post(ADD, data))
    retry = {**data, "client_secret": "", "client_secret_hold": token, "name": "Other"}

    from django.contrib.auth.models import User

    other = User.objects.create_superuser("other-admin", "o@example.com", "pw")
    client.force_login(other)
    elsewhere = client.post(ADD, retry)

    assertContains(elsewhere, "Enter the client secret Value copied from Entra.")
    assertNotContains(elsewhere, TYPED)


def test_an_old_token_has_expired(admin_client, fake_microsoft, monkeypatch):
    data = add_form_data(fake_microsoft, client_secret=TYPED, base_url="not a url", button="_save")
    token = hold_token(admin_client.post(ADD, data))
    monkeypatch.setattr(held_secrets, "TTL_SECONDS", -1)
    retry = {**data, "client_secret": "", "client_secret_hold": token}
    retry["base_url"] = add_form_data(fake_microsoft)["base_url"]

    response = admin_client.post(ADD, retry)

    assertContains(response, "Enter the client secret Value copied from Entra.")


def test_a_new_secret_typed_on_the_change_page_survives_an_error(admin_client, make_authentication):
    authentication = make_authentication()
    data = change_form_data(authentication, client_secret=TYPED, name="", _save="Save")
    first = admin_client.post(admin_change_url(authentication), data)
    assertNotContains(first, TYPED)

    retry = {**data, "name": authentication.name, "client_secret": ""}
    retry["client_secret_hold"] = hold_token(first)
    admin_client.post(admin_change_url(authentication), retry)

    assert fresh(authentication).client_secret == TYPED


def test_the_add_page_help_does_not_promise_to_keep_a_stored_secret(admin_client):
    page = admin_client.get(ADD)

    assertNotContains(page, "leave blank to keep the stored secret")
