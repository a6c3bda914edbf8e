"""`refresh_tokens --dry-run` lists the certificate reminders the real run would send."""

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from authentications.certificates import keypairs
from authentications.certificates.models import Certificate
from authentications.connections.models import Event
from tests.helpers import use_certificate

pytestmark = pytest.mark.django_db


def test_dry_run_lists_a_certificate_reminder_and_sends_nothing(make_authentication, notify_list):
    authentication = make_authentication(name="Signed soon")
    pair = keypairs.generate("dry-run", valid_days=5)
    certificate = use_certificate(None, authentication, pair, uploaded=False)
    out = StringIO()

    call_command("refresh_tokens", "--dry-run", stdout=out)

    expires = timezone.localdate(certificate.not_after)
    line = f"Certificate of Signed soon: would warn (5 days left, expires {expires})."
    assert line in out.getvalue()
    assert mail.outbox == []
    assert Certificate.objects.get().expiry_notified_days is None
    assert not Event.objects.filter(kind=Event.Kind.CERTIFICATE_EXPIRY).exists()


def test_dry_run_then_real_run_warn_about_the_same_certificate(make_authentication, notify_list):
    authentication = make_authentication(name="Signed later")
    use_certificate(None, authentication, keypairs.generate("x", valid_days=3), uploaded=False)
    dry, real = StringIO(), StringIO()

    call_command("refresh_tokens", "--dry-run", stdout=dry)
    call_command("refresh_tokens", stdout=real)

    assert "Certificate of Signed later: would warn (3 days left" in dry.getvalue()
    assert "Certificate of Signed later: warned (3 days left" in real.getvalue()
    assert len(mail.outbox) == 1
