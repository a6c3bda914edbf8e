"""The private key of a certificate (and a .pfx password) appears nowhere: not on any admin
page whatever the user may do, not in downloads, logs, events, emails, command output or
the error report Django mails ADMINS when an upload fails unexpectedly."""

import io
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection

from authentications.certificates import flows, keypairs
from authentications.certificates.models import Certificate
from authentications.connections.models import Authentication, Event
from tests.fakes.entra import error_body
from tests.helpers import admin_change_url, change_form_data, key_pair, use_certificate

pytestmark = pytest.mark.django_db(transaction=True)

LOGGERS = ("authentications", "bcconnect", "msal", "requests", "urllib3", "django", "")
PFX_PASSWORD = "pfx-Password-never-stored-42"
ADMIN_ADDRESS = "admins@example.com"


def key_fragments(pem):
    """Every base64 line of a PEM private key: any one of them is part of the key."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def pfx_upload():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = keypairs.self_signed(key, "leak test", valid_days=20)
    data = pkcs12.serialize_key_and_certificates(
        b"leak",
        key,
        certificate,
        None,
        serialization.BestAvailableEncryption(PFX_PASSWORD.encode()),
    )
    return {"pfx": SimpleUploadedFile("leak.pfx", data), "password": PFX_PASSWORD}


def command(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit:
        pass
    except Exception as error:  # A CommandError's message is output too.
        return str(error) + out.getvalue() + err.getvalue()
    return out.getvalue() + err.getvalue()


def every_page_for_each_user(client, django_user_model, authentication):
    """The change page, upload page, list and history for users of every permission."""
    change = admin_change_url(authentication)
    pages = []
    for codenames in (
        [],
        ["view_authentication"],
        ["view_authentication", "change_authentication"],
    ):
        user = django_user_model.objects.create_user(
            f"staff{len(codenames)}", password="pw", is_staff=True
        )
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client.force_login(user)
        for url in (
            change,
            change.replace("change/", "history/"),
            change.replace("change/", "certificates/upload/"),
            "/admin/authentications/authentication/",
        ):
            pages.append(client.get(url, follow=True).content.decode())
    return pages


def test_no_private_key_leaks_anywhere(
    admin_client,
    client,
    django_user_model,
    make_authentication,
    fake_microsoft,
    caplog,
    settings,
    log_lines,
):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]
    settings.BC_CERTIFICATE_VALID_MONTHS = 0  # A day: the reminders go out at once.
    produced = []
    authentication = make_authentication(
        name="Leak test", kind=Authentication.Kind.SERVICE_TO_SERVICE
    )
    change = admin_change_url(authentication)

    def post(view, data=None):
        response = admin_client.post(change.replace("change/", view), data or {}, follow=True)
        assert response.status_code < 500, response
        produced.append(response.content.decode())
        return response

    post("certificates/generate/")
    current = Certificate.objects.get()
    fake_microsoft.entra.upload_certificate(current.certificate_pem)
    data = change_form_data(authentication, credential_type="certificate", _continue="Save")
    produced.append(admin_client.post(change, data, follow=True).content.decode())
    post("certificates/upload/", pfx_upload())  # The next one, not uploaded to Entra.
    upcoming = Certificate.objects.next_for(authentication)
    post("certificates/switch/")  # Refused: Entra does not know it.
    for certificate in (current, upcoming):
        for file_format in ("cer", "pem"):
            url = change.replace("change/", f"certificates/{certificate.pk}/download.{file_format}")
            produced.append(admin_client.get(url).content.decode(errors="replace"))
    fake_microsoft.entra.upload_certificate(upcoming.certificate_pem)
    post("certificates/switch/")
    post("refresh/")
    post("test-connection/")
    produced += every_page_for_each_user(client, django_user_model, authentication)
    produced.append(command("refresh_tokens", "--all"))
    produced.append(command("refresh_tokens", "--all", "--json"))
    produced.append(command("bc", "Leak test", "GET", "companies"))
    fake_microsoft.entra.fail_next_token_request(("echo",))  # A proxy quoting the request.
    produced.append(command("refresh_tokens", "--all"))
    fake_microsoft.entra.fail_next_token_request(
        ("error", error_body("invalid_client", 700027, "Key not found."), 401)
    )
    produced.append(command("refresh_tokens", "--all"))
    produced.append(admin_client.get(change).content.decode())

    keys = [row.private_key for row in Certificate.objects.all()]
    emails = [
        f"{m.subject}\n{m.body}\n" + "".join(b for b, _ in m.alternatives) for m in mail.outbox
    ]
    text = "\n".join(
        [*produced, *emails, log_lines(caplog), *Event.objects.values_list("detail", flat=True)]
    )
    assert len(keys) == 2 and all("PRIVATE KEY" in key for key in keys)
    assert any("certificate expires" in m.subject for m in mail.outbox)  # The reminder.
    assert any("AADSTS700027" in e for e in emails)  # The needs-a-person email.
    assert "Entra accepted certificate" in text and "not accept the next certificate" in text
    for key in keys:
        for fragment in key_fragments(key):
            assert fragment not in text
    assert PFX_PASSWORD not in text


def test_an_upload_that_fails_unexpectedly_reports_no_key_or_password(
    admin_client, make_authentication, monkeypatch, settings
):
    settings.ADMINS = [("Admins", ADMIN_ADDRESS)]
    admin_client.raise_request_exception = False
    authentication = make_authentication()
    upload = pfx_upload()
    uploaded = {}

    def explode(authentication, pair, *, actor):
        uploaded["key"] = pair.private_key_pem
        raise RuntimeError("disk full")

    monkeypatch.setattr(flows, "add_uploaded", explode)
    response = admin_client.post(
        admin_change_url(authentication).replace("change/", "certificates/upload/"), upload
    )

    assert response.status_code == 500
    report = "\n".join(
        f"{m.body}\n" + "".join(b for b, _ in m.alternatives)
        for m in mail.outbox
        if m.to == [ADMIN_ADDRESS]
    )
    assert "disk full" in report
    assert PFX_PASSWORD not in report
    for fragment in key_fragments(uploaded["key"]):
        assert fragment not in report


def test_the_private_key_is_encrypted_at_rest(make_authentication):
    authentication = make_authentication()
    certificate = use_certificate(None, authentication, key_pair(), uploaded=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT private_key FROM authentications_certificate WHERE id = %s", [certificate.pk]
        )
        stored = bytes(cursor.fetchone()[0]).decode()

    assert "PRIVATE" not in stored
    assert key_fragments(key_pair().private_key_pem)[1] not in stored
    assert str(certificate) == f"Current certificate {certificate.thumbprint_sha1}"
