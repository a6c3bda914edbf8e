"""The handshake echoes attacker-chosen text: it must never be rendered as a page."""

import pytest
from django.utils import timezone

from authentications.webhooks.models import Subscription
from tests.webhooks.helpers import NOTIFICATIONS_PATH, make_subscription

pytestmark = pytest.mark.django_db


def test_an_echoed_script_is_plain_text_the_browser_may_not_sniff(client, connected_row):
    subscription = make_subscription(connected_row)
    Subscription.objects.filter(pk=subscription.pk).update(
        handshake_until=timezone.now() + timezone.timedelta(seconds=30)
    )

    response = client.post(
        NOTIFICATIONS_PATH, {}, QUERY_STRING="validationToken=<script>x</script>"
    )

    assert response.status_code == 200
    assert response.content == b"<script>x</script>"
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("method", ["head", "put", "patch", "delete"])
def test_a_handshake_by_another_method_is_refused(client, connected_row, method):
    subscription = make_subscription(connected_row)
    Subscription.objects.filter(pk=subscription.pk).update(
        handshake_until=timezone.now() + timezone.timedelta(seconds=30)
    )

    response = getattr(client, method)(f"{NOTIFICATIONS_PATH}?validationToken=abc")

    assert response.status_code == 405
    assert b"abc" not in response.content
