"""Correctly signed items BC could not have meant are counted on their subscription.

An item whose subscriptionId and clientState are right but which has no resource or
changeType, names another resource, or carries a changeType BC does not document (created,
updated, deleted, collection) cannot be delivered; it is dropped, but never without a trace.
"""

import logging

import pytest

from authentications.webhooks.models import ChangeNotification, Subscription
from tests.webhooks.helpers import make_subscription, notification_item, post_notifications

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription(connected_row):
    return make_subscription(connected_row)


def malformed_items(subscription):
    without_resource = notification_item(subscription, "c-1")
    del without_resource["resource"]
    without_change_type = notification_item(subscription, "c-2")
    del without_change_type["changeType"]
    return [
        without_resource,
        without_change_type,
        notification_item(subscription, "c-3", changeType=""),
        notification_item(subscription, "c-4", resource="api/v2.0/companies(x)/customers(c-4)"),
        notification_item(subscription, "c-5", change_type="renamed"),
        notification_item(subscription, "c-6", resource=["not", "text"]),
    ]


def test_signed_malformed_items_are_counted_on_their_subscription(client, subscription):
    response = post_notifications(client, [*malformed_items(subscription)])

    assert response.status_code == 202
    assert ChangeNotification.objects.count() == 0
    counted = Subscription.objects.get(pk=subscription.pk)
    assert counted.notifications_malformed == 6
    assert counted.notifications_dropped == 0  # That one counts wrong clientStates.


def test_an_unknown_change_type_is_not_stored(client, subscription):
    response = post_notifications(client, [notification_item(subscription, "c-1", change_type="x")])

    assert response.status_code == 202
    assert ChangeNotification.objects.count() == 0


@pytest.mark.parametrize("change_type", ["created", "updated", "deleted", "collection"])
def test_each_documented_change_type_is_stored(client, subscription, change_type):
    item = notification_item(subscription, "c-1", change_type=change_type)

    assert post_notifications(client, [item]).status_code == 202
    assert list(ChangeNotification.objects.values_list("change_type", flat=True)) == [change_type]
    assert Subscription.objects.get(pk=subscription.pk).notifications_malformed == 0


def test_unsigned_malformed_items_are_not_counted_as_malformed(client, subscription):
    forged = notification_item(subscription, "c-1", change_type="renamed", clientState="guess")

    post_notifications(client, [forged])

    counted = Subscription.objects.get(pk=subscription.pk)
    assert (counted.notifications_malformed, counted.notifications_dropped) == (0, 1)


def test_one_log_line_per_body_names_the_count_and_no_secret(client, subscription, caplog):
    good = notification_item(subscription, "c-9")

    with caplog.at_level(logging.INFO, logger="authentications"):
        post_notifications(client, [*malformed_items(subscription), good])

    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1
    assert "6" in lines[0]
    assert str(subscription.client_state) not in caplog.text
    assert ChangeNotification.objects.count() == 1


def test_the_admin_shows_malformed_items_on_the_subscription(admin_client, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(notifications_malformed=4)

    page = admin_client.get(f"/admin/authentications/subscription/{subscription.pk}/change/")

    assert page.status_code == 200
    assert b"Malformed notifications" in page.content


def test_a_signed_item_whose_resource_holds_a_nul_is_malformed_not_a_storage_failure(
    client, subscription
):
    """PostgreSQL cannot store a NUL: found by the fuzz, this once made every retry a 503."""
    item = notification_item(subscription, "c\x00-1")

    response = post_notifications(client, [item, notification_item(subscription, "c-2")])

    assert response.status_code == 202
    assert list(ChangeNotification.objects.values_list("record_id", flat=True)) == ["c-2"]
    assert Subscription.objects.get(pk=subscription.pk).notifications_malformed == 1


# A lone UTF-16 surrogate (`\ud800` in BC's JSON) decodes to text no UTF-8 encoder or
# database takes: found by the fuzz on PostgreSQL, it once made a 500.


def test_a_client_state_holding_a_lone_surrogate_is_a_wrong_state_not_a_500(client, subscription):
    item = notification_item(subscription, "c-1", clientState="state-\ud800")

    response = post_notifications(client, [item, notification_item(subscription, "c-2")])

    assert response.status_code == 202
    assert list(ChangeNotification.objects.values_list("record_id", flat=True)) == ["c-2"]
    assert Subscription.objects.get(pk=subscription.pk).notifications_dropped == 1


def test_a_signed_item_with_a_lone_surrogate_is_malformed_or_stored_never_a_500(
    client, subscription
):
    in_resource = notification_item(subscription, "c\ud800-1")
    in_moment = notification_item(subscription, "c-2", lastModifiedDateTime="2026-\udc00")

    response = post_notifications(client, [in_resource, in_moment])

    assert response.status_code == 202
    stored = ChangeNotification.objects.get()
    assert (stored.record_id, stored.changed_at) == ("c-2", None)
    assert Subscription.objects.get(pk=subscription.pk).notifications_malformed == 1
