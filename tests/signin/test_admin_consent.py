"""An Entra administrator of a customer's tenant onboards it through the Admin consent URL."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections import diagnostics, link_tokens, oauth, tokens
from authentications.connections.models import Authentication, AuthorizationRequest, Event
from authentications.signin import flows
from tests.fakes.admin_consent import (
    CONTOSO_ADMIN,
    FABRIKAM_TENANT_ID,
    FABRIKAM_USER,
    consent_at_microsoft,
)
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID
from tests.helpers import add_form_data, admin_change_url, fresh, key_pair, use_certificate

pytestmark = pytest.mark.django_db

SERVICE = Authentication.Kind.SERVICE_TO_SERVICE
GRANTED = f"/authentications/granted/consent/?client_id={CLIENT_ID}"


@pytest.fixture
def administrator():
    """The browser of the customer's administrator: no Django login."""
    return Client()


def consent_path(authentication):
    url, _ = link_tokens.admin_consent_url(authentication)
    return urlsplit(url).path


def press_grant(browser, authentication):
    """Open the link and press "Grant admin consent with Microsoft": off to Microsoft."""
    response = browser.post(consent_path(authentication))
    assert response.status_code == 302, response
    return response


def answer_at_microsoft(browser, fake, response, **how):
    """Consent (or not) on Microsoft's page and follow its redirect back to the callback."""
    path, params = consent_at_microsoft(fake, response["Location"], **how)
    return browser.get(path, params)


# --- the link and its landing page --------------------------------------------------------


def test_the_landing_page_says_what_is_asked_and_changes_nothing(administrator, fabrikam):
    page = administrator.get(consent_path(fabrikam))

    assertContains(page, "Grant admin consent with Microsoft")
    assertContains(page, "API.ReadWrite.All")
    assertContains(page, "Dynamics 365 Business Central")
    assertContains(page, CLIENT_ID)
    assertContains(page, FABRIKAM_TENANT_ID)
    assertContains(page, "Microsoft Entra Applications")
    assertNotContains(page, CLIENT_SECRET)
    assertNotContains(page, "/admin")
    assert page["Referrer-Policy"] == "same-origin"
    assert not AuthorizationRequest.objects.exists()
    assert not Event.objects.exists()


def test_a_consent_link_and_a_sign_in_link_are_not_interchangeable(make_authentication):
    service = make_authentication(kind=SERVICE)
    user = make_authentication()

    with pytest.raises(ValueError):
        link_tokens.authorization_url(service)
    with pytest.raises(ValueError):
        link_tokens.admin_consent_url(user)
    token = urlsplit(link_tokens.admin_consent_url(service).url).path.split("/")[-2]
    Authentication.objects.filter(pk=service.pk).update(kind=user.kind)

    with pytest.raises(link_tokens.LinkError) as refused:
        link_tokens.authentication_for_link(token)
    assert refused.value.code == link_tokens.LinkError.NOT_FOUND


def test_pressing_the_button_sends_the_administrator_to_entra_admin_consent(
    administrator, fabrikam, fake_microsoft
):
    response = press_grant(administrator, fabrikam)

    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == fake_microsoft.url
    assert location.path == f"/{FABRIKAM_TENANT_ID}/v2.0/adminconsent"
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    pending = AuthorizationRequest.objects.get()
    assert query == {
        "client_id": CLIENT_ID,
        "scope": f"{fake_microsoft.url}/.default",
        "redirect_uri": oauth.redirect_uri(),
        "state": pending.state,
    }
    assert pending.purpose == AuthorizationRequest.Purpose.ADMIN_CONSENT
    assert pending.started_via == AuthorizationRequest.Via.LINK
    assert response["Referrer-Policy"] == "no-referrer"
    assert any(name.startswith("bc_signin_") for name in response.cookies)


# --- granted --------------------------------------------------------------------------------


def test_before_consent_the_customer_tenant_issues_no_token(fabrikam):
    with pytest.raises(tokens.TokenError):
        tokens.get_access_token(fabrikam)

    assert "700016" in fresh(fabrikam).last_error_code


