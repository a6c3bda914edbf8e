"""A BC user who is not a Django user follows the emailed link and grants access."""

import logging
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.test import Client
from pytest_django.asserts import assertContains

from authentications.connections import link_tokens
from authentications.connections.models import Authentication, AuthorizationRequest, Event
from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import admin_change_url, state_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def person():
    """The person who got the email: a browser with no Django login."""
    return Client()


def landing_path(authentication):
    url, _ = link_tokens.authorization_url(authentication)
    return urlsplit(url).path


def assert_public(page, *secrets):
    """Nothing secret, no token and no way into the admin on a page meant for anyone."""
    content = page.content.decode()
    for secret in (CLIENT_SECRET, *secrets):
        assert secret not in content
    assert "/admin" not in content
    assert "fake-at-" not in content and "fake-rt-" not in content
    assert "fake-code-" not in content
    assert "<script" not in content.lower()
    assert "admin/css" not in content
    assert "no-store" in page["Cache-Control"]


def start(person, authentication):
    return person.post(landing_path(authentication))


# --- the landing page ---------------------------------------------------------------------


def test_the_landing_page_explains_and_changes_nothing(person, make_authentication, settings):
    settings.SITE_NAME = "Contoso Shop"
    authentication = make_authentication(name="BC production")
    nonce = authentication.link_nonce

    page = person.get(landing_path(authentication))

    content = page.content.decode()
    assert page.status_code == 200
    assert "Contoso Shop" in content
    assert "BC production" in content
    assert "Production" in content  # The BC environment from the URL.
    assert "You</strong> will be impersonated" in content
    assert "your own Business Central permissions" in content
    assert "Link expires" in content
    assert "Sign in with Microsoft" in content
    assert 'name="viewport"' in content
    assert page["Referrer-Policy"] == "same-origin"
    assert_public(page, nonce)
    assert not AuthorizationRequest.objects.exists()
    assert not Event.objects.exists()
    authentication.refresh_from_db()
    assert authentication.link_nonce == nonce


def test_a_link_scanner_s_head_request_changes_nothing(person, make_authentication):
    authentication = make_authentication()

    response = person.head(landing_path(authentication))

    assert response.status_code == 200
    assert not AuthorizationRequest.objects.exists()
    assert not Event.objects.exists()


def test_the_landing_page_names_the_expected_user(person, make_authentication):
    authentication = make_authentication(expected_user="jane@contoso.com")

    content = person.get(landing_path(authentication)).content.decode()

    assert "Sign in as" in content and "jane@contoso.com" in content


def test_the_button_starts_a_sign_in_tied_to_the_authentication(
    person, make_authentication, fake_microsoft
):
    authentication = make_authentication(expected_user="john@contoso.com")

    response = start(person, authentication)

    assert response.status_code == 302
    assert response["Location"].startswith(fake_microsoft.url)
    assert parse_qs(urlsplit(response["Location"]).query)["login_hint"] == ["john@contoso.com"]
    assert response["Referrer-Policy"] == "no-referrer"
    pending = AuthorizationRequest.objects.get(state=state_of(response))
    assert pending.authentication == authentication
    assert pending.started_via == AuthorizationRequest.Via.LINK
    assert pending.started_by is None
    assert pending.link_nonce == authentication.link_nonce
    assert any(name.startswith("bc_signin_") for name in response.cookies)


def test_the_button_is_csrf_protected(make_authentication):
    authentication = make_authentication()
    browser = Client(enforce_csrf_checks=True)

    forged = browser.post(landing_path(authentication))

    assert forged.status_code == 403
    assert not AuthorizationRequest.objects.exists()
    page = browser.get(landing_path(authentication))
    token = page.context["csrf_token"]
    assert (
        browser.post(landing_path(authentication), {"csrfmiddlewaretoken": token}).status_code
        == 302
    )


# --- the round trip -----------------------------------------------------------------------


def test_round_trip_as_an_anonymous_person_grants_access(
    person, make_authentication, sign_in, settings, caplog
):
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]
    caplog.set_level(logging.DEBUG)
    authentication = make_authentication()
    path = landing_path(authentication)

    assert person.get(path).status_code == 200
    answer = sign_in(person, person.post(path))

    assert answer.status_code == 303
    assert answer["Location"] == "/authentications/granted/"
    done = person.get(answer["Location"])
    assertContains(done, "Access granted — you can close this window")
    authentication.refresh_from_db()
    assert authentication.status == Authentication.Status.CONNECTED
    assert authentication.access_token.startswith("fake-at-")
    assert authentication.refresh_token.startswith("fake-rt-")
    assert authentication.granted_by_upn == "jane@contoso.com"
    assert authentication.granted_by_name == "Jane Doe"
    assert authentication.granted_via == Authentication.GrantedVia.LINK
    assert_public(done, authentication.access_token, authentication.refresh_token)
    assert done["Referrer-Policy"] == "no-referrer"
    for secret in (CLIENT_SECRET, authentication.access_token, authentication.refresh_token):
        assert secret not in caplog.text
    (email,) = mail.outbox
    assert email.to == ["ops@example.com"]
    assert "Jane Doe (jane@contoso.com)" in email.body
    assert "Authorization URL" in email.body
    assert admin_change_url(authentication) in email.body
    html = email.alternatives[0][0]
    assert "Jane Doe (jane@contoso.com)" in html
    assert authentication.access_token not in email.body + html


