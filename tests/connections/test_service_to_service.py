"""Service-to-service: no sign-in; Save acquires a token with client credentials."""

from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections import policies, tokens
from authentications.connections.models import Authentication, Event
from authentications.connections.tokens import TokenError, get_access_token
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET
from tests.helpers import add_form_data, admin_change_url, change_form_data

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/authentications/authentication/add/"
SERVICE = {"name": "BC service", "kind": "service_to_service"}


@pytest.fixture
def scopes_asked(fake_microsoft, monkeypatch):
    """The scope of every client-credentials request the fake Microsoft receives."""
    seen = []
    answer = fake_microsoft.entra.token

    def token(tenant, request):
        if request.form.get("grant_type") == "client_credentials":
            seen.append(request.form.get("scope"))
        return answer(tenant, request)

    monkeypatch.setattr(fake_microsoft.entra, "token", token)
    return seen


def test_save_acquires_a_token_and_stays_on_the_page(admin_client, fake_microsoft, scopes_asked):
    response = admin_client.post(ADD_URL, add_form_data(fake_microsoft, **SERVICE), follow=True)

    authentication = Authentication.objects.get(name="BC service")
    assert response.redirect_chain[-1][0] == admin_change_url(authentication)
    content = response.content.decode()
    assert "Access token received" in content
    assert authentication.status == Authentication.Status.CONNECTED
    assert authentication.access_token.startswith("fake-at-")
    assert authentication.refresh_token == ""
    assert authentication.granted_via == Authentication.GrantedVia.CLIENT_CREDENTIALS
    assert authentication.masked_access_token in content
    assert authentication.access_token not in content and CLIENT_SECRET not in content
    assert scopes_asked == [f"{fake_microsoft.url}/.default"]
    assert fake_microsoft.entra.count("authorization_code") == 0
    assert authentication.events.filter(kind=Event.Kind.TOKEN_ACQUIRED).count() == 1


def test_a_wrong_secret_shows_entras_error_and_stores_no_token(admin_client, fake_microsoft):
    response = admin_client.post(
        ADD_URL,
        add_form_data(fake_microsoft, **SERVICE, client_secret="the-secret-ID-not-its-Value"),
        follow=True,
    )

    authentication = Authentication.objects.get(name="BC service")
    assertContains(response, "The client secret is wrong or expired")
    assertContains(response, "AADSTS7000215")
    assertNotContains(response, "Access token received")
    assertNotContains(response, "the-secret-ID-not-its-Value")
    assert authentication.access_token == ""
    assert authentication.status == Authentication.Status.SECRET_INVALID


def test_saving_again_with_a_valid_token_does_not_ask_microsoft(
    admin_client, fake_microsoft, scopes_asked
):
    admin_client.post(ADD_URL, add_form_data(fake_microsoft, **SERVICE))
    authentication = Authentication.objects.get(name="BC service")

    admin_client.post(
        admin_change_url(authentication), {**change_form_data(authentication), "_continue": "1"}
    )

    assert len(scopes_asked) == 1


def test_get_access_token_reacquires_when_expired(make_authentication, fake_microsoft):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)

    first = get_access_token(authentication)
    assert get_access_token(authentication) == first  # Fresh: no second request.
    Authentication.objects.filter(pk=authentication.pk).update(
        access_token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    second = get_access_token(authentication)

    assert second != first
    assert fake_microsoft.entra.count("client_credentials") == 2
    assert Authentication.objects.get(pk=authentication.pk).refresh_token == ""
    assert fake_microsoft.entra.token_info(second)["user"] is None


def test_no_token_is_kept_in_msals_cache_between_operations(make_authentication, fake_microsoft):
    """A shared MSAL token cache would answer the second request from memory."""
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)

    tokens.refresh(authentication, needed=policies.ALWAYS)
    tokens.refresh(authentication, needed=policies.ALWAYS)

    assert fake_microsoft.entra.count("client_credentials") == 2


def test_an_expired_secret_is_reported_with_what_to_do(make_authentication, fake_microsoft):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    fake_microsoft.entra.apps[CLIENT_ID].secret_expired = True

    with pytest.raises(TokenError) as caught:
        get_access_token(authentication)

    assert caught.value.code == "AADSTS7000222"
    assert "Certificates & secrets" in caught.value.message
    assert Authentication.objects.get(pk=authentication.pk).status == "secret_invalid"
