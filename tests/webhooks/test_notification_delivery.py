"""Stored notifications reach the site's handlers through the task worker: at least once,
in order per record, retried with backoff, then parked until a person retries them."""

import socket
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import transaction
from django.utils import timezone

from authentications.webhooks import delivery, tasks
from authentications.webhooks import handlers as change_notifications
from authentications.webhooks.models import ChangeNotification
from tests.helpers import child_env, run_manage_py
from tests.webhooks.helpers import (
    forget_queued_tasks,
    make_deferred_tasks_due,
    make_subscription,
    notification_item,
    on_rq,
    post_notifications,
    run_worker,
)

# The worker closes its database connection between tasks, as in production: no test transaction.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.task_engines]
Status = ChangeNotification.Status


@pytest.fixture
def heard():
    """A handler for customers that records what it was given; `fail` makes it raise."""
    calls = []

    def handler(change):
        if change.record_id in handler.fail:
            raise RuntimeError(f"cannot sync {change.record_id}")
        calls.append(change)

    handler.fail = set()
    handler.calls = calls
    change_notifications.on("customers")(handler)
    yield handler
    change_notifications.disconnect("customers", handler)


@pytest.fixture
def subscription(connected_row):
    return make_subscription(connected_row)


def test_a_stored_change_reaches_the_handler_with_company_entity_id_type_and_key(
    client, subscription, heard
):
    post_notifications(client, [notification_item(subscription, "c-1", change_type="created")])

    run_worker()

    (change,) = heard.calls
    row = ChangeNotification.objects.get()
    assert (change.company_id, change.entity, change.record_id, change.change_type) == (
        subscription.company_id,
        "customers",
        "c-1",
        "created",
    )
    assert change.key == row.key and change.changed_at is not None
    assert row.status == Status.DELIVERED


def test_nothing_runs_in_the_request(client, subscription, heard):
    post_notifications(client, [notification_item(subscription, "c-1")])

    assert heard.calls == []
    assert ChangeNotification.objects.get().status == Status.PENDING


def test_changes_of_one_record_arrive_in_the_order_bc_sent_them(client, subscription, heard):
    for change_type in ("created", "updated", "deleted"):
        post_notifications(
            client, [notification_item(subscription, "c-1", change_type=change_type)]
        )

    run_worker()

    assert [change.change_type for change in heard.calls] == ["created", "updated", "deleted"]


def test_a_failing_handler_is_retried_with_backoff_and_holds_back_the_records_later_changes(
    client, subscription, heard, settings
):
    settings.BC_NOTIFICATION_RETRY_SECONDS = 60
    heard.fail.add("c-1")
    post_notifications(client, [notification_item(subscription, "c-1", change_type="created")])
    post_notifications(client, [notification_item(subscription, "c-1", change_type="updated")])
    post_notifications(client, [notification_item(subscription, "c-2")])

    run_worker()

    first, second = ChangeNotification.objects.filter(record_id="c-1").order_by("id")
    assert first.status == Status.RETRYING and first.attempts == 1
    assert "cannot sync c-1" in first.last_error
    assert first.next_attempt_at > timezone.now() + timedelta(seconds=50)
    assert second.status == Status.PENDING  # Never overtakes the failed one.
    assert [change.record_id for change in heard.calls] == ["c-2"]  # Other records go on.


