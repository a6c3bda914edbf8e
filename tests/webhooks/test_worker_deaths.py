"""A handler that stops its worker (a BaseException, os._exit, the OOM killer) is counted and,
after BC_NOTIFICATION_MAX_ATTEMPTS claims that never finished, parked: the worker does not
crash-loop on it and other records go on. (The real dying process: test_notification_worker.)
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from authentications.webhooks import delivery, handlers, tasks
from authentications.webhooks.models import ChangeNotification
from tests.webhooks.helpers import (
    make_deferred_tasks_due,
    make_subscription,
    notification_item,
    post_notifications,
    run_worker,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.task_engines]
Status = ChangeNotification.Status


@pytest.fixture
def exiting():
    """A customers handler that raises SystemExit for c-poison and records the others."""
    calls = []

    def handler(change):
        if change.record_id == "c-poison":
            raise SystemExit(3)
        calls.append(change.record_id)

    handler.calls = calls
    handlers.on("customers")(handler)
    yield handler
    handlers.disconnect("customers", handler)


@pytest.fixture
def subscription(connected_row):
    return make_subscription(connected_row)


def _make_retries_due():
    now = timezone.now()
    ChangeNotification.objects.filter(status=Status.RETRYING).update(next_attempt_at=now)
    make_deferred_tasks_due()


def test_an_attempt_is_counted_when_the_delivery_is_claimed(client, subscription, exiting):
    post_notifications(client, [notification_item(subscription, "c-1")])
    row = ChangeNotification.objects.get()

    claimed = delivery._claim_next(row.record_key)

    row.refresh_from_db()
    assert claimed is not None
    assert (row.status, row.attempts) == (Status.DELIVERING, 1)
    assert row.handler.endswith("exiting.<locals>.handler")


def test_a_handler_raising_system_exit_is_counted_then_parked_and_others_go_on(
    client, subscription, exiting, settings
):
    settings.BC_NOTIFICATION_MAX_ATTEMPTS = 2
    post_notifications(client, [notification_item(subscription, "c-poison")])
    post_notifications(client, [notification_item(subscription, "c-1")])

    run_worker()
    poison = ChangeNotification.objects.get(record_id="c-poison")
    assert (poison.status, poison.attempts) == (Status.RETRYING, 1)
    _make_retries_due()
    run_worker()

    poison.refresh_from_db()
    assert (poison.status, poison.attempts) == (Status.PARKED, 2)
    assert "SystemExit" in poison.last_error and "exiting.<locals>.handler" in poison.last_error
    assert exiting.calls == ["c-1"]


def test_a_claim_whose_worker_died_max_times_is_parked_naming_the_handler(
    client, subscription, exiting, settings
):
    settings.BC_NOTIFICATION_MAX_ATTEMPTS = 3
    post_notifications(client, [notification_item(subscription, "c-1", change_type="created")])
    post_notifications(client, [notification_item(subscription, "c-1", change_type="updated")])
    first = ChangeNotification.objects.order_by("id").first()
    # Three workers claimed it and died in the handler; the last claim has lapsed.
    ChangeNotification.objects.filter(pk=first.pk).update(
        status=Status.DELIVERING,
        attempts=3,
        handler="myapp.bc_handlers.customer_changed",
        claimed_until=timezone.now() - timedelta(seconds=1),
    )

    delivered = delivery.deliver_record(first.record_key, retry=tasks.queue_retry)

    first.refresh_from_db()
    assert delivered == 0 and exiting.calls == []
    assert first.status == Status.PARKED
    assert first.last_error.startswith(
        "Worker died while handling (myapp.bc_handlers.customer_changed)"
    )
    assert ChangeNotification.objects.exclude(pk=first.pk).get().status == Status.PENDING


def test_cron_parks_a_dead_claim_that_ran_out_of_attempts(client, subscription, settings):
    settings.BC_NOTIFICATION_MAX_ATTEMPTS = 2
    post_notifications(client, [notification_item(subscription, "c-1")])
    ChangeNotification.objects.update(
        status=Status.DELIVERING,
        attempts=2,
        handler="myapp.bc_handlers.customer_changed",
        claimed_until=timezone.now() - timedelta(seconds=1),
    )

    tasks.requeue_stalled()

    row = ChangeNotification.objects.get()
    assert row.status == Status.PARKED and "Worker died while handling" in row.last_error
