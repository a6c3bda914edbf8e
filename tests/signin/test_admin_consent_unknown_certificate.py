"""An administrator consents, but Entra does not know the certificate the app signs with
(AADSTS700027): waiting never helps, so neither page says to wait; both name the certificate's
thumbprint and who must upload it where. Only a consent still on its way is told to wait."""

from urllib.parse import urlsplit

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections import link_tokens
from authentications.connections.models import Authentication, Event
from tests.fakes.admin_consent import FABRIKAM_TENANT_ID, consent_at_microsoft
from tests.fakes.entra import error_body
from tests.helpers import admin_change_url, fresh, key_pair, use_certificate

pytestmark = pytest.mark.django_db

SERVICE = Authentication.Kind.SERVICE_TO_SERVICE


@pytest.fixture
def customer(make_authentication, fake_microsoft):
    """A service-to-service connection signing with a certificate nobody uploaded to Entra."""
    authentication = make_authentication(
        kind=SERVICE,
        tenant_id=FABRIKAM_TENANT_ID,
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
    certificate = use_certificate(fake_microsoft, authentication, key_pair(), uploaded=False)
    return fresh(authentication), certificate


def consent_through_the_link(fake, authentication):
    browser = Client()
    url, _ = link_tokens.admin_consent_url(authentication)
    response = browser.post(urlsplit(url).path)
    path, params = consent_at_microsoft(fake, response["Location"])
    return browser.get(path, params)


def test_the_administrator_is_told_who_must_upload_which_certificate(customer, fake_microsoft):
    authentication, certificate = customer
    events = Event.objects.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).count()

    page = consent_through_the_link(fake_microsoft, authentication)

    assertContains(page, "not registered on the app", status_code=400)
    assertContains(page, certificate.thumbprint_sha1, status_code=400)
    assertContains(page, "the app&#x27;s owner must upload", status_code=400)
    assertContains(page, "Certificates &amp; secrets", status_code=400)
    assertContains(page, "AADSTS700027", status_code=400)
    assertNotContains(page, "Wait a few minutes", status_code=400)
    assertNotContains(page, "few minutes", status_code=400)
    stored = fresh(authentication)
    assert not stored.access_token
    assert stored.status != Authentication.Status.CONNECTED
    assert Event.objects.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).count() == events


def test_staff_are_told_the_certificate_is_not_registered_not_to_wait(
    admin_client, customer, fake_microsoft
):
    authentication, certificate = customer
    start = admin_change_url(authentication).replace("change/", "admin-consent/")
    response = admin_client.post(start)
    path, params = consent_at_microsoft(fake_microsoft, response["Location"])

    page = admin_client.get(path, params)

    assertContains(page, "not registered on the app", status_code=400)
    assertContains(page, f"SHA-1 thumbprint {certificate.thumbprint_sha1}", status_code=400)
    assertContains(page, "The app&#x27;s owner must upload it", status_code=400)
    assertNotContains(page, "few minutes", status_code=400)
    assert "few minutes" not in fresh(authentication).last_error


def test_once_the_owner_uploads_it_the_same_link_works(customer, fake_microsoft):
    authentication, certificate = customer
    consent_through_the_link(fake_microsoft, authentication)
    fake_microsoft.entra.upload_certificate(certificate.certificate_pem)

    page = consent_through_the_link(fake_microsoft, fresh(authentication))

    assert page.status_code == 303
    assert fresh(authentication).status == Authentication.Status.CONNECTED


def test_a_refused_client_secret_after_consent_is_not_told_to_wait(
    fabrikam, fake_microsoft, settings
):
    fabrikam.client_secret = "not the secret Entra has"
    fabrikam.save(update_fields=["client_secret"])

    page = consent_through_the_link(fake_microsoft, fresh(fabrikam))

    assertContains(page, "client secret", status_code=400)
    assertContains(page, "add a new client secret", status_code=400)
    assertNotContains(page, "few minutes", status_code=400)


def test_a_consent_still_on_its_way_is_told_to_wait(fabrikam, fake_microsoft):
    body = error_body(
        "invalid_client", 7000229, "The client application is missing service principal."
    )
    fake_microsoft.entra.fail_next_token_request(("json", body, 400))

    page = consent_through_the_link(fake_microsoft, fabrikam)

    assertContains(page, "Consent not in effect yet", status_code=400)
    assertContains(page, "Wait a few minutes", status_code=400)