def test_an_administrator_consents_for_a_known_tenant(
    administrator, fabrikam, fake_microsoft, notify_list
):
    page = answer_at_microsoft(administrator, fake_microsoft, press_grant(administrator, fabrikam))

    assert page.status_code == 303
    page = administrator.get(page["Location"])
    assertContains(page, "Admin consent granted, access token received")
    assertContains(page, "Microsoft Entra Applications")
    assertContains(page, f"Enter the Client ID <code>{CLIENT_ID}</code>")
    stored = fresh(fabrikam)
    assert stored.status == Authentication.Status.CONNECTED
    assert stored.tenant_id == FABRIKAM_TENANT_ID
    assert oauth.access_token_tenant(stored.access_token) == FABRIKAM_TENANT_ID
    assert fake_microsoft.entra.token_info(stored.access_token)["tid"] == FABRIKAM_TENANT_ID
    event = stored.events.get(kind=Event.Kind.ADMIN_CONSENT_GRANTED)
    assert event.actor == f"An administrator of tenant {FABRIKAM_TENANT_ID}"
    assert FABRIKAM_TENANT_ID in event.detail and "via the Admin consent URL" in event.detail
    [email] = mail.outbox
    assert email.to == notify_list
    assert "Admin consent granted for Fabrikam" in email.subject
    assert FABRIKAM_TENANT_ID in email.body and "Microsoft Entra Applications" in email.body
    # From now on the tenant gives tokens on its own: service-to-service works.
    assert tokens.refresh(stored, needed=lambda row: True).refreshed


def test_a_refusal_just_before_the_consent_does_not_hide_it(
    administrator, fabrikam, fake_microsoft
):
    """MSAL repeats a 400 for 60 seconds: Save's refusal must not answer the proof."""
    with pytest.raises(tokens.TokenError):
        tokens.refresh(fabrikam, needed=lambda row: True, by_person=True)
    asked = fake_microsoft.entra.count("client_credentials")

    page = answer_at_microsoft(administrator, fake_microsoft, press_grant(administrator, fabrikam))

    assert page["Location"] == GRANTED
    assert fake_microsoft.entra.count("client_credentials") == asked + 1
    assert fresh(fabrikam).status == Authentication.Status.CONNECTED


def test_an_empty_tenant_asks_organizations_and_stores_the_consenting_one(
    administrator, make_authentication, fake_microsoft
):
    customer = make_authentication(
        kind=SERVICE,
        tenant_id="",
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
    response = press_grant(administrator, customer)
    assert urlsplit(response["Location"]).path == "/organizations/v2.0/adminconsent"

    page = answer_at_microsoft(administrator, fake_microsoft, response)

    assert page["Location"] == GRANTED
    stored = fresh(customer)
    assert stored.tenant_id == FABRIKAM_TENANT_ID
    assert stored.status == Authentication.Status.CONNECTED
    assert stored.has_credentials()


def test_a_connection_signing_with_a_certificate_is_onboarded_the_same_way(
    administrator, make_authentication, fake_microsoft
):
    customer = make_authentication(
        kind=SERVICE,
        tenant_id="",
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
    use_certificate(fake_microsoft, customer, key_pair())
    assert not fresh(customer).client_secret
    assert link_tokens.link_available(fresh(customer), link_tokens.ADMIN_CONSENT)

    response = press_grant(administrator, fresh(customer))
    page = answer_at_microsoft(administrator, fake_microsoft, response)

    assert page["Location"] == GRANTED
    stored = fresh(customer)
    assert stored.tenant_id == FABRIKAM_TENANT_ID
    assert stored.status == Authentication.Status.CONNECTED


def test_the_granted_page_shows_only_a_client_id_that_is_one(administrator):
    page = administrator.get("/authentications/granted/consent/", {"client_id": "<b>x</b>"})

    assertContains(page, "Enter the Client ID of the app")
    assertNotContains(page, "<b>x</b>")


def test_staff_who_administer_the_tenant_consent_from_the_admin(
    admin_client, fabrikam, fake_microsoft
):
    page = admin_client.get(admin_change_url(fabrikam))
    assertContains(page, "Grant admin consent with Microsoft")
    url = admin_change_url(fabrikam).replace("change/", "admin-consent/")

    response = admin_client.post(url)
    back = answer_at_microsoft(admin_client, fake_microsoft, response)

    assert back["Location"].startswith(admin_change_url(fabrikam) + "?signin=")
    page = admin_client.get(back["Location"])
    assertContains(page, "Admin consent granted, access token received")
    assert fresh(fabrikam).status == Authentication.Status.CONNECTED


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "title", "code"),
    [
        ({"accept": False}, "Admin consent cancelled", "AADSTS65004"),
        ({"username": FABRIKAM_USER}, "An administrator role is needed", "AADSTS90094"),
        ({"username": CONTOSO_ADMIN}, "Wrong organisation", "AADSTS50020"),
    ],
    ids=["declined", "not-an-administrator", "administrator-of-another-tenant"],
)
def test_refusals_are_plain_words_with_the_code_and_change_nothing(
    administrator, fabrikam, fake_microsoft, how, title, code
):
    page = answer_at_microsoft(
        administrator, fake_microsoft, press_grant(administrator, fabrikam), **how
    )

    assertContains(page, title, status_code=400)
    assertContains(page, code, status_code=400)
    stored = fresh(fabrikam)
    assert stored.status == Authentication.Status.NOT_CONNECTED
    assert not stored.access_token
    assert stored.link_nonce == fabrikam.link_nonce  # The link still works: try again.
    assert stored.events.filter(kind=Event.Kind.SIGN_IN_FAILED).count() == 1
    assert not fake_microsoft.entra.admin_consents.has_consent(CLIENT_ID, FABRIKAM_TENANT_ID)


