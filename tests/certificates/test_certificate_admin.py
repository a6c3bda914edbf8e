"""Certificates in the admin: generate, download, upload (and each upload error), choose
the credential, roll over to the next certificate without a failed request."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.asserts import assertContains, assertNotContains

from authentications.certificates import keypairs
from authentications.certificates.models import Certificate
from authentications.connections import tokens
from authentications.connections.models import Authentication, Event
from tests.helpers import admin_change_url, change_form_data, fresh, key_pair, use_certificate

pytestmark = pytest.mark.django_db


def page_url(authentication, view):
    return admin_change_url(authentication).replace("change/", view)


def self_signed(key, *, days=30, start_days_ago=1):
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=start_days_ago)
    return keypairs.self_signed(key, "upload test", valid_days=days + start_days_ago, now=start)


def pem_files(key, certificate, *, password=None):
    encryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return {
        "private_key": SimpleUploadedFile("key.pem", key_pem),
        "certificate": SimpleUploadedFile(
            "cert.pem", certificate.public_bytes(serialization.Encoding.PEM)
        ),
    }


def pfx_file(key, certificate, password):
    data = pkcs12.serialize_key_and_certificates(
        b"upload", key, certificate, None, serialization.BestAvailableEncryption(password.encode())
    )
    return {"pfx": SimpleUploadedFile("bundle.pfx", data), "password": password}


def rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def test_generate_shows_thumbprints_and_downloads_never_hold_the_key(
    admin_client, make_authentication
):
    authentication = make_authentication()

    response = admin_client.post(page_url(authentication, "certificates/generate/"), follow=True)

    certificate = Certificate.objects.get(authentication=authentication)
    assert certificate.role == Certificate.Role.CURRENT
    assert certificate.not_after - certificate.not_before > datetime.timedelta(days=364)
    key = serialization.load_pem_private_key(certificate.private_key.encode(), None)
    assert key.key_size == 3072
    assertContains(response, certificate.thumbprint_sha1)
    assertContains(response, certificate.thumbprint_sha256)
    assertContains(response, "Upload certificate")
    assertNotContains(response, "PRIVATE KEY")
    cer = admin_client.get(page_url(authentication, f"certificates/{certificate.pk}/download.cer"))
    pem = admin_client.get(page_url(authentication, f"certificates/{certificate.pk}/download.pem"))
    assert x509.load_der_x509_certificate(cer.content).fingerprint(hashes.SHA1()).hex().upper() == (
        certificate.thumbprint_sha1
    )
    assert pem.content.decode() == certificate.certificate_pem
    assert b"PRIVATE" not in cer.content + pem.content
    assert "attachment" in cer["Content-Disposition"]
    key_download = page_url(authentication, f"certificates/{certificate.pk}/download.key")
    assert admin_client.get(key_download).status_code == 404


def test_a_certificate_of_another_authentication_cannot_be_downloaded(
    admin_client, make_authentication
):
    mine, theirs = make_authentication(), make_authentication()
    certificate = use_certificate(None, theirs, key_pair(), uploaded=False)

    response = admin_client.get(page_url(mine, f"certificates/{certificate.pk}/download.pem"))

    assert response.status_code == 404


def test_choosing_certificate_saves_without_a_secret(admin_client, make_authentication):
    authentication = make_authentication(client_secret="")
    use_certificate(None, authentication, key_pair(), uploaded=False)
    data = change_form_data(authentication, credential_type="certificate", _save="Save")

    response = admin_client.post(admin_change_url(authentication), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert fresh(authentication).uses_certificate


def test_a_secret_is_still_required_for_the_secret_credential(admin_client, make_authentication):
    authentication = make_authentication(client_secret="")
    data = change_form_data(authentication, credential_type="secret", _save="Save")

    response = admin_client.post(admin_change_url(authentication), data)

    assertContains(response, "Enter the client secret Value copied from Entra.")


def test_upload_a_pem_key_and_certificate(admin_client, make_authentication):
    authentication = make_authentication()
    key = rsa_key()

    response = admin_client.post(
        page_url(authentication, "certificates/upload/"), pem_files(key, self_signed(key))
    )

    assert response.status_code == 302
    certificate = Certificate.objects.get(authentication=authentication)
    assert certificate.source == Certificate.Source.UPLOADED
    assert certificate.role == Certificate.Role.CURRENT


def test_upload_a_pfx_with_its_password_which_is_not_kept(admin_client, make_authentication):
    authentication = make_authentication()
    key = rsa_key()
    password = "pfx-password-7Qx!"

    response = admin_client.post(
        page_url(authentication, "certificates/upload/"),
        pfx_file(key, self_signed(key), password),
    )

    assert response.status_code == 302
    assert Certificate.objects.filter(authentication=authentication).count() == 1
    assert password not in "".join(Event.objects.values_list("detail", flat=True))


@pytest.mark.parametrize(
    ("files", "error"),
    [
        (lambda: pem_files(rsa_key(), self_signed(rsa_key())), "does not match the certificate"),
        (
            lambda: (lambda k: pem_files(k, self_signed(k, days=-1, start_days_ago=30)))(rsa_key()),
            "The certificate expired on",
        ),
        (lambda: (lambda k: pem_files(k, self_signed(k)))(rsa_key(1024)), "needs at least 2048"),
        (
            lambda: (lambda k: pfx_file(k, self_signed(k), "right"))(rsa_key()) | {"password": "x"},
            "the password is wrong",
        ),
        (
            lambda: (lambda k: pem_files(k, self_signed(k), password="secret"))(rsa_key()),
            "The private key is encrypted",
        ),
        (
            lambda: (lambda k: pem_files(k, self_signed(k)))(
                ec.generate_private_key(ec.SECP256R1())
            ),
            "Entra needs an RSA key",
        ),
        (lambda: {"private_key": SimpleUploadedFile("k.pem", b"hello")}, "not a PEM private key"),
        (lambda: {}, "Upload either a PEM private key"),
    ],
    ids=[
        "mismatch",
        "expired",
        "short",
        "wrong-password",
        "encrypted",
        "not-rsa",
        "garbage",
        "none",
    ],
)
def test_an_unusable_upload_gets_a_clear_error_and_changes_nothing(
    admin_client, make_authentication, files, error
):
    authentication = make_authentication()

    response = admin_client.post(page_url(authentication, "certificates/upload/"), files())

    assertContains(response, error)
    assert not Certificate.objects.filter(authentication=authentication).exists()


def test_a_view_only_user_cannot_generate_switch_upload_or_delete(
    client, django_user_model, make_authentication
):
    from django.contrib.auth.models import Permission

    authentication = make_authentication()
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_authentication"))
    client.force_login(user)

    answers = [
        client.post(page_url(authentication, view)).status_code
        for view in ("certificates/generate/", "certificates/switch/", "certificates/upload/")
    ]

    assert answers == [403, 403, 403]
    assert not Certificate.objects.exists()


def test_rollover_switches_only_once_entra_knows_the_next_certificate(
    admin_client, make_authentication, fake_microsoft
):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    first = use_certificate(fake_microsoft, authentication, key_pair())
    tokens.refresh(authentication, needed=lambda row: True, by_person=True)
    admin_client.post(page_url(authentication, "certificates/generate/"))
    upcoming = Certificate.objects.next_for(authentication)

    refused = admin_client.post(page_url(authentication, "certificates/switch/"), follow=True)
    between = tokens.refresh(authentication, needed=lambda row: True, by_person=True)
    fake_microsoft.entra.upload_certificate(upcoming.certificate_pem)
    accepted = admin_client.post(page_url(authentication, "certificates/switch/"), follow=True)
    after = tokens.refresh(authentication, needed=lambda row: True, by_person=True)

    assertContains(refused, "Entra does not accept the next certificate yet")
    assertContains(refused, "Nothing changed")
    assert between.refreshed and after.refreshed
    assertContains(accepted, f"Entra accepted certificate {upcoming.thumbprint_sha1}")
    roles = dict(Certificate.objects.values_list("pk", "role"))
    assert roles == {first.pk: Certificate.Role.OLD, upcoming.pk: Certificate.Role.CURRENT}
    assertContains(accepted, first.thumbprint_sha1)  # Kept until deleted.
    assert fresh(authentication).status == Authentication.Status.CONNECTED


def test_old_and_next_certificates_can_be_deleted_the_current_one_cannot(
    admin_client, make_authentication
):
    authentication = make_authentication()
    current = use_certificate(None, authentication, key_pair(), uploaded=False)
    upcoming = use_certificate(None, authentication, key_pair(1), uploaded=False)

    kept = admin_client.post(
        page_url(authentication, f"certificates/{current.pk}/delete/"), follow=True
    )
    admin_client.post(page_url(authentication, f"certificates/{upcoming.pk}/delete/"))

    assertContains(kept, "Only a next or old certificate can be deleted.")
    assert list(Certificate.objects.values_list("pk", flat=True)) == [current.pk]


def test_a_third_certificate_waits_for_the_switch(admin_client, make_authentication):
    authentication = make_authentication()
    use_certificate(None, authentication, key_pair(), uploaded=False)
    use_certificate(None, authentication, key_pair(1), uploaded=False)

    response = admin_client.post(page_url(authentication, "certificates/generate/"), follow=True)

    assertContains(response, "There is a next certificate already")
    assert Certificate.objects.count() == 2


def test_the_list_shows_when_the_certificate_expires(admin_client, make_authentication):
    authentication = make_authentication()
    use_certificate(None, authentication, keypairs.generate("soon", valid_days=10), uploaded=False)

    response = admin_client.get("/admin/authentications/authentication/")

    assertContains(response, "Credential expires")
    assertContains(response, "10 days left")