def test_a_retry_that_comes_due_delivers_in_order(client, subscription, heard):
    heard.fail.add("c-1")
    post_notifications(client, [notification_item(subscription, "c-1", change_type="created")])
    post_notifications(client, [notification_item(subscription, "c-1", change_type="updated")])
    run_worker()
    heard.fail.clear()
    ChangeNotification.objects.filter(status=Status.RETRYING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    make_deferred_tasks_due()

    run_worker()

    assert [change.change_type for change in heard.calls] == ["created", "updated"]
    assert set(ChangeNotification.objects.values_list("status", flat=True)) == {Status.DELIVERED}


def test_a_handler_that_keeps_failing_is_parked_then_retried_from_the_admin(
    admin_client, client, subscription, heard, settings
):
    settings.BC_NOTIFICATION_MAX_ATTEMPTS = 3
    heard.fail.add("c-1")
    post_notifications(client, [notification_item(subscription, "c-1")])
    for _ in range(3):
        run_worker()
        ChangeNotification.objects.filter(status=Status.RETRYING).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        make_deferred_tasks_due()
    parked = ChangeNotification.objects.get()
    assert (parked.status, parked.attempts) == (Status.PARKED, 3)
    listing = admin_client.get("/admin/authentications/changenotification/?status=parked")
    assert b"cannot sync c-1" in listing.content

    heard.fail.clear()
    admin_client.post(
        "/admin/authentications/changenotification/",
        {"action": "retry", "_selected_action": [parked.pk]},
    )
    run_worker()

    assert ChangeNotification.objects.get().status == Status.DELIVERED
    assert [change.record_id for change in heard.calls] == ["c-1"]


def test_a_collection_becomes_one_resync_with_bcs_filter(client, subscription, heard):
    resource = (
        f"api/v2.0/companies({subscription.company_id})/customers"
        "?$filter=lastModifiedDateTime%20gt%202026-11-30T10:00:00Z"
    )
    post_notifications(
        client, [notification_item(subscription, change_type="collection", resource=resource)]
    )

    run_worker()

    (change,) = heard.calls
    assert change.is_resync
    assert change.filter == "lastModifiedDateTime gt 2026-11-30T10:00:00Z"
    assert change.record_id == ""


def test_a_delivery_whose_worker_died_is_queued_again_by_cron(client, subscription, heard):
    post_notifications(client, [notification_item(subscription, "c-1")])
    # The worker claimed it, then was killed: the claim lapses, the task is gone.
    ChangeNotification.objects.update(
        status=Status.DELIVERING, claimed_until=timezone.now() - timedelta(seconds=1)
    )
    forget_queued_tasks()
    run_worker()
    assert heard.calls == []

    assert tasks.requeue_stalled() == 1
    run_worker()

    assert [change.record_id for change in heard.calls] == ["c-1"]


def test_a_queue_restarted_empty_loses_no_change_and_repeats_none(client, subscription, heard):
    """Redis restarted with nothing on disk (or the task table wiped): the inbox rows are the
    truth, cron queues the waiting ones again and what was delivered is not delivered again."""
    post_notifications(client, [notification_item(subscription, f"c-{n}") for n in (1, 2)])
    run_worker()
    post_notifications(client, [notification_item(subscription, f"c-{n}") for n in (3, 4)])
    forget_queued_tasks()
    run_worker()
    assert [change.record_id for change in heard.calls] == ["c-1", "c-2"]

    ChangeNotification.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    assert tasks.requeue_stalled() == 2  # Minutes later, cron: the two waiting records.
    run_worker()

    assert [change.record_id for change in heard.calls] == ["c-1", "c-2", "c-3", "c-4"]
    assert set(ChangeNotification.objects.values_list("status", flat=True)) == {Status.DELIVERED}


def test_a_queue_outside_the_database_hears_of_changes_only_once_they_are_committed(
    client, settings, subscription, heard
):
    """A worker told before the commit would look for rows it cannot see yet."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

    with pytest.raises(RuntimeError), transaction.atomic():
        post_notifications(client, [notification_item(subscription, "c-1")])
        assert heard.calls == []  # Not before the commit ...
        raise RuntimeError("rolled back")
    post_notifications(client, [notification_item(subscription, "c-2")])

    # ... never for a transaction that rolled back, at once after one that committed.
    assert [change.record_id for change in heard.calls] == ["c-2"]


def test_a_queue_that_cannot_be_reached_keeps_the_change_for_cron(
    client, subscription, heard, settings, caplog, monkeypatch
):
    """RQ with Redis down: BC still gets its 202, the row waits, cron queues it later."""
    down = {"URL": f"redis://127.0.0.1:{closed_port()}/0"}
    settings.RQ_QUEUES = {"default": down}
    if not apps.is_installed("django_rq"):
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django_rq", "django_tasks_rq"]
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    import django_rq.settings

    monkeypatch.setitem(django_rq.settings.QUEUES, "default", down)  # Read once, at import.

    answer = post_notifications(client, [notification_item(subscription, "c-1")])

    assert answer.status_code == 202
    assert ChangeNotification.objects.get().status == Status.PENDING
    assert "Could not queue the delivery of 1 record(s) (ConnectionError)" in caplog.text


def test_two_workers_never_deliver_the_same_notification(client, subscription, heard):
    post_notifications(client, [notification_item(subscription, "c-1")])
    row = ChangeNotification.objects.get()

    first = delivery._claim_next(row.record_key)
    second = delivery._claim_next(row.record_key)

    assert first is not None and second is None


def test_handlers_named_in_settings_are_imported_by_the_worker(settings, monkeypatch):
    monkeypatch.setattr(change_notifications, "_imported", type(change_notifications._imported)())
    settings.BC_NOTIFICATION_HANDLERS = ["tests.fakes.no_such_module_for_handlers"]

    with pytest.raises(ModuleNotFoundError):
        change_notifications.handlers_for("customers")


def test_another_tasks_backend_is_a_setting_not_a_code_change(
    client, subscription, heard, settings
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

    post_notifications(client, [notification_item(subscription, "c-1")])

    assert [change.record_id for change in heard.calls] == ["c-1"]  # Ran at once, no worker.
    assert ChangeNotification.objects.get().status == Status.DELIVERED


def test_tasks_backend_names_the_backend_class():
    code = "from django_tasks import task_backends; print(type(task_backends['default']).__name__)"
    immediate = "django_tasks.backends.immediate.ImmediateBackend"

    default = run_manage_py("shell", "--no-imports", "-c", code, env=child_env())
    expected = "RQBackend" if on_rq() else "DatabaseBackend"
    switched = run_manage_py(
        "shell", "--no-imports", "-c", code, env=child_env(TASKS_BACKEND=immediate)
    )

    assert (default.stdout.strip(), switched.stdout.strip()) == (expected, "ImmediateBackend")


def test_on_rq_every_redis_connection_has_its_timeouts():
    """django-rq ignores REDIS_CLIENT_KWARGS beside a URL: the timeouts ride in the URL."""
    code = (
        "import django_rq; k = django_rq.get_connection('default').connection_pool"
        ".connection_kwargs; print(k['socket_timeout'], k['socket_connect_timeout'], k['db'])"
    )
    rq = {"TASKS_BACKEND": "django_tasks_rq.RQBackend"}

    default = run_manage_py(
        "shell", "--no-imports", "-c", code, env=child_env(**rq, REDIS_URL="redis://h:6379/4")
    )
    own = run_manage_py(
        "shell", "--no-imports", "-c", code,
        env=child_env(**rq, REDIS_URL="redis://h:6379/5?socket_timeout=2.5"),
    )  # fmt: skip

    assert default.stdout.split() == ["10.0", "10.0", "4"], default.stderr
    assert own.stdout.split() == ["2.5", "10.0", "5"], own.stderr


@pytest.mark.skipif("not on_rq()")
def test_on_rq_queueing_many_deliveries_opens_one_redis_connection():
    """django-rq's fresh client per queue opened a connection for every task queued."""
    import django_rq

    from authentications.webhooks.tasks import queue_delivery

    def opened():
        return django_rq.get_connection("default").info("stats")["total_connections_received"]

    queue_delivery(["1:warm"])  # This process's client exists and is connected.
    before = opened()
    for number in range(5):
        queue_delivery([f"1:c-{number}"])

    assert opened() - before <= 1  # At most the probe's own; was 5 more.


def closed_port():
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
