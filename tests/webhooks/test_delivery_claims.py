"""A worker whose claim ran out must not act on a notification another worker now holds.

A handler that hangs past CLAIM_SECONDS lets a second worker claim the same notification
(at least once). When the first one then finishes, its result must not overwrite the second
worker's claim, nor let it move on to the record's next change while the earlier one is
still being delivered elsewhere: that would break the order per record.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from authentications.webhooks import delivery, handlers, tasks
from authentications.webhooks.models import ChangeNotification
from tests.webhooks.helpers import make_subscription, notification_item, post_notifications

pytestmark = pytest.mark.django_db
Status = ChangeNotification.Status


@pytest.fixture
def overtaken_handler():
    """A customers handler during whose first call another worker claims the notification."""
    calls = []
    second_claim = timezone.now() + timedelta(seconds=600)

    def handler(change):
        calls.append(change.change_type)
        if len(calls) == 1:  # Our claim ran out; another worker claimed the same row.
            ChangeNotification.objects.filter(key=change.key).update(claimed_until=second_claim)

    handler.calls, handler.second_claim = calls, second_claim
    handlers.on("customers")(handler)
    yield handler
    handlers.disconnect("customers", handler)


def test_an_overtaken_worker_neither_finishes_the_row_nor_moves_on(
    client, connected_row, overtaken_handler
):
    subscription = make_subscription(connected_row)
    post_notifications(client, [notification_item(subscription, "c-1", change_type="created")])
    post_notifications(client, [notification_item(subscription, "c-1", change_type="updated")])
    first, second = ChangeNotification.objects.order_by("id")

    delivered = delivery.deliver_record(first.record_key, retry=tasks.queue_retry)

    assert delivered == 0
    assert overtaken_handler.calls == ["created"]
    first.refresh_from_db()
    assert (first.status, first.claimed_until) == (
        Status.DELIVERING,
        overtaken_handler.second_claim,
    )
    assert ChangeNotification.objects.get(pk=second.pk).status == Status.PENDING
