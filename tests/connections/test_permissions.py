"""Least privilege: what staff may see and do depends on their permissions, server-side."""

import pytest
from django.contrib.auth.models import Permission

from authentications.connections.models import Authentication, AuthorizationRequest, Event
from tests.helpers import ROW_REFRESH_TOKEN, admin_change_url, change_form_data

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/authentications/authentication/"


@pytest.fixture
def staff_client(client, django_user_model):
    """A logged-in staff user holding exactly the named permissions."""

    def make(*codenames):
        user = django_user_model.objects.create_user(
            f"staff-{len(codenames)}-{'-'.join(codenames)}"[:150], password="pw", is_staff=True
        )
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client.force_login(user)
        return client

    return make


def test_view_only_staff_see_status_but_no_token_and_no_buttons(staff_client, connected_row):
    client = staff_client("view_authentication")

    page = client.get(admin_change_url(connected_row))

    content = page.content.decode()
    assert page.status_code == 200
    assert "Connected" in content
    assert "Sign in with Microsoft" not in content
    assert connected_row.masked_access_token not in content
    assert "Disconnect" not in client.get(LIST_URL).content.decode()


def test_view_only_staff_cannot_start_a_sign_in_by_forged_post(staff_client, connected_row):
    client = staff_client("view_authentication")

    response = client.post(admin_change_url(connected_row).replace("change/", "sign-in/"))

    assert response.status_code == 403
    assert not AuthorizationRequest.objects.exists()


def test_view_only_staff_cannot_change(staff_client, connected_row):
    client = staff_client("view_authentication")

    response = client.post(
        admin_change_url(connected_row), change_form_data(connected_row, name="x")
    )

    assert response.status_code == 403
    assert Authentication.objects.get(pk=connected_row.pk).name == connected_row.name


def test_view_only_staff_cannot_disconnect_by_forged_post(staff_client, connected_row):
    client = staff_client("view_authentication")

    client.post(LIST_URL, {"action": "disconnect", "_selected_action": [connected_row.pk]})

    assert Authentication.objects.get(pk=connected_row.pk).refresh_token == ROW_REFRESH_TOKEN


def test_changing_without_authorize_permission_saves_but_starts_no_sign_in(
    staff_client, connected_row
):
    client = staff_client("view_authentication", "change_authentication")

    response = client.post(
        admin_change_url(connected_row),
        change_form_data(connected_row, client_secret="a-new-secret", _continue="Save"),
    )

    assert response.status_code == 302
    assert response["Location"] == admin_change_url(connected_row)
    assert not AuthorizationRequest.objects.exists()


def test_view_token_permission_shows_the_masked_token(staff_client, connected_row):
    client = staff_client("view_authentication", "view_token")

    content = client.get(admin_change_url(connected_row)).content.decode()

    assert connected_row.masked_access_token in content
    assert connected_row.access_token not in content


def test_authorize_permission_allows_signing_in(staff_client, connected_row):
    client = staff_client("view_authentication", "authorize_authentication")

    page = client.get(admin_change_url(connected_row)).content.decode()
    response = client.post(admin_change_url(connected_row).replace("change/", "sign-in/"))

    assert "Sign in with Microsoft" in page
    assert response.status_code == 302
    assert AuthorizationRequest.objects.count() == 1


def test_non_staff_and_anonymous_reach_no_admin_page(client, django_user_model, connected_row):
    urls = [
        LIST_URL,
        admin_change_url(connected_row),
        admin_change_url(connected_row).replace("change/", "sign-in/"),
    ]
    for url in urls:
        assert client.get(url).status_code == 302
        assert client.post(url).status_code == 302
    user = django_user_model.objects.create_user("customer", password="pw")
    client.force_login(user)
    for url in urls:
        assert client.get(url)["Location"].startswith("/admin/login/")


def test_disconnect_deletes_tokens_revokes_links_and_explains_entra(admin_client, connected_row):
    nonce = connected_row.link_nonce

    response = admin_client.post(
        LIST_URL, {"action": "disconnect", "_selected_action": [connected_row.pk]}, follow=True
    )

    stored = Authentication.objects.get(pk=connected_row.pk)
    assert stored.access_token == "" and stored.refresh_token == ""
    assert stored.status == Authentication.Status.NOT_CONNECTED
    assert stored.link_nonce != nonce
    assert stored.events.filter(kind=Event.Kind.DISCONNECTED, actor="admin").exists()
    assert "Enterprise applications" in response.content.decode()
