"""Staff test a connection and pick the BC environment from the admin."""

import pytest
from django.contrib.auth.models import Permission, User

from authentications.models import Authentication
from tests.helpers import admin_change_url, change_form_data, plant_tokens

pytestmark = pytest.mark.django_db


def check_url(authentication):
    return admin_change_url(authentication).replace("change/", "test-connection/")


def environments_url(authentication):
    return admin_change_url(authentication).replace("change/", "environments/")


@pytest.fixture
def connected(make_authentication, fake_microsoft):
    return plant_tokens(fake_microsoft, make_authentication())


def test_change_page_shows_the_test_connection_button(admin_client, connected):
    page = admin_client.get(admin_change_url(connected)).content.decode()

    assert f'formaction="{check_url(connected)}"' in page
    assert "Test connection" in page
    assert environments_url(connected) in page


def test_test_connection_lists_the_companies(admin_client, connected):
    response = admin_client.post(check_url(connected), change_form_data(connected), follow=True)

    assert response.redirect_chain[-1][0] == admin_change_url(connected)
    page = response.content.decode()
    assert "Connected: 3 companies (CRONUS USA, Inc., CRONUS Canada, Inc., My Company)" in page
    assert connected.access_token not in page


def test_many_companies_are_shortened(admin_client, connected, fake_microsoft):
    from tests.fakes.bc import _Company

    fake_microsoft.bc.companies.append(_Company(3, "Fourth Co", 0))

    page = admin_client.post(check_url(connected), follow=True).content.decode()

    assert "Connected: 4 companies (CRONUS USA, Inc., CRONUS Canada, Inc., My Company, …)" in page


def test_test_connection_explains_a_bc_refusal_in_plain_words(
    admin_client, connected, fake_microsoft, caplog
):
    fake_microsoft.bc.unlicensed_users.add("jane@contoso.com")

    page = admin_client.post(check_url(connected), follow=True).content.decode()

    assert "The user has no Business Central license." in page
    assert "Authentication_InvalidCredentials" in page
    connected.refresh_from_db()
    for secret in (connected.access_token, connected.refresh_token):
        assert secret not in page
        assert secret not in caplog.text


def test_test_connection_without_a_token_says_what_is_missing(admin_client, make_authentication):
    authentication = make_authentication()

    response = admin_client.post(check_url(authentication), follow=True)

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1 and messages[0].startswith(f"“{authentication}”: ")
    assert "Connected" not in messages[0]


def test_test_connection_refuses_get(admin_client, connected):
    assert admin_client.get(check_url(connected)).status_code == 405


def test_test_connection_needs_the_change_permission(client, connected):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_authentication"))
    client.force_login(viewer)

    assert client.post(check_url(connected)).status_code == 403
    assert client.get(environments_url(connected)).status_code == 403


def test_list_action_tests_each_selected_connection(
    admin_client, connected, make_authentication, fake_microsoft
):
    broken = make_authentication()

    response = admin_client.post(
        "/admin/authentications/authentication/",
        {"action": "test_connection_action", "_selected_action": [connected.pk, broken.pk]},
        follow=True,
    )

    messages = {str(m) for m in response.context["messages"]}
    assert (
        f"“{connected}”: Connected: 3 companies (CRONUS USA, Inc., CRONUS Canada, Inc., "
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


def test_environments_page_lists_and_picks_an_environment(admin_client, connected):
    page = admin_client.get(environments_url(connected)).content.decode()
    assert "Sandbox" in page and "CRONUS Canada, Inc." in page

    response = admin_client.post(environments_url(connected), {"bc_environment": "Sandbox"})

    assert response.status_code == 302
    connected.refresh_from_db()
    assert connected.base_url.endswith("/Sandbox/api/v2.0")
    page = admin_client.get(response["Location"]).content.decode()
    assert "Business Central URL set to the Sandbox environment" in page


def test_an_environment_the_user_does_not_reach_is_refused(admin_client, connected):
    before = connected.base_url

    response = admin_client.post(
        environments_url(connected), {"bc_environment": "../../evil"}, follow=True
    )

    assert "is not an environment this user reaches" in response.content.decode()
    assert Authentication.objects.get(pk=connected.pk).base_url == before