def test_staff_see_who_granted_access_through_the_link(
    person, admin_client, make_authentication, sign_in
):
    authentication = make_authentication()
    sign_in(person, start(person, authentication))

    page = admin_client.get(admin_change_url(authentication)).content.decode()

    assert "Jane Doe (jane@contoso.com) via Authorization URL on " in page
    assert "Access granted by Jane Doe (jane@contoso.com) via Authorization URL." in page


def test_the_access_granted_email_cannot_break_the_grant(
    person, make_authentication, sign_in, settings, caplog
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]
    authentication = make_authentication()

    answer = sign_in(person, start(person, authentication))

    assert answer.status_code == 303
    assert "Could not send the access-granted email" in caplog.text
    authentication.refresh_from_db()
    assert authentication.status == Authentication.Status.CONNECTED


def test_the_expected_user_may_grant(person, make_authentication, sign_in):
    authentication = make_authentication(expected_user="John@Contoso.com")

    answer = sign_in(person, start(person, authentication), username="john@contoso.com")

    assert answer.status_code == 303
    authentication.refresh_from_db()
    assert authentication.granted_by_upn == "john@contoso.com"


def test_another_account_is_refused_and_the_link_stays_usable(person, make_authentication, sign_in):
    authentication = make_authentication(expected_user="john@contoso.com")
    path = landing_path(authentication)

    answer = sign_in(person, person.post(path), username="jane@contoso.com")

    content = answer.content.decode()
    assert answer.status_code == 400
    assert "Signed in with another account" in content
    assert "john@contoso.com" in content and "jane@contoso.com" in content
    assert_public(answer)
    authentication.refresh_from_db()
    assert authentication.access_token == "" and authentication.refresh_token == ""
    assert authentication.status == Authentication.Status.NOT_CONNECTED
    assert authentication.events.filter(kind=Event.Kind.SIGN_IN_FAILED).exists()
    retry = sign_in(person, person.post(path), username="john@contoso.com")
    assert retry.status_code == 303


def test_a_spent_link_asks_for_a_new_one(person, make_authentication, sign_in):
    authentication = make_authentication()
    path = landing_path(authentication)
    sign_in(person, person.post(path))
    requests_before = AuthorizationRequest.objects.count()

    again = person.get(path)
    pressed = person.post(path)

    assertContains(again, "already used to grant access", status_code=410)
    assertContains(again, "Ask the person who sent it to you for a new link", status_code=410)
    assert pressed.status_code == 410
    assert AuthorizationRequest.objects.count() == requests_before
    assert_public(again)


def test_a_link_revoked_while_signing_in_grants_nothing(person, make_authentication, sign_in):
    authentication = make_authentication()
    response = start(person, authentication)
    link_tokens.revoke_links(authentication, actor="admin", reason="Regenerated")

    answer = sign_in(person, response)

    assertContains(answer, "This link no longer works", status_code=400)
    assertContains(answer, "Ask the sender for a new link", status_code=400)
    authentication.refresh_from_db()
    assert authentication.access_token == ""


# --- bad input ----------------------------------------------------------------------------


def test_a_tampered_link_is_a_friendly_404(person, make_authentication):
    path = landing_path(make_authentication())

    for bad in (path[:-5] + "xxxx/", "/authentications/authorize/garbage/"):
        for method in (person.get, person.post):
            page = method(bad)
            assertContains(
                page, "Ask the person who sent it to you for a new link", status_code=404
            )
            assert page["Referrer-Policy"] == "no-referrer"
            assert_public(page)
    assert not AuthorizationRequest.objects.exists()


def test_an_expired_link_is_gone(person, make_authentication, settings):
    authentication = make_authentication()
    path = landing_path(authentication)
    settings.BC_LINK_MAX_AGE_DAYS = -1

    page = person.get(path)

    assertContains(page, "This link has expired", status_code=410)
    assert person.post(path).status_code == 410
    assert not AuthorizationRequest.objects.exists()


def test_a_regenerated_link_is_gone(person, make_authentication):
    authentication = make_authentication()
    path = landing_path(authentication)
    link_tokens.revoke_links(authentication, actor="admin", reason="Regenerated")

    page = person.post(path)

    assertContains(page, "withdrawn", status_code=410)
    assert not AuthorizationRequest.objects.exists()


