"""Choosing the other credential (secret or certificate) on Save is a credential change:
it revokes every link, fences out writes under way and asks for a new token or sign-in."""

from urllib.parse import urlsplit

import pytest
from django.contrib.messages import get_messages

from authentications.certificates import flows
from authentications.connections import tokens
from authentications.connections.models import Authentication, Event
from tests.helpers import admin_change_url, change_form_data, fresh

pytestmark = pytest.mark.django_db


def certificate_known_to_entra(fake, authentication):
    """A current certificate Entra knows, while the authentication still uses its secret."""
    certificate = flows.generate(authentication, actor="test")
    fake.entra.upload_certificate(certificate.certificate_pem)
    return certificate


def test_switching_service_to_service_to_its_certificate_acquires_a_new_token(
    admin_client, make_authentication, fake_microsoft
):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    before = tokens.refresh(authentication, needed=lambda row: True, by_person=True).authentication
    certificate_known_to_entra(fake_microsoft, before)
    data = change_form_data(before, credential_type="certificate", _continue="Save")

    response = admin_client.post(admin_change_url(before), data)

    after = fresh(before)
    assert response.status_code == 302
    assert after.uses_certificate and after.status == Authentication.Status.CONNECTED
    assert after.access_token and after.access_token != before.access_token
    assert after.generation == before.generation + 1 and after.link_nonce != before.link_nonce
    assert Event.objects.filter(authentication=after, kind=Event.Kind.LINK_REVOKED).exists()


def test_switching_back_to_the_secret_acquires_a_token_again(
    admin_client, make_authentication, fake_microsoft
):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    certificate_known_to_entra(fake_microsoft, authentication)
    authentication.credential_type = Authentication.Credential.CERTIFICATE
    authentication.save(update_fields=["credential_type"])
    before = tokens.refresh(authentication, needed=lambda row: True, by_person=True).authentication
    data = change_form_data(before, credential_type="secret", _continue="Save")

    admin_client.post(admin_change_url(before), data)

    after = fresh(before)
    assert not after.uses_certificate and after.client_secret == before.client_secret
    assert after.access_token and after.access_token != before.access_token
    assert after.generation == before.generation + 1


def test_switching_a_signed_in_user_grant_to_its_certificate_signs_in_again(
    admin_client, signed_in, fake_microsoft
):
    certificate_known_to_entra(fake_microsoft, signed_in)
    data = change_form_data(signed_in, credential_type="certificate", _continue="Save")

    response = admin_client.post(admin_change_url(signed_in), data)

    after = fresh(signed_in)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).netloc == urlsplit(fake_microsoft.url).netloc
    assert after.uses_certificate and after.generation == signed_in.generation + 1
    assert after.link_nonce != signed_in.link_nonce


def test_saving_with_the_same_credential_keeps_the_grant(admin_client, signed_in):
    data = change_form_data(signed_in, credential_type="secret", _continue="Save")

    response = admin_client.post(admin_change_url(signed_in), data)

    after = fresh(signed_in)
    assert response.status_code == 302 and "/admin/" in response["Location"]
    assert after.generation == signed_in.generation and after.link_nonce == signed_in.link_nonce
    assert [str(m) for m in get_messages(response.wsgi_request)]
