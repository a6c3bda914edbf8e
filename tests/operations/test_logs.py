"""Opt-in JSON logs (LOG_FORMAT=json) and a request id that follows a request into its tasks."""

import json
import logging
import re

import pytest
from django_tasks_db.models import DBTaskResult

from authentications.kit import request_context
from authentications.webhooks.models import ChangeNotification
from tests.helpers import run_manage_py
from tests.webhooks.helpers import (
    make_subscription,
    notification_item,
    post_notifications,
    run_worker,
)

LOG_LINE = "import logging; logging.getLogger('authentications.demo').warning('Refreshed %s', 'Ä')"


def test_json_logs_are_one_object_a_line(gunicorn_env):
    result = run_manage_py("shell", "-c", LOG_LINE, env={**gunicorn_env, "LOG_FORMAT": "json"})

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stderr.strip().splitlines()[-1])
    assert record["message"] == "Refreshed Ä"
    assert record["level"] == "WARNING"
    assert record["logger"] == "authentications.demo"
    assert record["request_id"] == ""
    assert re.match(r"\d{4}-\d\d-\d\d", record["time"])


def test_text_logs_stay_the_default(gunicorn_env):
    result = run_manage_py("shell", "-c", LOG_LINE, env=gunicorn_env)

    assert result.stderr.strip().splitlines()[-1] == "Refreshed Ä"


def test_an_unknown_log_format_stops_start_up_with_one_line(gunicorn_env):
    result = run_manage_py("check", env={**gunicorn_env, "LOG_FORMAT": "yaml"})

    assert result.returncode != 0
    assert result.stderr.strip() == "bcconnect: LOG_FORMAT must be text or json."


@pytest.mark.django_db
def test_every_answer_names_its_request_id(client):
    first = client.get("/health/live")["X-Request-ID"]
    second = client.get("/no-such-page")["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


@pytest.mark.django_db
def test_a_trusted_proxys_request_id_is_kept_and_a_forged_one_replaced(client, settings):
    settings.LOG_REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"

    kept = client.get("/health/live", headers={"X-Request-ID": "lb-2f6c1a9e-7781"})
    replaced = client.get("/health/live", headers={"X-Request-ID": 'x"\n{"level": "ERROR"}'})

    assert kept["X-Request-ID"] == "lb-2f6c1a9e-7781"
    assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"])


@pytest.fixture
def request_ids_on_records(caplog):
    """The records caplog keeps carry `request_id`, as the console handler's do."""
    request_id_filter = request_context.RequestIdFilter()
    caplog.handler.addFilter(request_id_filter)
    caplog.set_level(logging.INFO)
    yield caplog
    caplog.handler.removeFilter(request_id_filter)


@pytest.mark.django_db(transaction=True)
def test_the_request_id_follows_a_notification_into_its_delivery_task(
    client, connected_row, request_ids_on_records
):
    vendors = make_subscription(connected_row, entity="vendors")  # No handler: it logs.

    answer = post_notifications(client, [notification_item(vendors, "v-1")])
    request_id = answer["X-Request-ID"]
    queued = DBTaskResult.objects.get()
    run_worker()

    assert queued.args_kwargs["kwargs"] == {"request_id": request_id}
    assert ChangeNotification.objects.get().status == ChangeNotification.Status.NO_HANDLER
    delivery_lines = [
        record
        for record in request_ids_on_records.records
        if record.name == "authentications.webhooks.delivery"
    ]
    assert delivery_lines and all(r.request_id == request_id for r in delivery_lines)


@pytest.mark.django_db(transaction=True)
def test_a_task_queued_outside_any_request_gets_an_id_of_its_own(
    connected_row, request_ids_on_records
):
    from authentications.webhooks.tasks import queue_delivery

    vendors = make_subscription(connected_row, entity="vendors")
    ChangeNotification.objects.create(
        subscription=vendors,
        key="k-1",
        record_key="vendors(v-1)",
        entity="vendors",
        change_type="updated",
        resource="api/v2.0/companies(1)/vendors(v-1)",
    )
    queue_delivery(["vendors(v-1)"])
    run_worker()

    delivery_lines = [
        record
        for record in request_ids_on_records.records
        if record.name == "authentications.webhooks.delivery"
    ]
    assert delivery_lines
    assert all(re.fullmatch(r"[0-9a-f]{32}", r.request_id) for r in delivery_lines)
