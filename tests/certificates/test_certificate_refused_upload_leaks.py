"""Refused uploads (wrong .pfx password, a PEM chain without the key's certificate, an EC
key), a credential switch and a dry run echo no private key and no password anywhere."""

import io
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from authentications.certificates import keypairs
from authentications.certificates.models import Certificate
from authentications.connections.models import Authentication, Event
from tests.helpers import admin_change_url, change_form_data

pytestmark = pytest.mark.django_db

PASSWORD = "Refused-pfx-password-77"
WRONG_PASSWORD = "Wrong-pfx-password-88"


def pkcs8(key):
    encoding, private = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, private, serialization.NoEncryption())


def test_refused_uploads_and_a_credential_switch_echo_no_key_or_password(
    admin_client, make_authentication, fake_microsoft, caplog, log_lines
):
    caplog.set_level(logging.DEBUG)
    authentication = make_authentication(name="Refusals")
    change = admin_change_url(authentication)
    upload = change.replace("change/", "certificates/upload/")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = keypairs.self_signed(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), "other", valid_days=9
    )
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pfx = pkcs12.serialize_key_and_certificates(
        b"p",
        rsa_key,
        keypairs.self_signed(rsa_key, "mine", valid_days=9),
        None,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    pem = serialization.Encoding.PEM
    attempts = [
        {"pfx": SimpleUploadedFile("a.pfx", pfx), "password": WRONG_PASSWORD},
        {
            "private_key": SimpleUploadedFile("k.pem", pkcs8(rsa_key)),
            "certificate": SimpleUploadedFile("c.pem", other.public_bytes(pem) * 2),
        },
        {"private_key": SimpleUploadedFile("k.pem", pkcs8(ec_key) + other.public_bytes(pem))},
    ]
    produced = [admin_client.post(upload, files).content.decode() for files in attempts]
    admin_client.post(upload, {"pfx": SimpleUploadedFile("a.pfx", pfx), "password": PASSWORD})
    data = change_form_data(authentication, credential_type="certificate", _continue="Save")
    produced.append(admin_client.post(change, data, follow=True).content.decode())
    out = io.StringIO()
    call_command("refresh_tokens", "--dry-run", "--all", stdout=out)
    produced += [out.getvalue(), admin_client.get(change).content.decode()]

    text = "\n".join(
        [*produced, log_lines(caplog), *Event.objects.values_list("detail", flat=True)]
    )
    assert Authentication.objects.get().uses_certificate and Certificate.objects.count() == 1
    keys = [pkcs8(rsa_key).decode(), pkcs8(ec_key).decode(), Certificate.objects.get().private_key]
    for key in keys:
        for line in key.splitlines():
            if line and not line.startswith("-----"):
                assert line not in text
    assert PASSWORD not in text and WRONG_PASSWORD not in text
