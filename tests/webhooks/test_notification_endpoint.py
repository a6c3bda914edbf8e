"""BC posts notifications to one public URL: verified items are stored before the 202."""

import json

import pytest
from django.db import connection
from django.utils import timezone

from authentications.webhooks.models import ChangeNotification, Subscription
from tests.webhooks.helpers import (
    NOTIFICATIONS_PATH,
    make_subscription,
    notification_item,
    post_notifications,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription(connected_row):
    return make_subscription(connected_row)


def test_notifications_of_two_subscriptions_in_one_post_are_stored_before_202(
    client, connected_row
):
    customers = make_subscription(connected_row)
    items = make_subscription(connected_row, entity="items")

    response = post_notifications(
        client, [notification_item(customers, "c-1"), notification_item(items, "i-1")]
    )

    assert response.status_code == 202
    stored = {(row.subscription_id, row.record_id) for row in ChangeNotification.objects.all()}
    assert stored == {(customers.pk, "c-1"), (items.pk, "i-1")}
    counted = Subscription.objects.get(pk=customers.pk)
    assert counted.notifications_received == 1 and counted.last_notification_at is not None


def test_a_notification_sent_twice_by_bc_is_stored_once(client, subscription):
    item = notification_item(subscription, "c-1")

    post_notifications(client, [item])
    response = post_notifications(client, [item])

    assert response.status_code == 202
    assert ChangeNotification.objects.count() == 1


def test_wrong_client_state_is_dropped_counted_and_still_answered_202(client, subscription):
    """A 4xx would make BC delete our subscription: a forger must not achieve that."""
    forged = notification_item(subscription, "c-1", clientState="guess")

    response = post_notifications(client, [forged])

    assert response.status_code == 202
    assert ChangeNotification.objects.count() == 0
    counted = Subscription.objects.get(pk=subscription.pk)
    assert counted.notifications_dropped == 1 and counted.last_notification_at is None


def test_forged_items_beside_real_ones_do_not_stop_the_real_ones(client, subscription):
    response = post_notifications(
        client,
        [
            notification_item(subscription, "c-1", clientState="x"),
            notification_item(subscription, "c-2"),
        ],
    )

    assert response.status_code == 202
    assert list(ChangeNotification.objects.values_list("record_id", flat=True)) == ["c-2"]


def test_an_unknown_subscription_is_answered_404_so_bc_deletes_it(client, subscription):
    stranger = notification_item(subscription, "c-1", subscriptionId="not-ours")

    response = post_notifications(client, [stranger])

    assert response.status_code == 404
    assert ChangeNotification.objects.count() == 0


def test_a_stopped_subscription_is_answered_404(client, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.STOPPED)

    assert post_notifications(client, [notification_item(subscription, "c-1")]).status_code == 404


def test_a_subscription_still_being_created_is_asked_to_retry(client, connected_row):
    creating = make_subscription(
        connected_row,
        subscription_id="",
        status=Subscription.Status.PENDING,
        handshake_until=timezone.now() + timezone.timedelta(seconds=30),
    )

    item = notification_item(creating, "c-1", subscriptionId="new-id-bc-just-made")

    assert post_notifications(client, [item]).status_code == 503


def test_an_item_for_another_resource_is_dropped(client, subscription):
    item = notification_item(
        subscription, "c-1", resource="api/v2.0/companies(other)/customers(c-1)"
    )

    assert post_notifications(client, [item]).status_code == 202
    assert ChangeNotification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_storage_failure_answers_503_so_bc_sends_it_again(client, subscription):
    table = ChangeNotification._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")  # The disk is gone.
    try:
        response = post_notifications(client, [notification_item(subscription, "c-1")])
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")

    assert response.status_code == 503
    assert ChangeNotification.objects.count() == 0
    assert post_notifications(client, [notification_item(subscription, "c-1")]).status_code == 202


@pytest.mark.parametrize(
    "body, content_type, status",
    [
        (b"{not json", "application/json", 400),
        (b'{"value": []}', "application/json", 400),
        (b'{"value": "x"}', "application/json", 400),
        (b'{"value": [1, 2]}', "application/json", 400),
        (b"[]", "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b" " * 1_100_000, "application/json", 400),  # Within the limit: not JSON.
        (b'{"value": [{}]}', "text/plain", 415),
        (b'{"value": [{}]}', "application/x-www-form-urlencoded", 415),
        (b'{"value": [{"subscriptionId": 5, "clientState": null}]}', "application/json", 404),
    ],
)
def test_hostile_bodies_get_a_4xx_never_a_500(client, subscription, body, content_type, status):
    response = client.post(NOTIFICATIONS_PATH, body, content_type=content_type)

    assert response.status_code == status
    assert ChangeNotification.objects.count() == 0


def test_deeply_nested_json_within_the_size_limit_is_a_400(client, settings, subscription):
    settings.BC_NOTIFICATION_MAX_BYTES = 10_000_000

    response = client.post(
        NOTIFICATIONS_PATH, b"[" * 200_000 + b"]" * 200_000, content_type="application/json"
    )

    assert response.status_code == 400


def test_a_body_over_the_limit_is_answered_503_not_413(client, settings, subscription):
    """BC deletes a subscription whose URL answers 413; a 503 it retries."""
    settings.BC_NOTIFICATION_MAX_BYTES = 100
    items = [notification_item(subscription, "c-1")]

    response = post_notifications(client, items)

    assert response.status_code == 503
    assert response["Retry-After"]
    assert ChangeNotification.objects.count() == 0


def test_get_is_not_allowed(client):
    assert client.get(NOTIFICATIONS_PATH).status_code == 405


def test_notifications_are_rate_limited_per_client(client, settings, subscription):
    settings.BC_NOTIFICATION_RATE_LIMIT = "2/minute"
    items = [notification_item(subscription, "c-1")]

    answers = [post_notifications(client, items).status_code for _ in range(3)]

    assert answers == [202, 202, 429]


# --- the handshake --------------------------------------------------------------------------


def test_the_handshake_echoes_the_token_while_our_request_is_at_bc(client, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(
        handshake_until=timezone.now() + timezone.timedelta(seconds=30)
    )

    response = client.post(f"{NOTIFICATIONS_PATH}?validationToken=abc-123")

    assert response.status_code == 200
    assert response.content == b"abc-123"
    assert response["Content-Type"].startswith("text/plain")


def test_a_handshake_nobody_asked_for_is_refused(client, subscription):
    response = client.post(f"{NOTIFICATIONS_PATH}?validationToken=abc-123")

    assert response.status_code == 403
    assert b"abc-123" not in response.content


def test_a_handshake_after_the_window_closed_is_refused(client, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(
        handshake_until=timezone.now() - timezone.timedelta(seconds=1)
    )

    assert client.post(f"{NOTIFICATIONS_PATH}?validationToken=abc").status_code == 403


@pytest.mark.parametrize("token", ["", "a\nb", "x" * 2000])
def test_an_odd_validation_token_is_a_400(client, subscription, token):
    Subscription.objects.filter(pk=subscription.pk).update(
        handshake_until=timezone.now() + timezone.timedelta(seconds=30)
    )

    response = client.post(f"{NOTIFICATIONS_PATH}?{_query(token)}")

    assert response.status_code == 400


def _query(token):
    from urllib.parse import urlencode

    return urlencode({"validationToken": token})


def test_the_answer_holds_no_client_state(client, subscription):
    item = notification_item(subscription, "c-1")

    response = post_notifications(client, [item])

    assert str(subscription.client_state).encode() not in response.content
    assert json.dumps(item).encode() not in response.content


def test_a_post_of_more_items_than_one_insert_takes_stores_them_all(client, subscription):
    items = [notification_item(subscription, f"c-{number}") for number in range(1_201)]

    response = post_notifications(client, items)

    assert response.status_code == 202
    assert ChangeNotification.objects.count() == 1_201
    assert Subscription.objects.get(pk=subscription.pk).notifications_received == 1_201


def test_a_subscription_id_with_a_nul_is_not_ours_on_any_database(client, subscription):
    """Found by the fuzz on PostgreSQL, which refuses a NUL in a query: a 503, not a 404."""
    stranger = notification_item(subscription, "c-1", subscriptionId="\x00")

    assert post_notifications(client, [stranger]).status_code == 404


def test_with_the_cache_unreachable_notifications_are_a_503_bc_retries(
    client, unreachable_cache, subscription
):
    response = post_notifications(client, [notification_item(subscription, "c-1")])

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert ChangeNotification.objects.count() == 0
