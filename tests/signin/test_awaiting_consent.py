"""A service-to-service connection that lacks its tenant's admin consent says so.

Entra refuses its token (AADSTS700016, 7000229, 65001) when no administrator of the tenant
consented, or the consent was revoked: the needs-a-person email, the admin page and
"Refresh now" say that in plain words and point to the Admin consent URL, which the email
never carries itself (a link token goes out only when staff choose to send it).
"""

import pytest
from django.core import mail
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections import consent as consent_state
from authentications.connections import link_tokens, oauth, tokens
from authentications.connections.models import Authentication, Event
from tests.fakes.admin_consent import FABRIKAM_TENANT_ID, consent_at_microsoft
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, error_body
from tests.helpers import add_form_data, admin_change_url, change_form_data, fresh

pytestmark = pytest.mark.django_db

SERVICE = Authentication.Kind.SERVICE_TO_SERVICE
AWAITING = "Admin consent has not been granted yet: send the Admin consent URL"


def press_refresh_now(admin_client, authentication):
    url = admin_change_url(authentication).replace("change/", "refresh/")
    return admin_client.post(url, follow=True)


def link_tokens_in(text):
    return "/authentications/authorize/" in text


def test_refresh_now_before_any_consent_asks_for_the_admin_consent_url(
    admin_client, fabrikam, fake_microsoft, notify_list
):
    page = press_refresh_now(admin_client, fabrikam)

    assertContains(page, AWAITING)
    assertContains(page, f"no token in tenant {FABRIKAM_TENANT_ID}")
    assertNotContains(page, "app registration is incomplete")
    stored = fresh(fabrikam)
    assert stored.status == Authentication.Status.APP_MISSING
    assert stored.last_error_code == "AADSTS700016"
    assert stored.last_error.startswith(AWAITING)
    # The change page shows the reason and the link to send, side by side.
    change_page = admin_client.get(admin_change_url(fabrikam))
    assertContains(change_page, AWAITING)
    assertContains(change_page, "bc-admin-consent-url")


def test_the_email_says_consent_is_missing_and_carries_no_link(
    fabrikam, fake_microsoft, notify_list
):
    with pytest.raises(tokens.TokenError) as refused:
        tokens.get_access_token(fabrikam)

    assert refused.value.message.startswith(AWAITING)
    [email] = mail.outbox
    html = email.alternatives[0][0]
    for body in (email.body, html):
        assert "an administrator of the customer's tenant must grant this app admin consent" in (
            body
        )
        assert "Admin consent URL" in body and AWAITING in body
        assert notify_list and f"/admin/authentications/authentication/{fabrikam.pk}/" in body
        assert not link_tokens_in(body), "a fresh link token went out unasked"
        assert CLIENT_SECRET not in body
    assert "restore it from Deleted applications" not in email.body
    # Once, not on every attempt: the connection waits for a person.
    asked = fake_microsoft.entra.count("client_credentials")
    with pytest.raises(tokens.TokenError):
        tokens.get_access_token(fabrikam)
    assert fake_microsoft.entra.count("client_credentials") == asked
    assert len(mail.outbox) == 1


