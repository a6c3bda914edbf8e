"""A mail server that accepts connections and never answers holds up nothing.

EMAIL_TIMEOUT (default 10 s, also for SMTP configured through EMAIL_URL) bounds every step
of an SMTP conversation, and a notification waits no longer than that for the mail server:
the grant, the refresh and the cron run go on, and what they stored stays stored.
"""

import runpy
import socket
import threading
import time
from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.conf import global_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from authentications import mail as notifications
from authentications.connections import link_tokens, tokens
from authentications.connections.models import Authentication
from tests.helpers import ROOT

# The calls run on threads with their own database connections: rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS_FILE = ROOT / "bcconnect" / "settings.py"
EMAIL_SETTINGS = (
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_TIMEOUT",
)


def email_settings_from(monkeypatch, **environment):
    """The email settings bcconnect/settings.py makes of `environment`."""
    for name in ("EMAIL_URL", "EMAIL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    module = runpy.run_path(str(SETTINGS_FILE))
    return {name: module.get(name, getattr(global_settings, name)) for name in EMAIL_SETTINGS}


def test_email_timeout_defaults_to_ten_seconds(monkeypatch):
    assert email_settings_from(monkeypatch)["EMAIL_TIMEOUT"] == 10


def test_email_timeout_applies_to_smtp_from_email_url(monkeypatch):
    configured = email_settings_from(
        monkeypatch, EMAIL_URL="smtp+tls://mail.example.com:587", EMAIL_TIMEOUT="3.5"
    )

    assert configured["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert configured["EMAIL_HOST"] == "mail.example.com"
    assert configured["EMAIL_TIMEOUT"] == 3.5


def test_email_url_may_carry_the_timeout(monkeypatch):
    url = "smtp+tls://mail.example.com:587?timeout=4"

    assert email_settings_from(monkeypatch, EMAIL_URL=url)["EMAIL_TIMEOUT"] == 4
    assert email_settings_from(monkeypatch, EMAIL_URL=url, EMAIL_TIMEOUT="2")["EMAIL_TIMEOUT"] == 2


def test_a_timeout_of_zero_stops_start_up_with_one_line(monkeypatch):
    with pytest.raises(SystemExit) as caught:
        email_settings_from(monkeypatch, EMAIL_TIMEOUT="0")

    assert "EMAIL_TIMEOUT" in str(caught.value)


# --- a mail server that never answers ---------------------------------------------------


@pytest.fixture
def silent_smtp_port():
    """A mail server that accepts every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for accepted in held:
        accepted.close()
    server.close()


@pytest.fixture
def silent_mail_server(settings, monkeypatch, silent_smtp_port):
    """bcconnect configured from its environment to mail through the silent server."""
    configured = email_settings_from(
        monkeypatch, EMAIL_URL=f"smtp://127.0.0.1:{silent_smtp_port}", EMAIL_TIMEOUT="1"
    )
    for name, value in configured.items():
        setattr(settings, name, value)
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]


def finishes(call, *, within=30):
    """What `call` returned or raised, run on a thread that must end within `within` seconds.

    A liveness check, not a timing assertion: without a timeout the call never returns.
    """
    outcome = {}

    def run():
        try:
            outcome["result"] = call()
        except Exception as err:
            outcome["error"] = err
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"still waiting for the mail server after {within} s"
    return outcome


def due(authentication, **changes):
    Authentication.objects.filter(pk=authentication.pk).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=60), **changes
    )


def test_the_callback_after_a_link_grant_does_not_wait_for_mail(
    make_authentication, sign_in, silent_mail_server
):
    authentication = make_authentication()
    person = Client()
    started = person.post(urlsplit(link_tokens.authorization_url(authentication).url).path)

    outcome = finishes(lambda: sign_in(person, started))

    assert outcome["result"].status_code == 303
    stored = Authentication.objects.get(pk=authentication.pk)
    assert stored.status == Authentication.Status.CONNECTED
    assert stored.access_token and stored.refresh_token


def test_get_access_token_on_a_broken_connection_does_not_wait_for_mail(
    make_authentication, sign_in_at_microsoft, silent_mail_server
):
    authentication = sign_in_at_microsoft(make_authentication())
    due(authentication, refresh_token="fake-rt-unknown")

    outcome = finishes(lambda: tokens.get_access_token(authentication.pk))

    assert isinstance(outcome["error"], tokens.TokenError)
    assert outcome["error"].needs_sign_in
    stored = Authentication.objects.get(pk=authentication.pk)
    assert stored.status == Authentication.Status.NEEDS_SIGN_IN


def test_a_cron_run_does_not_wait_for_mail(
    make_authentication, sign_in_at_microsoft, silent_mail_server
):
    good = sign_in_at_microsoft(make_authentication(name="Good"))
    broken = sign_in_at_microsoft(
        make_authentication(
            name="Broken", client_secret_expires_on=timezone.localdate() + timedelta(days=5)
        )
    )
    due(good)
    due(broken, refresh_token="fake-rt-unknown")
    out = StringIO()

    outcome = finishes(lambda: call_command("refresh_tokens", stdout=out))

    assert isinstance(outcome["error"], CommandError) and outcome["error"].returncode == 1
    assert "Good: refreshed" in out.getvalue()
    assert Authentication.objects.get(pk=good.pk).access_token != good.access_token
    stored = Authentication.objects.get(pk=broken.pk)
    assert stored.status == Authentication.Status.NEEDS_SIGN_IN


# --- a mail server that answers, slowly -------------------------------------------------


class SlowSmtpServer:
    """A mail server that answers every SMTP command correctly, each after `delay` seconds."""

    def __init__(self, delay):
        self.delay = delay
        self.delivered = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            accepted, _ = self.server.accept()
        except OSError:
            return
        with accepted, accepted.makefile("rb") as lines:
            self.reply(accepted, b"220 slow.example ESMTP")
            receiving = False
            for line in lines:
                if receiving:
                    if line.rstrip(b"\r\n") == b".":
                        receiving = False
                        self.delivered.set()
                        self.reply(accepted, b"250 queued")
                    continue
                command = line[:4].upper()
                if command == b"QUIT":
                    self.reply(accepted, b"221 bye")
                    return
                receiving = command == b"DATA"
                self.reply(accepted, b"354 go on" if receiving else b"250 ok")

    def reply(self, accepted, text):
        time.sleep(self.delay)
        accepted.sendall(text + b"\r\n")

    def close(self):
        self.server.close()
        self.thread.join(30)


def test_a_notification_waits_for_a_slow_mail_server_no_longer_than_the_timeout(settings):
    server = SlowSmtpServer(delay=0.7)  # Seven answers: about five seconds for one email.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 1
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]
    context = {"authentication_name": "BC production", "granted_by": "Jane"}

    try:
        notifications.notify_quietly("access_granted", context, subject="Access granted")
        returned_before_delivery = not server.delivered.is_set()
        assert server.delivered.wait(30)  # The email still goes out, in the background.
    finally:
        server.close()

    assert returned_before_delivery
