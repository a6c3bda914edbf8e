"""Whatever changes a connection fences out the writes that started before it.

Disconnect, a new app registration, BC URL or type, and "Use this environment" revoke the
Authorization URLs, and a refresh or sign-in already under way then stores nothing; an
admin Save writes only the fields its form shows, so it never undoes a refresh.
"""

import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from pytest_django.asserts import assertContains

from authentications.connections import link_tokens, policies, tokens
from authentications.connections.models import Authentication, AuthorizationRequest, Event
from authentications.signin import flows
from tests.helpers import (
    admin_change_url,
    change_form_data,
    expiring,
    fresh,
    plant_tokens,
    sibling_acts_during_the_token_request,
)

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/authentications/authentication/"


@contextmanager
def meanwhile(act):
    """Run `act` once, just before this thread next writes an authentication row.

    As if another worker committed between this request's reads and its write, which
    PostgreSQL allows. `act` runs on this thread's connection, inside the request's
    transaction (on SQLite no other connection could write then: the request holds the
    write lock), so its writes are what the request's UPDATE finds, as a commit would be.
    """
    fired = False

    def before_write(execute, sql, params, many, context):
        nonlocal fired
        if not fired and sql.startswith('UPDATE "authentications_authentication" '):
            fired = True
            act()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(before_write):
        yield
    assert fired, "the request never wrote the authentication"


@contextmanager
def another_worker_acts_before_the_grant_is_stored(act):
    """Run `act` on another thread, once this thread has claimed and checked its sign-in.

    It runs just before this thread's first write after the claim: the moment between
    every check and the transaction that stores (its BEGIN on SQLite, which takes the
    write lock; its UPDATE on PostgreSQL, which starts it).
    """
    seen = {"claimed": False, "fired": False}
    failures = []

    def in_another_thread():
        try:
            act()
        except Exception as err:  # Re-raised on this thread, which fails the test.
            failures.append(err)
        finally:
            connection.close()

    def before_write(execute, sql, params, many, context):
        if seen["claimed"] and not seen["fired"] and not sql.startswith("SELECT"):
            seen["fired"] = True
            worker = threading.Thread(target=in_another_thread)
            worker.start()
            worker.join()
            if failures:
                raise failures[0]
        if sql.startswith('UPDATE "authentications_authorizationrequest" '):
            seen["claimed"] = True
        return execute(sql, params, many, context)

    with connection.execute_wrapper(before_write):
        yield
    assert seen["fired"], "the sign-in never got as far as storing"


def disconnect_in_admin(client, authentication):
    return client.post(LIST_URL, {"action": "disconnect", "_selected_action": [authentication.pk]})


def events(authentication, kind):
    return Event.objects.filter(authentication_id=authentication.pk, kind=kind).count()


# --- a refresh that was at Microsoft during the change ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_refresh_at_microsoft_during_disconnect_does_not_reconnect(
    admin_client, signed_in, fake_microsoft, monkeypatch
):
    expiring(signed_in, seconds=-1)
    sibling_acts_during_the_token_request(
        fake_microsoft, monkeypatch, lambda: disconnect_in_admin(admin_client, signed_in)
    )

    with pytest.raises(tokens.TokenError) as caught:
        tokens.refresh(signed_in, needed=policies.before_use())

    assert caught.value.transient
    assert caught.value.code == "connection_changed"
    stored = fresh(signed_in)
    assert (stored.access_token, stored.refresh_token) == ("", "")
    assert stored.status == Authentication.Status.NOT_CONNECTED
    assert stored.lease_id == "" and stored.lease_until is None
    assert events(signed_in, Event.Kind.TOKEN_REFRESHED) == 0
    with pytest.raises(tokens.TokenError) as afterwards:
        tokens.get_access_token(signed_in)
    assert afterwards.value.code == "not_connected"


@pytest.mark.django_db(transaction=True)
def test_a_refresh_at_microsoft_while_the_app_registration_changes_stores_nothing(
    admin_client, signed_in, fake_microsoft, monkeypatch
):
    expiring(signed_in, seconds=-1)
    sibling_acts_during_the_token_request(
        fake_microsoft,
        monkeypatch,
        lambda: admin_client.post(
            admin_change_url(signed_in),
            change_form_data(signed_in, client_secret="a-new-secret-value", _save="1"),
        ),
    )

    with pytest.raises(tokens.TokenError) as caught:
        tokens.refresh(signed_in, needed=policies.before_use())

    assert caught.value.transient
    stored = fresh(signed_in)
    assert stored.client_secret == "a-new-secret-value"
    assert stored.access_token == signed_in.access_token  # As the change left it.
    assert stored.refresh_token == signed_in.refresh_token
    assert stored.lease_id == ""
    assert events(signed_in, Event.Kind.TOKEN_REFRESHED) == 0
    assert events(signed_in, Event.Kind.LINK_REVOKED) == 1


# --- a sign-in that was under way during the change --------------------------------------


def test_an_admin_sign_in_started_before_a_disconnect_grants_nothing(
    admin_client, signed_in, sign_in
):
    started = admin_client.post(admin_change_url(signed_in).replace("change/", "sign-in/"))
    disconnect_in_admin(admin_client, signed_in)

    answer = sign_in(admin_client, started)

    assertContains(answer, "changed while you were signing in", status_code=400)
    stored = fresh(signed_in)
    assert (stored.access_token, stored.refresh_token) == ("", "")
    assert stored.status == Authentication.Status.NOT_CONNECTED
    assert AuthorizationRequest.objects.first().outcome == AuthorizationRequest.Outcome.FAILED


