"""`make demo` offers a certificate connection; its banner's steps lead to a sign-in."""

import requests
from pytest_django.asserts import assertContains

from authentications.connections.models import Authentication
from tests.fakes.demo import DEMO_CERTIFICATE_AUTHENTICATION, set_up_demo
from tests.fakes.portal import PATH as PORTAL_PATH
from tests.helpers import admin_change_url, change_form_data


def test_the_demo_certificate_connection_signs_in_by_following_the_banner(
    admin_client, fake_microsoft, settings, sign_in
):
    settings.DEBUG = True

    banner = set_up_demo()
    authentication = Authentication.objects.get(name=DEMO_CERTIFICATE_AUTHENTICATION)
    change = admin_change_url(authentication)
    generated = admin_client.post(change.replace("change/", "certificates/generate/"))
    certificate = authentication.certificates.get()
    pem = admin_client.get(
        change.replace("change/", f"certificates/{certificate.pk}/download.pem")
    ).content.decode()
    portal = requests.post(
        f"{fake_microsoft.url}{PORTAL_PATH}",
        data={"certificate": pem},
        verify=str(fake_microsoft.ca_path),
        timeout=10,
    )
    saved = admin_client.post(change, change_form_data(authentication, _continue="Save"))
    landed = admin_client.get(sign_in(admin_client, saved)["Location"])

    assert f"{settings.BC_AUTHORITY_HOST}{PORTAL_PATH}" in banner
    assert "Generate certificate" in banner and generated.status_code == 302
    assert portal.status_code == 200 and certificate.thumbprint_sha1 in portal.text
    assertContains(landed, "Access token received")
    assert Authentication.objects.get(pk=authentication.pk).uses_certificate