def test_the_tenant_in_the_answer_is_not_trusted_without_a_token(
    administrator, fabrikam, fake_microsoft
):
    """Someone who started a consent types the success answer themselves: Entra then gives
    no token for that tenant, so nothing is stored."""
    state = parse_qs(urlsplit(press_grant(administrator, fabrikam)["Location"]).query)["state"]

    page = administrator.get(
        "/authentications/callback/",
        {"admin_consent": "True", "tenant": FABRIKAM_TENANT_ID, "state": state[0]},
    )

    assertContains(page, "Consent not in effect yet", status_code=400)
    assertContains(page, "AADSTS700016", status_code=400)
    stored = fresh(fabrikam)
    assert not stored.access_token and stored.status == Authentication.Status.NOT_CONNECTED


def test_an_answer_naming_another_tenant_than_the_configured_one_is_refused(
    administrator, fabrikam, fake_microsoft
):
    state = parse_qs(urlsplit(press_grant(administrator, fabrikam)["Location"]).query)["state"]

    page = administrator.get(
        "/authentications/callback/",
        {"admin_consent": "True", "tenant": TENANT_ID, "state": state[0]},
    )

    assertContains(page, "Wrong organisation", status_code=400)
    assert fake_microsoft.entra.count("client_credentials") == 0
    assert not fresh(fabrikam).access_token


def test_a_token_naming_another_directory_is_refused(
    administrator, fabrikam, fake_microsoft, monkeypatch
):
    issue = fake_microsoft.entra._access_token
    monkeypatch.setattr(
        fake_microsoft.entra,
        "_access_token",
        lambda app, tid, user, now: issue(app, TENANT_ID, user, now),
    )

    page = answer_at_microsoft(administrator, fake_microsoft, press_grant(administrator, fabrikam))

    assertContains(page, "Wrong organisation", status_code=400)
    assert not fresh(fabrikam).access_token


@pytest.mark.parametrize(
    "answer",
    [
        {"admin_consent": "True", "tenant": "../../evil"},
        {"admin_consent": "True"},
        {"admin_consent": "False", "tenant": FABRIKAM_TENANT_ID},
        {"tenant": FABRIKAM_TENANT_ID},
    ],
    ids=["tenant-not-a-guid", "no-tenant", "not-granted", "no-admin-consent"],
)
def test_a_malformed_answer_is_a_clear_400(administrator, fabrikam, fake_microsoft, answer):
    state = parse_qs(urlsplit(press_grant(administrator, fabrikam)["Location"]).query)["state"]

    page = administrator.get("/authentications/callback/", {**answer, "state": state[0]})

    assert page.status_code == 400
    assert fake_microsoft.entra.count("client_credentials") == 0
    assert not fresh(fabrikam).access_token


def test_microsoft_down_after_consent_keeps_the_link_for_a_retry(
    administrator, fabrikam, fake_microsoft
):
    response = press_grant(administrator, fabrikam)
    fake_microsoft.entra.fail_next_token_request(("status", 503))

    page = answer_at_microsoft(administrator, fake_microsoft, response)

    assertContains(page, "Microsoft is not answering", status_code=503)
    assert not fresh(fabrikam).access_token
    oauth.clear_http_cache()  # MSAL repeats a 5xx for 5 seconds; minutes later it is gone.
    again = answer_at_microsoft(administrator, fake_microsoft, press_grant(administrator, fabrikam))
    assert again["Location"] == GRANTED