def landing_path(authentication):
    return urlsplit(link_tokens.authorization_url(authentication).url).path


def start_from_link(person, authentication, fake_microsoft, *, username):
    """Open the link, press the button and consent: Microsoft's answer, not yet posted."""
    response = person.post(landing_path(authentication))
    callback_url, fields = fake_microsoft.sign_in(response["Location"], username=username)
    return urlsplit(callback_url).path, fields


@pytest.mark.django_db(transaction=True)
def test_one_link_used_twice_at_once_grants_exactly_once(make_authentication, fake_microsoft):
    authentication = make_authentication()
    jane, john = Client(), Client()
    _, jane_fields = start_from_link(
        jane, authentication, fake_microsoft, username="jane@contoso.com"
    )
    callback, john_fields = start_from_link(
        john, authentication, fake_microsoft, username="john@contoso.com"
    )
    jane_cookies = {name: morsel.value for name, morsel in jane.cookies.items()}

    with another_worker_acts_before_the_grant_is_stored(
        lambda: flows.complete_sign_in(jane_fields, jane_cookies)
    ):
        answer = john.post(callback, john_fields)

    assertContains(answer, "This link no longer works", status_code=400)
    granted = AuthorizationRequest.objects.filter(outcome=AuthorizationRequest.Outcome.GRANTED)
    assert granted.count() == 1
    assert events(authentication, Event.Kind.SIGN_IN_GRANTED) == 1
    stored = fresh(authentication)
    assert stored.granted_by_upn == "jane@contoso.com"
    assert stored.status == Authentication.Status.CONNECTED


# --- "Use this environment" --------------------------------------------------------------


def test_use_this_environment_revokes_links(admin_client, make_authentication, fake_microsoft):
    authentication = plant_tokens(fake_microsoft, make_authentication())
    old_link = landing_path(authentication)
    nonce = authentication.link_nonce

    response = admin_client.post(
        admin_change_url(authentication).replace("change/", "environments/"),
        {"bc_environment": "Sandbox"},
    )

    assert response.status_code == 302
    stored = fresh(authentication)
    assert stored.base_url.endswith("/Sandbox/api/v2.0")
    assert stored.link_nonce != nonce
    revoked = stored.events.get(kind=Event.Kind.LINK_REVOKED)
    assert revoked.actor == "admin" and "Sandbox" in revoked.detail
    assert Client().get(old_link).status_code == 410
    assert stored.access_token == authentication.access_token  # Still connected.


def test_choosing_the_environment_already_set_changes_nothing(
    admin_client, make_authentication, fake_microsoft
):
    authentication = plant_tokens(fake_microsoft, make_authentication())
    nonce = authentication.link_nonce

    admin_client.post(
        admin_change_url(authentication).replace("change/", "environments/"),
        {"bc_environment": "Production"},
    )

    assert fresh(authentication).link_nonce == nonce
    assert events(authentication, Event.Kind.LINK_REVOKED) == 0


# --- admin Save ----------------------------------------------------------------------------


def test_an_admin_save_keeps_the_refresh_token_a_refresh_stored_meanwhile(
    admin_client, signed_in, fake_microsoft
):
    def refresh_elsewhere():
        tokens.refresh(signed_in.pk, needed=policies.ALWAYS)

    with meanwhile(refresh_elsewhere):
        response = admin_client.post(
            admin_change_url(signed_in),
            change_form_data(signed_in, name="Renamed", _save="Save and close"),
        )

    assert response.status_code == 302
    stored = fresh(signed_in)
    assert stored.name == "Renamed"
    assert stored.refresh_token != signed_in.refresh_token
    assert fake_microsoft.entra.refresh_tokens[stored.refresh_token]["used"] is False
    assert tokens.refresh(stored, needed=policies.ALWAYS).refreshed  # Still alive.


def test_a_new_type_with_a_valid_token_still_goes_to_microsoft(
    admin_client, make_authentication, fake_microsoft
):
    service = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    tokens.refresh(service, needed=policies.ALWAYS)  # A valid app-only token is stored.

    response = admin_client.post(
        admin_change_url(service),
        change_form_data(service, kind=Authentication.Kind.USER_IMPERSONATION, _continue="Save"),
    )

    assert response.status_code == 302
    assert response["Location"].startswith(fake_microsoft.url)
    assert events(service, Event.Kind.LINK_REVOKED) == 1


def test_a_new_type_with_a_valid_user_token_acquires_an_app_token(admin_client, signed_in):
    response = admin_client.post(
        admin_change_url(signed_in),
        change_form_data(signed_in, kind=Authentication.Kind.SERVICE_TO_SERVICE, _save="Save"),
    )

    assert response.status_code == 302
    stored = fresh(signed_in)
    assert stored.granted_via == Authentication.GrantedVia.CLIENT_CREDENTIALS
    assert stored.access_token != signed_in.access_token
    assert stored.refresh_token == ""
    assert events(signed_in, Event.Kind.TOKEN_ACQUIRED) == 1
