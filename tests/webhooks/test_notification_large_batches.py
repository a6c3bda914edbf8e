"""A large batch from BC is accepted; past the limit BC is asked to retry, never told 4xx.

BC deactivates a subscription whose URL answers a 4xx (other than 408 and 429), so a batch
that is merely large must never get one: well-formed batches of 10 MiB are stored, read in
chunks with memory bounded, and a body over BC_NOTIFICATION_MAX_BYTES gets a 503 with
Retry-After, a log line and a count on the subscriptions it names.
"""

import io
import json
import logging
import tracemalloc

import pytest
from django.test import RequestFactory

from authentications.webhooks import inbox, views
from authentications.webhooks.models import ChangeNotification, Subscription
from tests.webhooks.helpers import (
    NOTIFICATIONS_PATH,
    make_subscription,
    notification_item,
    post_notifications,
)

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


@pytest.fixture
def subscription(connected_row):
    return make_subscription(connected_row)


def batch_of_at_least(subscription, size, **extra):
    """BC's body of distinct changes of `subscription`, at least `size` bytes long."""
    one = len(json.dumps(notification_item(subscription, "c-000000", **extra))) + 2
    items = [
        notification_item(subscription, f"c-{number:06d}", **extra)
        for number in range(size // one + 1)
    ]
    body = json.dumps({"value": items}).encode()
    assert len(body) >= size
    return items, body


def test_a_ten_mebibyte_batch_is_accepted_and_stored_whole(client, subscription):
    items, body = batch_of_at_least(subscription, 10 * MIB)

    response = client.post(NOTIFICATIONS_PATH, body, content_type="application/json")

    assert response.status_code == 202
    assert ChangeNotification.objects.count() == len(items)
    assert Subscription.objects.get(pk=subscription.pk).notifications_received == len(items)


def test_the_limit_is_a_setting_of_at_least_ten_mebibytes(settings):
    assert settings.BC_NOTIFICATION_MAX_BYTES >= 10 * MIB


def test_a_body_over_the_limit_is_answered_503_with_retry_after(
    client, settings, subscription, caplog
):
    settings.BC_NOTIFICATION_MAX_BYTES = 4_000
    _, body = batch_of_at_least(subscription, 5_000)

    with caplog.at_level(logging.INFO, logger="authentications"):
        response = client.post(NOTIFICATIONS_PATH, body, content_type="application/json")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert ChangeNotification.objects.count() == 0
    refused = Subscription.objects.get(pk=subscription.pk)
    assert refused.oversize_refused == 1 and refused.last_oversize_at is not None
    assert refused.notifications_received == 0
    lines = [
        r.getMessage() for r in caplog.records if "BC_NOTIFICATION_MAX_BYTES" in r.getMessage()
    ]
    assert len(lines) == 1 and "503" in lines[0]
    assert str(subscription.client_state) not in caplog.text


def test_a_body_without_a_length_is_cut_at_the_limit_and_answered_503(settings, subscription):
    """gunicorn passes a chunked body on with no CONTENT_LENGTH: the limit still holds."""
    settings.BC_NOTIFICATION_MAX_BYTES = 4_000
    _, body = batch_of_at_least(subscription, 5_000)

    response = views.notifications(_request(body, chunked=True))

    assert response.status_code == 503
    assert ChangeNotification.objects.count() == 0
    assert Subscription.objects.get(pk=subscription.pk).oversize_refused == 1


def test_a_body_without_a_length_within_the_limit_is_stored(subscription):
    items, body = batch_of_at_least(subscription, 5_000)

    response = views.notifications(_request(body, chunked=True))

    assert response.status_code == 202
    assert ChangeNotification.objects.count() == len(items)


def test_the_refusal_is_counted_only_on_live_subscriptions_of_ours_proven_by_client_state(
    client, settings, connected_row
):
    settings.BC_NOTIFICATION_MAX_BYTES = 4_000
    customers = make_subscription(connected_row)
    items = make_subscription(connected_row, entity="items")
    forged = make_subscription(connected_row, entity="vendors")
    stopped = make_subscription(
        connected_row, entity="salesOrders", status=Subscription.Status.STOPPED
    )
    named = [
        notification_item(customers, "c-1"),
        notification_item(items, "i-1"),
        notification_item(forged, "v-1", clientState="guess"),
        notification_item(stopped, "s-1"),
    ]
    padding = [notification_item(customers, f"c-{n}") for n in range(2, 40)]

    response = post_notifications(client, named + padding)

    assert response.status_code == 503
    counts = dict(Subscription.objects.values_list("entity", "oversize_refused"))
    assert counts == {"customers": 1, "items": 1, "vendors": 0, "salesOrders": 0}


def test_an_oversize_body_naming_none_of_ours_is_503_and_says_so_in_the_log(
    client, settings, subscription, caplog
):
    settings.BC_NOTIFICATION_MAX_BYTES = 4_000
    _, body = batch_of_at_least(subscription, 5_000, subscriptionId="not-ours")

    with caplog.at_level(logging.INFO, logger="authentications"):
        response = client.post(NOTIFICATIONS_PATH, body, content_type="application/json")

    assert response.status_code == 503
    assert Subscription.objects.get(pk=subscription.pk).oversize_refused == 0
    assert "no subscription of ours" in caplog.text


def test_an_oversize_body_of_another_content_type_keeps_its_415(client, settings, subscription):
    settings.BC_NOTIFICATION_MAX_BYTES = 4_000
    _, body = batch_of_at_least(subscription, 5_000)

    assert client.post(NOTIFICATIONS_PATH, body, content_type="text/plain").status_code == 415


def test_memory_does_not_grow_with_the_batch(settings, subscription):
    """Neither the body nor its parsed tree is held whole: 16 MiB costs what 4 MiB costs.

    Both bodies hold more than one batch (inbox.BATCH_ITEMS), the unit of what is held."""
    settings.BC_NOTIFICATION_MAX_BYTES = 32 * MIB
    _peak(_request(batch_of_at_least(subscription, 10_000)[1]))  # Imports, caches: warm.
    small = batch_of_at_least(subscription, 4 * MIB, padding="s" * 1_000)[1]
    large = batch_of_at_least(subscription, 16 * MIB, padding="l" * 1_000)[1]
    assert small.count(b'"subscriptionId"') > inbox.BATCH_ITEMS

    small_peak, large_peak = _peak(_request(small)), _peak(_request(large))

    assert large_peak < 1.5 * small_peak, f"{small_peak:,} then {large_peak:,} bytes"
    assert large_peak < len(large) / 3, f"peak {large_peak:,} for a body of {len(large):,}"


def _peak(request):
    tracemalloc.start()
    try:
        response = views.notifications(request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 202
    return peak


def test_the_admin_shows_oversize_refusals_on_the_subscription(admin_client, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(oversize_refused=3)

    page = admin_client.get(f"/admin/authentications/subscription/{subscription.pk}/change/")

    assert page.status_code == 200
    assert b"Oversize bodies refused" in page.content
    assert b"Last oversize body" in page.content


def _request(body, *, chunked=False):
    """A request as a WSGI server hands it on; chunked: no CONTENT_LENGTH, as gunicorn does."""
    extra = {"wsgi.input": io.BytesIO(body)}
    if chunked:
        extra.update({"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    return RequestFactory().post(NOTIFICATIONS_PATH, body, content_type="application/json", **extra)


def test_an_oversize_body_that_is_not_even_text_is_still_a_503(client, settings, subscription):
    """Found by the fuzz: a prefix the JSON decoder refuses outright once made a 500."""
    settings.BC_NOTIFICATION_MAX_BYTES = 4_000
    body = b"\x00\x00" + batch_of_at_least(subscription, 5_000)[1]

    response = client.post(NOTIFICATIONS_PATH, body, content_type="application/json")

    assert response.status_code == 503
    assert Subscription.objects.get(pk=subscription.pk).oversize_refused == 0


def _counted(sql):
    return "bcconnect_cache" not in sql and not sql.startswith(
        ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
    )


def test_queries_grow_with_batches_and_insert_chunks_never_per_item(client, subscription):
    """A batch costs a fixed handful of queries plus one INSERT per 500 rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(count, start):
        items = [notification_item(subscription, f"c-{start + n}") for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            assert post_notifications(client, items).status_code == 202
        # The rate limit's counter lives in the database cache: its queries and savepoints
        # vary (the first of a window creates it) and are not the batch's.
        return len([query for query in captured if _counted(query["sql"])])

    one = queries(1, 0)
    assert queries(1_500, 10_000) == one + 2  # Three INSERTs of 500 rows instead of one.
    assert queries(4_500, 20_000) <= 3 * one + 9  # Three batches, each as one.


def test_an_oversize_body_with_a_client_state_that_is_no_text_is_a_503(
    client, settings, subscription
):
    settings.BC_NOTIFICATION_MAX_BYTES = 4_000
    _, body = batch_of_at_least(subscription, 5_000, clientState=["a", "list"])

    response = client.post(NOTIFICATIONS_PATH, body, content_type="application/json")

    assert response.status_code == 503
    assert Subscription.objects.get(pk=subscription.pk).oversize_refused == 0


def test_a_body_that_cannot_be_spooled_to_disk_is_a_503(client, settings, subscription, tmp_path):
    """Past 1 MiB the body goes to FILE_UPLOAD_TEMP_DIR: a full or missing disk is a retry."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "gone")
    items, body = batch_of_at_least(subscription, 2 * MIB)

    response = client.post(NOTIFICATIONS_PATH, body, content_type="application/json")

    assert response.status_code == 503
    assert ChangeNotification.objects.count() == 0