# --- single use, browser-bound, revocable ---------------------------------------------------


def test_the_link_and_the_answer_work_once(administrator, fabrikam, fake_microsoft):
    link = consent_path(fabrikam)
    response = administrator.post(link)
    path, params = consent_at_microsoft(fake_microsoft, response["Location"])
    assert administrator.get(path, params).status_code == 303

    replayed = administrator.get(path, params)
    reopened = administrator.get(link)

    assertContains(replayed, "already completed", status_code=400)
    assertContains(reopened, "already used to grant access", status_code=410)
    assert fresh(fabrikam).events.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).count() == 1


def test_the_answer_in_another_browser_is_refused(administrator, fabrikam, fake_microsoft):
    response = press_grant(administrator, fabrikam)
    path, params = consent_at_microsoft(fake_microsoft, response["Location"])

    page = Client().get(path, params)

    assertContains(page, "different browser", status_code=400)
    assert not fresh(fabrikam).access_token


def test_a_revoked_link_opens_nothing_and_a_consent_under_way_stores_nothing(
    administrator, admin_client, fabrikam, fake_microsoft
):
    old = consent_path(fabrikam)
    response = press_grant(administrator, fabrikam)

    regenerated = admin_client.post(
        admin_change_url(fabrikam).replace("change/", "link/regenerate/"), follow=True
    )
    page = answer_at_microsoft(administrator, fake_microsoft, response)

    assertContains(regenerated, "A new Admin consent URL was created")
    assertContains(page, "This link no longer works", status_code=400)
    assert administrator.get(old).status_code == 410
    assert not fresh(fabrikam).access_token


# --- the admin and the email ----------------------------------------------------------------


def test_the_change_page_shows_the_admin_consent_url_to_copy(admin_client, fabrikam):
    page = admin_client.get(admin_change_url(fabrikam))

    assertContains(page, 'id="bc-admin-consent-url"')
    assertContains(page, "Email Admin consent URL")
    assertContains(page, "Regenerate link")
    assertNotContains(page, 'id="bc-authorization-url"')
    assertNotContains(page, CLIENT_SECRET)


def test_the_admin_consent_url_is_emailed_like_the_authorization_url(
    admin_client, fabrikam, settings
):
    settings.SITE_NAME = "Contoso Shop"
    url = admin_change_url(fabrikam).replace("change/", "link/email/")

    response = admin_client.post(url, {"recipients": "it@fabrikam.com"}, follow=True)

    assertContains(response, "Admin consent URL emailed to it@fabrikam.com")
    [email] = mail.outbox
    assert email.subject == "Please grant admin consent to Contoso Shop for Business Central"
    assert consent_path(fabrikam).rsplit(":", 2)[0] in email.body.replace("\n", "")
    assert "API.ReadWrite.All" in email.body and "Microsoft Entra Applications" in email.body
    assert CLIENT_SECRET not in email.body
    event = fabrikam.events.get(kind=Event.Kind.LINK_EMAILED)
    assert event.detail.startswith("Admin consent URL emailed to it@fabrikam.com")


