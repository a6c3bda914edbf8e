"""Fuzz the public notification endpoint and its handshake as BC and strangers may call it.

Generated requests (valid and forged items, unknown and stopped subscriptions, one still
being created, malformed items, junk, duplicated keys, other encodings, cut and corrupted
bodies, bodies over the limit, odd content types, validationToken variants, GET, POST, PUT
and more) must never get a 500 or show a clientState; a refused request changes nothing
stored, and an accepted one stores exactly its valid items, once, also when BC sends it
again. STRESS_FUZZ_REQUESTS (tests.helpers.FUZZ_REQUESTS) scales the run: at least that many
notification POSTs and as many handshakes and requests of other methods.
"""

import itertools
import json
import logging
import secrets
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.http import QueryDict
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authentications.webhooks.models import ChangeNotification, Subscription
from tests.helpers import FUZZ_REQUESTS
from tests.webhooks.helpers import NOTIFICATIONS_PATH, make_subscription

from .conftest import reports

pytestmark = [pytest.mark.stress, pytest.mark.django_db]

# An example sends about 1.3 notification POSTs; a handshake example 3 requests.
EXAMPLES = FUZZ_REQUESTS * 4 // 5
LIMIT = 24_000  # BC_NOTIFICATION_MAX_BYTES here: "huge" items push some bodies over it.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
COUNTERS = (
    "id",
    "notifications_received",
    "notifications_dropped",
    "notifications_malformed",
    "oversize_refused",
)
unique = itertools.count()  # Record ids: each valid item is a change never seen before.
sent = {"notifications": 0, "handshakes": 0}


