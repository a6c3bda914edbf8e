"""Uploads that real CAs and tools produce: chains in .pfx and PEM files (any order), an EC
key, a 2048-bit key at the minimum; and the fake Entra refusing a replayed assertion."""

import base64
import datetime

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.asserts import assertContains

from authentications.certificates import keypairs
from authentications.certificates.models import Certificate
from authentications.connections import tokens
from authentications.connections.models import Authentication
from tests.fakes.entra import TENANT_ID
from tests.helpers import admin_change_url, use_certificate

pytestmark = pytest.mark.django_db

PEM = serialization.Encoding.PEM


def upload_url(authentication):
    return admin_change_url(authentication).replace("change/", "certificates/upload/")


def signed_by(issuer_key, issuer_name, subject_key, subject, *, ca=False):
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def chain():
    """(leaf key, leaf certificate, CA certificate): a leaf issued by a CA, as CAs sell them."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = signed_by(ca_key, None, ca_key, "Test CA", ca=True)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return leaf_key, signed_by(ca_key, ca.subject, leaf_key, "bcconnect leaf"), ca


def key_pem(key):
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def stored_thumbprint(authentication):
    return Certificate.objects.get(authentication=authentication).thumbprint_sha1


def thumbprint_of(certificate):
    return keypairs.thumbprint(certificate.public_bytes(PEM).decode())


def test_a_pfx_with_its_ca_chain_stores_the_leaf(admin_client, make_authentication, chain):
    leaf_key, leaf, ca = chain
    authentication = make_authentication()
    data = pkcs12.serialize_key_and_certificates(
        b"bc", leaf_key, leaf, [ca], serialization.BestAvailableEncryption(b"pfx-pass")
    )

    admin_client.post(
        upload_url(authentication),
        {"pfx": SimpleUploadedFile("chain.pfx", data), "password": "pfx-pass"},
    )

    assert stored_thumbprint(authentication) == thumbprint_of(leaf)


def test_a_pem_chain_with_the_ca_first_stores_the_leaf(admin_client, make_authentication, chain):
    leaf_key, leaf, ca = chain
    authentication = make_authentication()
    bundle = ca.public_bytes(PEM) + leaf.public_bytes(PEM)

    admin_client.post(
        upload_url(authentication),
        {
            "private_key": SimpleUploadedFile("key.pem", key_pem(leaf_key)),
            "certificate": SimpleUploadedFile("fullchain.pem", bundle),
        },
    )

    assert stored_thumbprint(authentication) == thumbprint_of(leaf)


def test_a_pem_chain_without_the_keys_certificate_is_refused(
    admin_client, make_authentication, chain
):
    leaf_key, _, ca = chain
    authentication = make_authentication()
    files = {
        "private_key": SimpleUploadedFile("key.pem", key_pem(leaf_key)),
        "certificate": SimpleUploadedFile("ca.pem", ca.public_bytes(PEM) * 2),
    }

    response = admin_client.post(upload_url(authentication), files)

    assertContains(response, "The private key does not match the certificate.")
    assert not Certificate.objects.exists()


def test_a_pfx_with_an_ec_key_is_refused_clearly(admin_client, make_authentication):
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = signed_by(key, None, key, "ec")
    data = pkcs12.serialize_key_and_certificates(
        b"ec", key, certificate, None, serialization.BestAvailableEncryption(b"pw")
    )
    authentication = make_authentication()

    response = admin_client.post(
        upload_url(authentication), {"pfx": SimpleUploadedFile("ec.pfx", data), "password": "pw"}
    )

    assertContains(response, "Entra needs an RSA key")
    assert not Certificate.objects.exists()


def test_a_key_of_exactly_2048_bits_is_accepted(chain):
    leaf_key, leaf, _ = chain

    pair = keypairs.from_pem(key_pem(leaf_key), leaf.public_bytes(PEM))

    assert keypairs.MIN_KEY_BITS == 2048 == leaf_key.key_size
    assert pair.certificate_pem == leaf.public_bytes(PEM).decode()


def test_the_fake_refuses_an_assertion_replayed_in_a_second_request(
    make_authentication, fake_microsoft
):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    use_certificate(fake_microsoft, authentication)
    bodies, token = [], fake_microsoft.entra.token

    def keep_body(tenant, request):
        bodies.append(request.body)
        return token(tenant, request)

    fake_microsoft.entra.token = keep_body
    tokens.refresh(authentication, needed=lambda row: True, by_person=True)
    replayed = requests.post(
        f"{fake_microsoft.url}/{TENANT_ID}/oauth2/v2.0/token",
        data=bodies[0],
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        verify=str(fake_microsoft.ca_path),
        timeout=10,
    )

    assert replayed.status_code in (400, 401)
    assert "AADSTS50027" in replayed.text and "replay" in replayed.text


def test_a_certificate_of_an_unknown_x509_version_is_refused_not_a_500(
    admin_client, make_authentication, chain
):
    """cryptography raises InvalidVersion, not ValueError, for a version no X.509 has (the
    stress fuzz found version 66): it was a 500."""
    leaf_key, leaf, _ = chain
    der = leaf.public_bytes(serialization.Encoding.DER)
    version_3 = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2, i.e. v3.
    assert der.count(version_3) == 1
    body = base64.encodebytes(der.replace(version_3, b"\xa0\x03\x02\x01\x42")).decode()
    odd = f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n".encode()
    authentication = make_authentication()

    response = admin_client.post(
        upload_url(authentication),
        {
            "private_key": SimpleUploadedFile("key.pem", key_pem(leaf_key)),
            "certificate": SimpleUploadedFile("odd.pem", odd),
        },
    )

    assertContains(response, "This is not a PEM certificate.")
    assert not Certificate.objects.exists()