def test_service_to_service_and_deleted_authentications_are_404(person, make_authentication):
    authentication = make_authentication()
    path = landing_path(authentication)
    Authentication.objects.filter(pk=authentication.pk).update(
        kind=Authentication.Kind.SERVICE_TO_SERVICE
    )
    assert person.get(path).status_code == 404

    authentication.delete()
    assert person.get(path).status_code == 404
    assert person.post(path).status_code == 404


def test_cancelling_at_microsoft_says_so_in_plain_words(person, make_authentication, sign_in):
    authentication = make_authentication()

    answer = sign_in(person, start(person, authentication), accept=False)

    content = answer.content.decode()
    assert answer.status_code == 400
    assert "Sign-in cancelled" in content
    assert "Nothing was changed" in content
    assert "tell the sender" in content
    assert "AADSTS65004" in content
    assert_public(answer)


@pytest.mark.parametrize(
    ("error", "description", "headline"),
    [
        (
            "invalid_request",
            "AADSTS650052: The app needs access to a service that your organization has not "
            "subscribed to or enabled.",
            "Business Central is not available for this account",
        ),
        (
            "consent_required",
            "AADSTS65001: The user or administrator has not consented to use the application.",
            "An administrator must approve this app",
        ),
        (
            "access_denied",
            "AADSTS50105: The signed in user is not assigned to a role for the application.",
            "Your account is not allowed to use this app",
        ),
    ],
    ids=["no-business-central", "admin-consent", "not-assigned"],
)
def test_microsoft_refusals_are_explained_with_what_to_tell_the_sender(
    person, make_authentication, error, description, headline
):
    authentication = make_authentication()
    response = start(person, authentication)

    answer = person.post(
        "/authentications/callback/",
        {"state": state_of(response), "error": error, "error_description": description},
    )

    content = answer.content.decode()
    assert answer.status_code == 400
    assert headline in content
    assert "Tell the sender" in content
    assert_public(answer)
    authentication.refresh_from_db()
    assert authentication.access_token == ""


def test_microsoft_unreachable_on_the_button_is_a_page_not_a_500(
    person, make_authentication, fake_microsoft
):
    authentication = make_authentication()
    path = landing_path(authentication)
    fake_microsoft.stop()

    page = person.post(path)

    assertContains(page, "Microsoft is not answering", status_code=503)
    assert_public(page)
    assert not AuthorizationRequest.objects.exists()


# --- who may grant: UPN, e-mail or object ID; guests ---------------------------------------

GUEST_UPN = "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"


@pytest.fixture
def guest(fake_microsoft):
    """A guest of the directory: their UPN there is #EXT#, their ID token their home address."""
    return fake_microsoft.entra.add_guest("ann@fabrikam.com", "Ann Guest")


@pytest.mark.parametrize("expected_user", [GUEST_UPN, "Ann@Fabrikam.com", "object_id"])
def test_a_guest_may_grant_when_expected_by_upn_address_or_object_id(
    person, make_authentication, sign_in, guest, expected_user
):
    if expected_user == "object_id":
        expected_user = guest.oid
    authentication = make_authentication(expected_user=expected_user)

    answer = sign_in(person, start(person, authentication), username="ann@fabrikam.com")

    assert answer.status_code == 303
    authentication.refresh_from_db()
    assert authentication.status == Authentication.Status.CONNECTED


@pytest.mark.parametrize("expected_user", [GUEST_UPN, "object_id"])
def test_another_account_is_refused_whichever_way_the_expected_user_is_given(
    person, make_authentication, sign_in, guest, expected_user
):
    if expected_user == "object_id":
        expected_user = guest.oid
    authentication = make_authentication(expected_user=expected_user)

    answer = sign_in(person, start(person, authentication), username="jane@contoso.com")

    content = answer.content.decode()
    assert answer.status_code == 400
    assert "Signed in with another account" in content
    if expected_user == GUEST_UPN:  # The address the guest types, not the #EXT# UPN.
        assert "Sign in as ann@fabrikam.com" in content
    authentication.refresh_from_db()
    assert authentication.access_token == ""


@pytest.mark.parametrize(
    ("expected_user", "hint"),
    [
        ("john@contoso.com", "john@contoso.com"),
        (GUEST_UPN, "ann@fabrikam.com"),  # A guest signs in with their home address.
        ("3fa85f64-5717-4562-b3fc-2c963f66afa6", None),  # An object ID is no login name.
    ],
)
def test_the_login_hint_is_an_address_the_person_can_sign_in_with(
    person, make_authentication, expected_user, hint
):
    authentication = make_authentication(expected_user=expected_user)

    response = start(person, authentication)

    query = parse_qs(urlsplit(response["Location"]).query)
    assert query.get("login_hint") == ([hint] if hint else None)
    page = person.get(landing_path(authentication)).content.decode()
    assert ("Sign in as" in page) == bool(hint)
    assert hint is None or hint in page


def test_the_expected_user_help_says_how_to_name_a_guest(admin_client, fake_microsoft):
    page = admin_client.get("/admin/authentications/authentication/add/").content.decode()

    assert "object ID" in page and "#EXT#" in page
