"""A secret-expiry reminder counts as sent only once a mail server has taken it."""

import smtplib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.mail.backends import locmem
from django.core.management import CommandError, call_command
from django.utils import timezone

from authentications.connections import cron
from authentications.connections.models import Authentication, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def notify_list(settings):
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]


@pytest.fixture
def expiring_secret(make_authentication):
    return make_authentication(
        name="Expiring", client_secret_expires_on=timezone.localdate() + timedelta(days=5)
    )


@pytest.fixture
def mail_server_down(settings):
    """A mail server that refuses connections: nothing on the SMTP port."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2

    def back_up():
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    return back_up


class OverlappingRun(locmem.EmailBackend):
    """While one run's reminder is at the mail server, a second cron run starts.

    `fail` makes the first run's delivery fail after the second run has looked.
    """

    second_run = None
    fail = False

    def send_messages(self, messages):
        if OverlappingRun.second_run is None:
            OverlappingRun.second_run = cron.send_secret_reminders().sent
            if OverlappingRun.fail:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


@pytest.fixture
def overlapping_run(settings):
    settings.EMAIL_BACKEND = f"{__name__}.OverlappingRun"
    OverlappingRun.second_run, OverlappingRun.fail = None, False
    yield OverlappingRun
    OverlappingRun.second_run, OverlappingRun.fail = None, False


def notified_days(authentication):
    return Authentication.objects.get(pk=authentication.pk).secret_expiry_notified_days


def test_a_reminder_the_mail_server_refused_is_sent_by_the_next_run(
    expiring_secret, notify_list, mail_server_down, mailoutbox
):
    sent, unsent = cron.send_secret_reminders()

    assert sent == [] and [(row.name, days) for row, days in unsent] == [("Expiring", 5)]
    assert notified_days(expiring_secret) is None
    assert not expiring_secret.events.filter(kind=Event.Kind.SECRET_EXPIRY).exists()

    mail_server_down()  # The mail server is back.
    sent, unsent = cron.send_secret_reminders()

    assert [(row.name, days) for row, days in sent] == [("Expiring", 5)] and unsent == []
    assert len(mailoutbox) == 1 and "5 days" in mailoutbox[0].body
    assert notified_days(expiring_secret) == 7
    assert expiring_secret.events.filter(kind=Event.Kind.SECRET_EXPIRY).count() == 1


def test_two_overlapping_runs_send_a_reminder_once(
    expiring_secret, notify_list, overlapping_run, mailoutbox
):
    sent, _ = cron.send_secret_reminders()

    assert overlapping_run.second_run == []
    assert len(sent) == 1 and len(mailoutbox) == 1
    assert notified_days(expiring_secret) == 7


def test_a_reminder_that_failed_while_another_run_overlapped_is_retried(
    expiring_secret, notify_list, overlapping_run, mailoutbox
):
    overlapping_run.fail = True

    sent, unsent = cron.send_secret_reminders()

    assert overlapping_run.second_run == []  # The overlapping run left it to us...
    assert sent == [] and len(unsent) == 1  # ... and we could not deliver it.
    assert notified_days(expiring_secret) is None  # The claim was given back,
    assert len(cron.send_secret_reminders().sent) == 1  # so the next run sends it.
    assert len(mailoutbox) == 1


def test_an_earlier_reminder_stays_recorded_when_a_later_one_fails(
    expiring_secret, notify_list, mail_server_down, mailoutbox
):
    Authentication.objects.filter(pk=expiring_secret.pk).update(secret_expiry_notified_days=30)

    cron.send_secret_reminders()

    assert notified_days(expiring_secret) == 30  # The 30-day one went out; the 7-day one did not.


@pytest.mark.django_db(transaction=True)
def test_refresh_tokens_reports_an_unsent_reminder_and_exits_1(
    expiring_secret, notify_list, mail_server_down
):
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("refresh_tokens", stdout=out)

    assert caught.value.returncode == 1
    assert "reminder" in str(caught.value)
    assert "Client secret of Expiring: could not warn (5 days left" in out.getvalue()
    assert "the next run tries again" in out.getvalue()
    assert notified_days(expiring_secret) is None