def test_service_to_service_may_leave_the_tenant_empty_user_impersonation_may_not(
    admin_client, fake_microsoft
):
    form = add_form_data(
        fake_microsoft,
        name="Customer",
        tenant_id="",
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
    url = "/admin/authentications/authentication/add/"

    refused = admin_client.post(url, {**form, "kind": "user_impersonation"})
    saved = admin_client.post(url, {**form, "kind": "service_to_service"}, follow=True)

    assertContains(refused, "Only a service-to-service authentication may leave it empty")
    customer = Authentication.objects.get()
    assert customer.tenant_id == "" and customer.kind == SERVICE
    assert fake_microsoft.entra.count("client_credentials") == 0  # No tenant to ask yet.
    assertContains(saved, "bc-admin-consent-url")
    assertContains(saved, "organizations")


# --- what remains in Business Central -------------------------------------------------------


def test_test_connection_names_the_missing_entra_applications_card(
    administrator, admin_client, fabrikam, fake_microsoft
):
    answer_at_microsoft(administrator, fake_microsoft, press_grant(administrator, fabrikam))

    response = admin_client.post(
        admin_change_url(fabrikam).replace("change/", "test-connection/"), follow=True
    )

    assertContains(response, "Microsoft Entra Applications card for the client ID")
    assertContains(response, "missing or not enabled in Business Central")
    fake_microsoft.bc.entra_applications.add((FABRIKAM_TENANT_ID, CLIENT_ID))
    check = diagnostics.check_connection(fresh(fabrikam))
    assert check.ok, check.message


def test_a_refused_user_token_is_not_blamed_on_the_entra_applications_card(
    signed_in, fake_microsoft
):
    fake_microsoft.bc.unlicensed_users.add("jane@contoso.com")

    check = diagnostics.check_connection(signed_in)

    assert not check.ok
    assert "Entra Applications" not in check.message


# --- the fake Microsoft's consent is strict -------------------------------------------------


def test_the_fake_issues_client_credentials_only_where_an_administrator_consented(
    fake_microsoft, make_authentication
):
    home = make_authentication(kind=SERVICE)
    assert tokens.refresh(home, needed=lambda row: True).refreshed  # Home tenant: consented.
    customer = make_authentication(kind=SERVICE, tenant_id=FABRIKAM_TENANT_ID)
    with pytest.raises(oauth.TokenRefreshError) as refused:
        oauth.acquire_for_client(customer)
    assert refused.value.aadsts == 700016

    fake_microsoft.entra.admin_consents.consent(CLIENT_ID, FABRIKAM_TENANT_ID)

    token = oauth.acquire_for_client_in(customer, FABRIKAM_TENANT_ID).access_token
    assert oauth.access_token_tenant(token) == FABRIKAM_TENANT_ID


def test_the_fake_consent_page_refuses_an_unregistered_redirect_uri(fake_microsoft, fabrikam):
    start = flows.start_admin_consent(fabrikam, via=AuthorizationRequest.Via.ADMIN)
    wrong = start.authorize_url.replace("callback", "elsewhere")

    with pytest.raises(AssertionError, match="AADSTS50011"):
        consent_at_microsoft(fake_microsoft, wrong)
    assert fake_microsoft.entra.admin_consents.pages_served == 0


# --- attacks and edges ----------------------------------------------------------------------


def test_a_domain_tenant_is_proven_by_the_token_and_kept_as_typed(
    administrator, make_authentication, fake_microsoft
):
    contoso = make_authentication(kind=SERVICE, tenant_id="contoso.onmicrosoft.com")
    response = press_grant(administrator, contoso)
    assert urlsplit(response["Location"]).path == "/contoso.onmicrosoft.com/v2.0/adminconsent"

    page = answer_at_microsoft(administrator, fake_microsoft, response, username=CONTOSO_ADMIN)

    assert page["Location"] == GRANTED
    stored = fresh(contoso)
    assert stored.tenant_id == "contoso.onmicrosoft.com"
    assert oauth.access_token_tenant(stored.access_token) == TENANT_ID


def test_a_sign_in_s_state_does_not_take_an_admin_consent_answer(
    administrator, make_authentication, fake_microsoft
):
    user = make_authentication()
    start = flows.start_sign_in(user, via=AuthorizationRequest.Via.LINK)
    administrator.cookies[start.cookie_name] = start.cookie_value

    page = administrator.get(
        "/authentications/callback/",
        {"admin_consent": "True", "tenant": TENANT_ID, "state": start.request.state},
    )

    assert page.status_code == 400
    assert not fresh(user).access_token


def test_two_consents_from_one_link_grant_once(administrator, fabrikam, fake_microsoft):
    second_browser = Client()
    link = consent_path(fabrikam)
    first = administrator.post(link)
    second = second_browser.post(link)

    granted = answer_at_microsoft(administrator, fake_microsoft, first)
    refused = answer_at_microsoft(second_browser, fake_microsoft, second)

    assert granted["Location"] == GRANTED
    assertContains(refused, "This link no longer works", status_code=400)
    assert fresh(fabrikam).events.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).count() == 1


def test_staff_without_the_authorize_permission_cannot_start_a_consent(client, fabrikam):
    staffer = User.objects.create_user("staffer", "s@example.com", "pw", is_staff=True)
    staffer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_authentication", "change_authentication"])
    )
    client.force_login(staffer)

    page = client.get(admin_change_url(fabrikam))
    refused = client.post(admin_change_url(fabrikam).replace("change/", "admin-consent/"))

    assertNotContains(page, "bc-admin-consent-url")
    assertNotContains(page, "Grant admin consent with Microsoft")
    assert refused.status_code == 403
    assert not AuthorizationRequest.objects.exists()