@pytest.fixture(autouse=True)
def _quiet():
    """Two log lines per refused request, thousands of times: the run's time, not its point."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture
def world(connected_row, settings):
    settings.BC_NOTIFICATION_RATE_LIMIT = ""
    settings.BC_NOTIFICATION_MAX_BYTES = LIMIT
    rows = {
        "customers": make_subscription(connected_row),
        "items": make_subscription(connected_row, entity="items"),
        "stopped": make_subscription(
            connected_row, entity="vendors", status=Subscription.Status.STOPPED
        ),
        "creating": make_subscription(
            connected_row,
            entity="salesOrders",
            subscription_id="",
            status=Subscription.Status.PENDING,
            handshake_until=timezone.now() + timedelta(hours=1),
        ),
    }
    rows["secrets"] = [str(row.client_state).encode() for row in rows.values()]
    return rows


# --- bodies -----------------------------------------------------------------------------

KINDS = ["valid", "valid", "forged", "unknown", "creating", "stopped", "malformed", "huge"]
BROKEN = [
    {"resource": None},
    {"changeType": None},
    {"changeType": "renamed"},
    {"changeType": 7},
    {"resource": "api/v2.0/companies(other)/customers(x)"},
    {"resource": ["api/v2.0"]},
    {"subscriptionId": None},
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@st.composite
def item(draw, world):
    """(kind, item): one notification item of a kind the oracle below knows."""
    kind = draw(st.sampled_from(KINDS))
    row = world[draw(st.sampled_from(["customers", "items"]))]
    if kind in ("stopped", "creating"):
        row = world[kind]
    change = draw(st.sampled_from(["created", "updated", "deleted", "collection", "Updated"]))
    record = f"r-{next(unique)}"
    resource = f"api/v2.0/companies({row.company_id})/{row.entity}"
    body = {
        "subscriptionId": row.subscription_id or secrets.token_hex(8),
        "clientState": str(row.client_state),
        "expirationDateTime": "2030-01-01T00:00:00Z",
        "resource": f"{resource}?$filter={record}"
        if change == "collection"
        else f"{resource}({record})",
        "changeType": change,
        "lastModifiedDateTime": draw(st.sampled_from(["2026-11-30T10:00:00Z", "", "junk", None])),
    }
    if kind == "forged":
        body["clientState"] = draw(st.text(max_size=40))
    elif kind == "unknown":
        body["subscriptionId"] = draw(st.text(max_size=40))
    elif kind == "malformed":
        body.update(draw(st.sampled_from(BROKEN)))
        if body["subscriptionId"] is None:
            kind = "unknown"
    elif kind == "huge":
        body["padding"] = "x" * draw(st.integers(min_value=1_000, max_value=30_000))
        kind = "valid"
    return kind, body


@st.composite
def envelope(draw, world):
    """(kinds, body bytes, whether the oracle knows its answer) of a POST body."""
    drawn = draw(st.lists(item(world), max_size=6))
    kinds = [kind for kind, _ in drawn]
    items = [body for _, body in drawn]
    if draw(st.integers(0, 9)) == 0:
        junk = draw(json_values)
        items.insert(draw(st.integers(0, len(items))), junk)
        kinds.append("stranger" if isinstance(junk, dict) else "junk")  # Keys of <= 8 chars.
    shape = draw(st.sampled_from(["plain", "plain", "context", "duplicate", "bare", "other"]))
    listed = json.dumps(items)
    text = {
        "plain": '{"value": ' + listed + "}",
        "context": '{"@odata.context": "x", "value": ' + listed + ', "n": 1}',
        "duplicate": '{"value": [{"junk": 1}], "value": ' + listed + "}",
        "bare": listed,
        "other": json.dumps(draw(json_values)),
    }[shape]
    if shape == "bare":
        kinds = ["junk"]
    body = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "utf-8-sig"])))
    damage = draw(st.sampled_from([None] * 6 + ["cut", "byte", "prefix"]))
    if damage == "cut":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif damage == "byte" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    elif damage == "prefix":
        body = draw(st.binary(max_size=8)) + body
    return kinds, body, damage is None and shape != "other"  # "other": no oracle, rules only.


def expected(kinds, size):
    """The status BC must get for a well-formed body, and how many rows it stores."""
    if size > LIMIT:
        return 503, 0
    if not kinds or "junk" in kinds:
        return 400, 0
    ours = any(kind in ("valid", "forged", "malformed") for kind in kinds)
    in_flight = "creating" in kinds
    if not ours:
        return (503 if in_flight else 404), 0
    return (503 if in_flight else 202), kinds.count("valid")


def snapshot():
    """The last notification's id and every subscription's counters: one cheap query."""
    ops = connection.ops
    names = ", ".join(ops.quote_name(name) for name in COUNTERS)
    notifications = ops.quote_name(ChangeNotification._meta.db_table)
    subscriptions = ops.quote_name(Subscription._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(id) FROM {notifications}), {names} FROM {subscriptions} "
            "ORDER BY id"
        )
        rows = cursor.fetchall()
    return rows[0][0] or 0, [row[1:] for row in rows]


def post(client, body, content_type, query=""):
    sent["notifications"] += 1
    return client.generic(
        "POST", NOTIFICATIONS_PATH, body, content_type=content_type, QUERY_STRING=query
    )


def assert_clean(response, world):
    assert response.status_code < 500 or response.status_code == 503, response.status_code
    answer = response.content + str(response.headers).encode()
    assert not any(secret in answer for secret in world["secrets"])


@FUZZ
@given(data=st.data())
def test_generated_notification_posts(client, world, data):
    kinds, body, well_formed = data.draw(envelope(world))
    content_type = data.draw(
        st.sampled_from(
            ["application/json"] * 6
            + ["application/json; charset=utf-8", "text/plain", "", "multipart/form-data"]
        )
    )
    query = data.draw(st.sampled_from(["", "", "", "x=1", "validationtoken=a"]))
    last_id, counters = snapshot()

    response = post(client, body, content_type, query)

    assert_clean(response, world)
    if not content_type.startswith("application/json"):
        assert response.status_code == 415
    elif well_formed:
        status, rows = expected(kinds, len(body))
        assert response.status_code == status
        assert ChangeNotification.objects.filter(id__gt=last_id).count() == rows
    if response.status_code not in (202, 503):
        assert snapshot() == (last_id, counters)  # Refused: nothing stored, nothing counted.
    elif response.status_code == 503 and len(body) > LIMIT:
        assert snapshot()[0] == last_id
    if response.status_code in (202, 503) and well_formed:
        stored = snapshot()[0]
        again = post(client, body, content_type, query)  # BC sends it again: stored once.
        assert again.status_code == response.status_code
        assert snapshot()[0] == stored


# --- the handshake and other methods ------------------------------------------------------

tokens = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10),
    st.sampled_from(["", "tok-1", "<script>x</script>", "a\nb", "x" * 1024, "x" * 1025, "%00"]),
)


@settings(FUZZ, max_examples=EXAMPLES * 3 // 4)
@given(
    other=st.sampled_from(["PUT", "HEAD", "DELETE", "PATCH", "OPTIONS"]),
    params=st.lists(
        st.tuples(st.sampled_from(["validationToken", "ValidationToken", "x"]), tokens),
        max_size=3,
    ),
    window_open=st.booleans(),
)
def test_generated_handshakes(client, world, other, params, window_open):
    moment = timezone.now() + timedelta(seconds=60 if window_open else -60)
    Subscription.objects.filter(pk=world["creating"].pk).update(handshake_until=moment)
    query = urlencode([(key, value.replace("\x00", "")) for key, value in params])
    token = QueryDict(query).get("validationToken")
    last_id, counters = snapshot()

    for method in ("GET", "POST", other):
        sent["handshakes"] += 1
        response = client.generic(method, NOTIFICATIONS_PATH, b"", QUERY_STRING=query)

        assert_clean(response, world)
        assert_handshake_answer(response, method, token, window_open)
    assert snapshot() == (last_id, counters)


def assert_handshake_answer(response, method, token, window_open):
    if method not in ("GET", "POST"):
        assert response.status_code == 405
    elif token is None:
        assert response.status_code == (405 if method == "GET" else 415)
    elif not token or len(token) > 1024 or not token.isprintable():
        assert response.status_code == 400
    elif window_open:
        assert (response.status_code, response.content) == (200, token.encode())
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response["X-Content-Type-Options"] == "nosniff"
    else:
        assert response.status_code == 403
        assert response.content == b"No subscription is being created or renewed."


@pytest.fixture(scope="module", autouse=True)
def _report():
    started = time.perf_counter()
    yield
    total = sent["notifications"] + sent["handshakes"]
    reports.append(
        f"notification endpoint fuzz: {total:,} requests ({sent['notifications']:,} "
        f"notification POSTs, {sent['handshakes']:,} handshakes and other methods) in "
        f"{time.perf_counter() - started:.1f} s"
    )
