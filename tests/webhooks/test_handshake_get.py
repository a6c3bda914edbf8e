"""BC's documentation names the validationToken parameter, not the method: GET echoes too.

With the same checks as a POST: only while one of our create or renew requests is at BC,
as text/plain the browser may not sniff, and nothing echoed otherwise.
"""

import pytest
from django.utils import timezone

from authentications.webhooks.models import Subscription
from tests.webhooks.helpers import NOTIFICATIONS_PATH, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription(connected_row):
    return make_subscription(connected_row)


def open_window(subscription, seconds=30):
    Subscription.objects.filter(pk=subscription.pk).update(
        handshake_until=timezone.now() + timezone.timedelta(seconds=seconds)
    )


def test_a_get_handshake_is_echoed_while_our_request_is_at_bc(client, subscription):
    open_window(subscription)

    response = client.get(NOTIFICATIONS_PATH, {"validationToken": "<b>tok-1</b>"})

    assert response.status_code == 200
    assert response.content == b"<b>tok-1</b>"
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_get_handshake_nobody_asked_for_is_refused_without_echo(client, subscription):
    response = client.get(NOTIFICATIONS_PATH, {"validationToken": "tok-2"})

    assert response.status_code == 403
    assert b"tok-2" not in response.content


def test_a_get_handshake_after_the_window_closed_is_refused(client, subscription):
    open_window(subscription, seconds=-1)

    assert client.get(NOTIFICATIONS_PATH, {"validationToken": "tok-3"}).status_code == 403


@pytest.mark.parametrize("token", ["", "a\nb", "x" * 2000])
def test_an_odd_get_validation_token_is_a_400(client, subscription, token):
    open_window(subscription)

    response = client.get(NOTIFICATIONS_PATH, {"validationToken": token})

    assert response.status_code == 400
    assert token.encode() not in response.content or not token


def test_a_plain_get_is_still_not_allowed(client, subscription):
    open_window(subscription)

    response = client.get(NOTIFICATIONS_PATH)

    assert response.status_code == 405
    assert "POST" in response["Allow"]
