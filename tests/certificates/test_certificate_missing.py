"""Certificate chosen before there is one: Save says a certificate is needed first and
offers Generate/Upload; no sign-in (or admin consent) starts without a usable credential,
whichever kind is chosen, so nobody is sent through Microsoft to read about a wrong secret."""

import pytest
from pytest_django.asserts import assertContains

from authentications.connections.models import Authentication, AuthorizationRequest
from authentications.connections.oauth import ConsentError
from authentications.signin import flows
from tests.fakes.entra import TENANT_ID
from tests.helpers import add_form_data, admin_change_url, change_form_data, fresh

pytestmark = pytest.mark.django_db


def test_adding_a_certificate_connection_asks_for_the_certificate_first(
    admin_client, fake_microsoft
):
    data = add_form_data(fake_microsoft, credential_type="certificate", client_secret="")

    response = admin_client.post("/admin/authentications/authentication/add/", data)

    added = Authentication.objects.get(name="BC production")
    assert response.status_code == 302
    assert response["Location"] == admin_change_url(added)
    assert not AuthorizationRequest.objects.exists()
    page = admin_client.get(response["Location"])
    assertContains(page, "signs with a certificate and has none yet")
    assertContains(page, "Generate certificate")
    assertContains(
        page, 'href="' + admin_change_url(added).replace("change/", "certificates/upload/")
    )


def test_switching_to_a_certificate_before_uploading_one_starts_no_sign_in(
    admin_client, make_authentication
):
    authentication = make_authentication()
    data = change_form_data(authentication, credential_type="certificate", _continue="Save")

    response = admin_client.post(admin_change_url(authentication), data)

    assert response["Location"] == admin_change_url(authentication)
    assert not AuthorizationRequest.objects.exists()
    assert fresh(authentication).uses_certificate
    page = admin_client.get(response["Location"])
    assertContains(page, "no sign-in was started")


def test_service_to_service_is_told_too(admin_client, make_authentication):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    data = change_form_data(authentication, credential_type="certificate", _continue="Save")

    response = admin_client.post(admin_change_url(authentication), data, follow=True)

    assertContains(response, "signs with a certificate and has none yet")


@pytest.mark.parametrize("credential", ["certificate", "secret"])
def test_no_sign_in_starts_without_a_usable_credential(make_authentication, credential):
    authentication = make_authentication(client_secret="", credential_type=credential)

    with pytest.raises(ConsentError) as refused:
        flows.start_sign_in(authentication, via=AuthorizationRequest.Via.ADMIN)

    assert refused.value.code == "no_credential"
    word = "certificate" if credential == "certificate" else "client secret"
    assert word in refused.value.message
    assert "wrong" not in refused.value.message
    assert not AuthorizationRequest.objects.exists()


def test_no_admin_consent_starts_without_a_usable_credential(make_authentication):
    authentication = make_authentication(
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        tenant_id=TENANT_ID,
        client_secret="",
        credential_type="certificate",
    )

    with pytest.raises(ConsentError, match="has none yet"):
        flows.start_admin_consent(authentication, via=AuthorizationRequest.Via.ADMIN)
    assert not AuthorizationRequest.objects.exists()
