"""Certificates in use are reminded of 30, 7 and 1 days before they expire, once each."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from authentications.certificates import keypairs
from authentications.certificates.models import Certificate
from authentications.connections.models import Event
from authentications.management import housekeeping
from tests.helpers import use_certificate

pytestmark = pytest.mark.django_db


@pytest.fixture
def expiring_certificate(make_authentication, notify_list):
    authentication = make_authentication(name="Signed")
    pair = keypairs.generate("expiring", valid_days=5)
    return use_certificate(None, authentication, pair, uploaded=False)


def test_a_certificate_in_use_is_reminded_once_per_threshold(expiring_certificate):
    first = housekeeping.send_expiry_reminders()
    again = housekeeping.send_expiry_reminders()
    later = housekeeping.send_expiry_reminders(today=timezone.localdate() + timedelta(days=4))

    assert [(row.name, days) for row, days in first.sent] == [("Signed", 5)]
    assert again.sent == [] and [days for _, days in later.sent] == [1]
    assert len(mail.outbox) == 2
    assert "certificate expires in 5 days" in mail.outbox[0].subject
    assert expiring_certificate.thumbprint_sha1 in mail.outbox[0].body
    assert "Generate next certificate" in mail.outbox[0].body
    assert Event.objects.filter(kind=Event.Kind.CERTIFICATE_EXPIRY).count() == 2


def test_a_certificate_not_in_use_or_far_from_expiry_is_not_reminded(
    expiring_certificate, make_authentication
):
    expiring_certificate.authentication.credential_type = "secret"
    expiring_certificate.authentication.client_secret = "a-secret"
    expiring_certificate.authentication.save()
    far = make_authentication(name="Far")
    use_certificate(None, far, keypairs.generate("far", valid_days=60), uploaded=False)

    assert housekeeping.send_expiry_reminders().sent == []
    assert mail.outbox == []


def test_a_certificate_reminder_the_mail_server_refused_is_sent_next_run(
    expiring_certificate, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2

    failed = housekeeping.send_expiry_reminders()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    retried = housekeeping.send_expiry_reminders()

    assert [days for _, days in failed.unsent] == [5] and [d for _, d in retried.sent] == [5]
    assert Certificate.objects.get().expiry_notified_days == 7


def test_refresh_tokens_reports_the_certificate_reminder(expiring_certificate):
    out = StringIO()

    call_command("refresh_tokens", stdout=out)

    expires = timezone.localdate(expiring_certificate.not_after)
    assert f"Certificate of Signed: warned (5 days left, expires {expires})." in out.getvalue()
