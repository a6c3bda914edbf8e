"""The answer rule under mixed POSTs: BC batches items of several subscriptions in one POST.

An item of a subscription we are creating right now (BC knows its ID, we do not yet) must
not be lost because an item of another, known subscription shares its POST: the whole POST
is answered 503, so BC sends it again once the ID is stored; the known items stored the
first time are not stored twice.
"""

import pytest
from django.utils import timezone

from authentications.webhooks.models import ChangeNotification, Subscription
from tests.webhooks.helpers import make_subscription, notification_item, post_notifications

pytestmark = pytest.mark.django_db


def test_an_item_of_a_subscription_being_created_beside_a_known_one_is_retried_not_lost(
    client, connected_row
):
    known = make_subscription(connected_row)
    creating = make_subscription(
        connected_row,
        entity="items",
        subscription_id="",
        status=Subscription.Status.PENDING,
        handshake_until=timezone.now() + timezone.timedelta(seconds=30),
    )
    items = [
        notification_item(known, "c-1"),
        notification_item(creating, "i-1", subscriptionId="new-id-bc-just-made"),
    ]

    first = post_notifications(client, items)
    Subscription.objects.filter(pk=creating.pk).update(
        subscription_id="new-id-bc-just-made",
        status=Subscription.Status.ACTIVE,
        handshake_until=None,
    )
    second = post_notifications(client, items)

    assert (first.status_code, second.status_code) == (503, 202)
    stored = sorted(ChangeNotification.objects.values_list("record_id", flat=True))
    assert stored == ["c-1", "i-1"]


def test_a_forged_unknown_item_beside_a_known_one_is_still_answered_202(client, connected_row):
    known = make_subscription(connected_row)
    forged = notification_item(known, "c-2", subscriptionId="nobody", clientState="guess")

    response = post_notifications(client, [notification_item(known, "c-1"), forged])

    assert response.status_code == 202
    assert list(ChangeNotification.objects.values_list("record_id", flat=True)) == ["c-1"]
