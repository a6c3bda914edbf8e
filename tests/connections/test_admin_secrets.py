"""No admin page shows a stored secret, whatever the staff user may see or do."""

import itertools

import pytest
from django.contrib.auth.models import Permission
from django.views.debug import SafeExceptionReporterFilter

from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import admin_change_url, change_form_data

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/authentications/authentication/"
PERMISSIONS = (
    "view_authentication",
    "change_authentication",
    "authorize_authentication",
    "view_token",
)
EVERY_COMBINATION = [
    combination
    for size in range(len(PERMISSIONS) + 1)
    for combination in itertools.combinations(PERMISSIONS, size)
]
CUSTOM_VIEWS = (
    "sign-in/",
    "refresh/",
    "link/regenerate/",
    "link/email/",
    "test-connection/",
    "environments/",
)


def staff_user(django_user_model, codenames):
    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def every_page(client, authentication):
    """Each admin page for `authentication` (GET), and the change and email forms re-shown
    with an error after a secret was typed."""
    change = admin_change_url(authentication)
    urls = [
        LIST_URL,
        f"{LIST_URL}add/",
        change,
        change.replace("change/", "history/"),
        change.replace("change/", "delete/"),
        *(change.replace("change/", view) for view in CUSTOM_VIEWS),
    ]
    pages = {url: client.get(url) for url in urls}
    typed = change_form_data(authentication, client_id="not-a-guid", client_secret=CLIENT_SECRET)
    pages["change POST"] = client.post(change, typed)
    pages["email POST"] = client.post(
        change.replace("change/", "link/email/"), {"recipients": "not-an-address"}
    )
    return pages


@pytest.mark.parametrize(
    "permissions", EVERY_COMBINATION, ids=lambda codenames: "+".join(codenames) or "none"
)
def test_no_admin_page_renders_a_stored_secret(client, django_user_model, signed_in, permissions):
    client.force_login(staff_user(django_user_model, permissions))

    pages = every_page(client, signed_in)

    for url, page in pages.items():
        assert page.status_code < 500, url
        content = page.content.decode()
        for secret in (CLIENT_SECRET, signed_in.access_token, signed_in.refresh_token):
            assert secret not in content, (url, permissions)
    if {"view_authentication", "change_authentication"} & set(permissions):
        change_page = pages[admin_change_url(signed_in)].content.decode()
        assert "Client secret stored" in change_page
        assert "BC production" in pages[LIST_URL].content.decode()


def test_view_only_staff_see_whether_a_secret_is_stored(
    client, django_user_model, make_authentication
):
    stored, missing = make_authentication(), make_authentication(client_secret="")
    client.force_login(staff_user(django_user_model, ["view_authentication"]))

    stored_page = client.get(admin_change_url(stored)).content.decode()
    missing_page = client.get(admin_change_url(missing)).content.decode()

    assert CLIENT_SECRET not in stored_page
    assert '<div class="readonly">stored</div>' in stored_page
    assert '<div class="readonly">not set</div>' in missing_page


@pytest.mark.parametrize("view", CUSTOM_VIEWS)
def test_a_secret_posted_to_an_object_view_stays_out_of_error_reports(
    admin_client, make_authentication, view
):
    """The change page's buttons post its whole form, a client secret just typed included:
    an error report for such a request hides it, as one for the change form's own does."""
    authentication = make_authentication()
    typed = change_form_data(authentication, client_secret="typed-then-a-button-pressed")

    response = admin_client.post(admin_change_url(authentication).replace("change/", view), typed)

    reported = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert reported["client_secret"] != "typed-then-a-button-pressed"
