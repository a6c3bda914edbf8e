"""The refresh lease lasts longer than a slow Entra can keep its holder waiting.

A lease that ends while its holder still waits for Microsoft lets a second caller send a
second token request with the same refresh token; a waiter that gives up before the lease
ends reports a failure that was not one.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from authentications import checks
from authentications.connections.models import Authentication
from authentications.connections.tokens import get_access_token

# The fake Microsoft's thread and the sibling below read the row: it must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

# One refresh: the OpenID discovery and the token request, after waiting for at most one
# other thread's discovery of the same authority.
CALLS = 3


@pytest.fixture
def connected(make_authentication, sign_in_at_microsoft):
    authentication = sign_in_at_microsoft(make_authentication())
    Authentication.objects.filter(pk=authentication.pk).update(
        access_token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    return authentication


def lease_seen_during_the_token_request(fake_microsoft, monkeypatch, authentication):
    """Refresh `authentication`; the seconds its lease had left while Microsoft worked."""
    seen = []
    answer = fake_microsoft.entra.token

    def token(tenant, request):
        lease_until = Authentication.objects.get(pk=authentication.pk).lease_until
        seen.append((lease_until - timezone.now()).total_seconds())
        connection.close()  # The fake's server thread must not keep a connection.
        return answer(tenant, request)

    monkeypatch.setattr(fake_microsoft.entra, "token", token)
    get_access_token(authentication)
    return seen[0]


def test_the_lease_outlasts_every_http_call_of_one_refresh(
    connected, fake_microsoft, monkeypatch, settings
):
    settings.BC_HTTP_TIMEOUT = (5.0, 30.0)
    settings.BC_LEASE_SECONDS = 60  # The old fixed lease: shorter than that worst case.

    left = lease_seen_during_the_token_request(fake_microsoft, monkeypatch, connected)

    assert left > CALLS * (5.0 + 30.0)


def test_the_lease_follows_the_configured_timeouts(
    connected, fake_microsoft, monkeypatch, settings
):
    settings.BC_HTTP_TIMEOUT = (10.0, 60.0)
    settings.BC_LEASE_SECONDS = 0  # The default: derived from the timeouts.

    left = lease_seen_during_the_token_request(fake_microsoft, monkeypatch, connected)

    assert left > CALLS * (10.0 + 60.0)


def test_a_longer_lease_setting_is_kept(connected, fake_microsoft, monkeypatch, settings):
    settings.BC_HTTP_TIMEOUT = (5.0, 30.0)
    settings.BC_LEASE_SECONDS = 900

    left = lease_seen_during_the_token_request(fake_microsoft, monkeypatch, connected)

    assert 890 < left <= 900


def test_a_waiter_keeps_waiting_while_the_holders_lease_lasts(connected, fake_microsoft, settings):
    settings.BC_LEASE_SECONDS = 0  # The default: derived from BC_HTTP_TIMEOUT.
    Authentication.objects.filter(pk=connected.pk).update(
        lease_until=timezone.now() + timedelta(minutes=2), lease_id="a-slow-holder-elsewhere"
    )

    def holder_answers_after_five_and_a_half_seconds():
        time.sleep(5.5)
        Authentication.objects.filter(pk=connected.pk).update(
            access_token="fake-at-from-the-slow-holder",
            access_token_expires_at=timezone.now() + timedelta(hours=1),
            last_refreshed_at=timezone.now(),
            lease_until=None,
            lease_id="",
        )
        connection.close()

    holder = threading.Thread(target=holder_answers_after_five_and_a_half_seconds)
    holder.start()
    try:
        token = get_access_token(connected)
    finally:
        holder.join()

    assert token == "fake-at-from-the-slow-holder"
    assert fake_microsoft.entra.count("refresh_token") == 0


def test_check_warns_about_a_lease_setting_shorter_than_the_worst_case(settings):
    settings.BC_HTTP_TIMEOUT = (5.0, 30.0)
    settings.BC_LEASE_SECONDS = 60

    warnings = checks.check_lease_seconds(None)

    assert [warning.id for warning in warnings] == ["bcconnect.W002"]
    assert "BC_LEASE_SECONDS (60)" in warnings[0].msg
    settings.BC_LEASE_SECONDS = 0
    assert checks.check_lease_seconds(None) == []
    settings.BC_LEASE_SECONDS = 600
    assert checks.check_lease_seconds(None) == []