def test_a_revoked_consent_is_told_as_such_and_a_new_consent_mends_it(
    admin_client, make_authentication, fake_microsoft, notify_list, client
):
    """The customer's administrator removed the app from their tenant after onboarding."""
    consents = fake_microsoft.entra.admin_consents
    consents.consent(CLIENT_ID, FABRIKAM_TENANT_ID)
    customer = make_authentication(
        kind=SERVICE,
        tenant_id=FABRIKAM_TENANT_ID,
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
    tokens.get_access_token(customer)
    with consents.lock:
        consents.granted.discard((CLIENT_ID, FABRIKAM_TENANT_ID))
    Authentication.objects.filter(pk=customer.pk).update(access_token_expires_at=None)
    oauth.clear_http_cache()

    with pytest.raises(tokens.TokenError) as refused:
        tokens.get_access_token(customer)

    assert refused.value.message.startswith(AWAITING)
    assert "or the consent was revoked" in refused.value.message
    assert fresh(customer).access_token  # Kept: needs a person, but nothing is forgotten.
    [email] = mail.outbox
    assert "admin consent" in email.body and not link_tokens_in(email.body)
    # The administrator consents again through a fresh Admin consent URL: working again.
    url, _ = link_tokens.admin_consent_url(fresh(customer))
    response = client.post(url.removeprefix("http://testserver"))
    path, params = consent_at_microsoft(fake_microsoft, response["Location"])
    assert client.get(path, params).status_code == 303
    stored = fresh(customer)
    assert stored.status == Authentication.Status.CONNECTED and not stored.last_error


@pytest.mark.parametrize(
    ("error", "aadsts"),
    [("invalid_client", 7000229), ("consent_required", 65001)],
    ids=["missing-service-principal", "consent-required"],
)
def test_entra_s_other_consent_answers_are_told_the_same_way(
    fabrikam, fake_microsoft, notify_list, error, aadsts
):
    body = error_body(error, aadsts, "The client application is missing consent in the tenant.")
    fake_microsoft.entra.fail_next_token_request(("error", body, 400))

    with pytest.raises(tokens.TokenError) as refused:
        tokens.get_access_token(fabrikam)

    assert refused.value.message.startswith(AWAITING)
    assert refused.value.code == f"AADSTS{aadsts}"
    stored = fresh(fabrikam)
    # Not "client secret expired": the secret is fine, the tenant is what lacks consent.
    assert stored.status == Authentication.Status.APP_MISSING
    assert stored.events.filter(kind=Event.Kind.NEEDS_SIGN_IN).count() == 1
    assert "admin consent" in mail.outbox[0].body


def test_a_user_impersonation_refusal_keeps_its_own_words(make_authentication):
    user = make_authentication()
    err = oauth.explain(
        error_body("invalid_grant", 65001, "The user has not consented."), oauth.TokenRefreshError
    )

    assert consent_state.in_plain_words(user, err) is err


def test_a_wrong_secret_of_a_service_connection_is_not_blamed_on_consent(fabrikam, fake_microsoft):
    fake_microsoft.entra.admin_consents.consent(CLIENT_ID, FABRIKAM_TENANT_ID)
    Authentication.objects.filter(pk=fabrikam.pk).update(client_secret="not-the-secret")

    with pytest.raises(tokens.TokenError) as refused:
        tokens.get_access_token(fresh(fabrikam))

    assert not refused.value.message.startswith(AWAITING)
    assert fresh(fabrikam).status == Authentication.Status.SECRET_INVALID


def test_refresh_now_with_the_tenant_left_empty_asks_for_the_consent(
    admin_client, undecided_customer, fake_microsoft
):
    page = press_refresh_now(admin_client, undecided_customer)

    assertContains(page, AWAITING)
    assertNotContains(page, "app registration is incomplete")
    assert fake_microsoft.entra.count("client_credentials") == 0
    assert fresh(undecided_customer).status == Authentication.Status.NOT_CONNECTED


def test_saving_a_service_connection_without_a_tenant_says_consent_is_awaited(
    admin_client, fake_microsoft
):
    data = add_form_data(
        fake_microsoft,
        kind=SERVICE,
        tenant_id="",
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )

    page = admin_client.post("/admin/authentications/authentication/add/", data, follow=True)

    assertContains(page, AWAITING)
    assertContains(page, "bc-admin-consent-url")
    assert fake_microsoft.entra.count("client_credentials") == 0


def test_saving_a_change_to_a_consent_pending_connection_says_so(
    admin_client, undecided_customer, fake_microsoft
):
    data = change_form_data(undecided_customer, name="Undecided customer Ltd", _continue="Save")
    data["client_secret"] = "a-new-secret-value"

    page = admin_client.post(admin_change_url(undecided_customer), data, follow=True)

    assertContains(page, AWAITING)
    assert "a-new-secret-value" not in page.content.decode()


def test_an_incomplete_user_connection_still_says_it_is_incomplete(make_authentication):
    user = make_authentication(client_secret="")

    with pytest.raises(tokens.TokenError) as refused:
        tokens.refresh(user, needed=lambda row: True, by_person=True)

    assert "app registration is incomplete" in refused.value.message
