"""Staff test a connection and pick the BC environment from the admin."""

import pytest
from django.contrib.auth.models import Permission, User

from authentications.connections.models import Authentication
from tests.helpers import admin_change_url, change_form_data

pytestmark = pytest.mark.django_db


def check_url(authentication):
    return admin_change_url(authentication).replace("change/", "test-connection/")


def environments_url(authentication):
    return admin_change_url(authentication).replace("change/", "environments/")


def test_change_page_shows_the_test_connection_button(admin_client, tokens_planted):
    page = admin_client.get(admin_change_url(tokens_planted)).content.decode()

    assert f'formaction="{check_url(tokens_planted)}"' in page
    assert "Test connection" in page
    assert environments_url(tokens_planted) in page


def test_test_connection_lists_the_companies(admin_client, tokens_planted):
    response = admin_client.post(
        check_url(tokens_planted), change_form_data(tokens_planted), follow=True
    )

    assert response.redirect_chain[-1][0] == admin_change_url(tokens_planted)
    page = response.content.decode()
    assert "Connected: 3 companies (CRONUS USA, Inc., CRONUS Canada, Inc., My Company)" in page
    assert tokens_planted.access_token not in page


def test_many_companies_are_shortened(admin_client, tokens_planted, fake_microsoft):
    from tests.fakes.bc import _Company

    fake_microsoft.bc.companies.append(_Company(3, "Fourth Co", 0))

    page = admin_client.post(check_url(tokens_planted), follow=True).content.decode()

    assert "Connected: 4 companies (CRONUS USA, Inc., CRONUS Canada, Inc., My Company, …)" in page


def test_test_connection_explains_a_bc_refusal_in_plain_words(
    admin_client, tokens_planted, fake_microsoft, caplog
):
    fake_microsoft.bc.unlicensed_users.add("jane@contoso.com")

    page = admin_client.post(check_url(tokens_planted), follow=True).content.decode()

    assert "The user has no Business Central license." in page
    assert "Authentication_InvalidCredentials" in page
    tokens_planted.refresh_from_db()
    for secret in (tokens_planted.access_token, tokens_planted.refresh_token):
        assert secret not in page
        assert secret not in caplog.text


def test_test_connection_without_a_token_says_what_is_missing(admin_client, make_authentication):
    authentication = make_authentication()

    response = admin_client.post(check_url(authentication), follow=True)

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1 and messages[0].startswith(f"“{authentication}”: ")
    assert "Connected" not in messages[0]


def test_test_connection_refuses_get(admin_client, tokens_planted):
    assert admin_client.get(check_url(tokens_planted)).status_code == 405


def test_test_connection_needs_the_change_permission(client, tokens_planted):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_authentication"))
    client.force_login(viewer)

    assert client.post(check_url(tokens_planted)).status_code == 403
    assert client.get(environments_url(tokens_planted)).status_code == 403


def test_list_action_tests_each_selected_connection(
    admin_client, tokens_planted, make_authentication, fake_microsoft
):
    broken = make_authentication()

    response = admin_client.post(
        "/admin/authentications/authentication/",
        {"action": "test_connection_action", "_selected_action": [tokens_planted.pk, broken.pk]},
        follow=True,
    )

    messages = {str(m) for m in response.context["messages"]}
    assert (
        f"“{tokens_planted}”: Connected: 3 companies (CRONUS USA, Inc., CRONUS Canada, Inc., "
        "My Company)" in messages
    )
    assert any(m.startswith(f"“{broken}”: ") and "Connected" not in m for m in messages)


def test_after_sign_in_the_change_page_offers_environments_and_companies(
    admin_client, fake_microsoft, sign_in, make_authentication
):
    authentication = make_authentication()
    response = admin_client.post(admin_change_url(authentication).replace("change/", "sign-in/"))
    answer = sign_in(admin_client, response)

    page = admin_client.get(answer["Location"]).content.decode()

    assert "Access token received" in page
    assert "Business Central environments" in page
    assert 'value="Production"' in page and 'value="Sandbox"' in page
    assert "CRONUS USA, Inc., CRONUS Canada, Inc., My Company" in page


def test_environments_page_lists_and_picks_an_environment(admin_client, tokens_planted):
    page = admin_client.get(environments_url(tokens_planted)).content.decode()
    assert "Sandbox" in page and "CRONUS Canada, Inc." in page

    response = admin_client.post(environments_url(tokens_planted), {"bc_environment": "Sandbox"})

    assert response.status_code == 302
    tokens_planted.refresh_from_db()
    assert tokens_planted.base_url.endswith("/Sandbox/api/v2.0")
    page = admin_client.get(response["Location"]).content.decode()
    assert "Business Central URL set to the Sandbox environment" in page


def test_an_environment_the_user_does_not_reach_is_refused(admin_client, tokens_planted):
    before = tokens_planted.base_url

    response = admin_client.post(
        environments_url(tokens_planted), {"bc_environment": "../../evil"}, follow=True
    )

    assert "is not an environment this user reaches" in response.content.decode()
    assert Authentication.objects.get(pk=tokens_planted.pk).base_url == before
