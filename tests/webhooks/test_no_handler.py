"""A change nobody handles is not "Delivered": it waits as "No handler" until one exists.

BC notifies whatever was subscribed; a site that subscribed to vendors but never registered a
vendors handler (or lost it in a deploy) must not have those changes marked done and lost.
"""

import io

import pytest
from django.core.management import call_command

from authentications import checks
from authentications.webhooks import handlers, tasks
from authentications.webhooks.models import ChangeNotification
from tests.helpers import child_env, run_manage_py
from tests.webhooks.helpers import (
    make_subscription,
    notification_item,
    post_notifications,
    run_worker,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.task_engines]
Status = ChangeNotification.Status
LIST = "/admin/authentications/changenotification/"


@pytest.fixture
def vendors(connected_row):
    return make_subscription(connected_row, entity="vendors")


@pytest.fixture
def vendor_handler():
    """Registers a vendors handler when the test calls it (a deploy that adds one)."""
    calls = []

    def handler(change):
        calls.append((change.record_id, change.change_type))

    def register():
        handlers.on("vendors")(handler)
        return handler

    handler.calls = calls
    yield register
    handlers.disconnect("vendors", handler)


def test_a_change_with_no_handler_is_no_handler_not_delivered(client, vendors):
    post_notifications(client, [notification_item(vendors, "v-1", change_type="created")])

    run_worker()

    row = ChangeNotification.objects.get()
    assert row.status == Status.NO_HANDLER
    assert row.delivered_at is None and row.attempts == 0


def test_no_handler_rows_need_attention_in_the_admin(admin_client, client, vendors):
    post_notifications(client, [notification_item(vendors, "v-1")])
    run_worker()

    listing = admin_client.get(LIST, {"attention": "yes"})

    assert listing.status_code == 200
    assert "v-1" in listing.content.decode() and "No handler" in listing.content.decode()


def test_check_reports_changes_nobody_handles(client, vendors):
    post_notifications(
        client, [notification_item(vendors, "v-1"), notification_item(vendors, "v-2")]
    )
    run_worker()

    (warning,) = checks.check_undelivered_notifications(None, databases=["default"])

    assert warning.id == "bcconnect.W003"
    assert "2 change notifications of vendors have no handler" in warning.msg
    assert "replay_notifications" in warning.hint


def test_a_later_change_of_the_record_waits_behind_it_and_both_replay_in_order(
    client, vendors, vendor_handler
):
    post_notifications(client, [notification_item(vendors, "v-1", change_type="created")])
    run_worker()
    post_notifications(client, [notification_item(vendors, "v-1", change_type="updated")])
    run_worker()
    first, second = ChangeNotification.objects.order_by("id")
    assert (first.status, second.status) == (Status.NO_HANDLER, Status.PENDING)

    handler = vendor_handler()
    out = io.StringIO()
    call_command("replay_notifications", stdout=out)
    run_worker()

    assert handler.calls == [("v-1", "created"), ("v-1", "updated")]
    assert set(ChangeNotification.objects.values_list("status", flat=True)) == {Status.DELIVERED}
    assert "Queued 1 notification of vendors again" in out.getvalue()


def test_the_admin_action_replays_them_once_a_handler_exists(
    admin_client, client, vendors, vendor_handler
):
    post_notifications(client, [notification_item(vendors, "v-1")])
    run_worker()
    row = ChangeNotification.objects.get()
    refused = admin_client.post(
        LIST, {"action": "retry", "_selected_action": [row.pk]}, follow=True
    )
    assert "still no handler for vendors" in refused.content.decode()
    run_worker()
    assert ChangeNotification.objects.get().status == Status.NO_HANDLER

    handler = vendor_handler()
    admin_client.post(LIST, {"action": "retry", "_selected_action": [row.pk]})
    run_worker()

    assert handler.calls == [("v-1", "updated")]
    assert ChangeNotification.objects.get().status == Status.DELIVERED


def test_cron_queues_them_again_after_a_deploy_adds_a_handler(client, vendors, vendor_handler):
    post_notifications(client, [notification_item(vendors, "v-1")])
    run_worker()
    assert tasks.requeue_stalled() == 0  # Still nobody to give it to.

    handler = vendor_handler()
    assert tasks.requeue_stalled() == 1
    run_worker()

    assert handler.calls == [("v-1", "updated")]


def test_replaying_an_entity_nobody_handles_is_one_line_and_changes_nothing(client, vendors):
    post_notifications(client, [notification_item(vendors, "v-1")])
    run_worker()

    result = run_manage_py("replay_notifications", "--entity", "vendors", env=child_env())

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "CommandError: No handler is registered for vendors: register one with "
        '@handlers.on("vendors") (BC_NOTIFICATION_HANDLERS), then replay.'
    ]
    assert ChangeNotification.objects.get().status == Status.NO_HANDLER


def test_migrate_on_a_fresh_database_is_not_stopped_by_the_check(tmp_path):
    env = child_env() | {"DATABASE_URL": f"sqlite:///{tmp_path}/fresh.sqlite3"}

    result = run_manage_py("migrate", "--noinput", "-v0", env=env)

    assert result.returncode == 0, result.stderr
