"""The fake BC's webhook subscriptions behave as BC documents: a subscriber's test bench."""

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
import requests

from tests.fakes.entra import TENANT_DOMAIN
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import issue_token

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def receiver():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def hooks(fake_microsoft):
    """The fake's webhooks, quick enough for tests but still delayed and retried."""
    webhooks = fake_microsoft.bc.webhooks
    webhooks.retry_delays = (0.01, 0.01, 0.01, 0.01, 0.01)
    webhooks.handshake_timeout = 2.0
    webhooks.notification_timeout = 2.0
    webhooks.clock = lambda: START  # The calendar moves only when a test advances it.
    return webhooks


class Api:
    """Plain HTTP to the fake BC, as any subscriber would call it."""

    def __init__(self, fake, environment="Production"):
        self.fake = fake
        self.root = fake.bc.base_url(environment)
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + issue_token(fake)

    def call(self, method, path, body=None, **headers):
        return self.session.request(
            method, f"{self.root}/{path}", json=body, headers=headers, timeout=30
        )

    def subscribe(self, notification_url, *, company=None, entity="customers", state="s3cret"):
        company = company or self.fake.bc.company.id
        return self.call(
            "POST",
            "subscriptions",
            {
                "notificationUrl": notification_url,
                "resource": f"api/v2.0/companies({company})/{entity}",
                "clientState": state,
            },
        )

    def customers(self):
        return f"companies({self.fake.bc.company.id})/customers"

    def create_customer(self, name="New customer"):
        return self.call("POST", self.customers(), {"displayName": name}).json()

    def update_customer(self, customer, **changes):
        path = f"{self.customers()}({customer['id']})"
        return self.call("PATCH", path, changes, **{"If-Match": customer["@odata.etag"]}).json()

    def delete_customer(self, customer):
        path = f"{self.customers()}({customer['id']})"
        return self.call("DELETE", path, **{"If-Match": customer["@odata.etag"]})


@pytest.fixture
def api(fake_microsoft):
    return Api(fake_microsoft)


def resource_of(api, customer):
    return f"api/v2.0/companies({api.fake.bc.company.id})/customers({customer['id']})"


def twice_at_once(call):
    """Run `call` in two threads at once (two subscribers racing); return both answers."""
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(call())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- create: the handshake ------------------------------------------------------------


def test_subscription_is_created_only_after_a_real_handshake(api, hooks, receiver):
    answer = api.subscribe(receiver.url)

    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["notificationUrl"] == receiver.url
    assert created["resource"] == f"api/v2.0/companies({api.fake.bc.company.id})/customers"
    assert created["clientState"] == "s3cret"
    assert answer.headers["ETag"] == created["@odata.etag"]
    expiry = when(created["expirationDateTime"]) - when(created["lastModifiedDateTime"])
    assert expiry == timedelta(days=3)
    [(path, query)] = receiver.handshakes
    assert path == "/notifications/"
    assert query["validationToken"] == hooks.handshakes[0].token
    listed = api.call("GET", "subscriptions").json()["value"]
    assert [s["subscriptionId"] for s in listed] == [created["subscriptionId"]]
    one = api.call("GET", f"subscriptions('{created['subscriptionId']}')").json()
    assert one == created


@pytest.mark.parametrize("handshake", ["wrong", 202, 404, 500])
def test_a_handshake_without_the_exact_token_and_200_refuses_the_subscription(
    api, hooks, receiver, handshake
):
    receiver.handshake = handshake

    answer = api.subscribe(receiver.url)

    assert answer.status_code == 400
    assert "validationToken" in answer.json()["error"]["message"]
    assert len(receiver.handshakes) == 1
    assert api.call("GET", "subscriptions").json()["value"] == []


def test_a_handshake_answered_with_a_redirect_is_refused_and_not_followed(api, hooks, receiver):
    receiver.handshake = 302

    answer = api.subscribe(receiver.url)

    assert answer.status_code == 400
    assert len(receiver.requests) == 1


def test_a_handshake_answered_too_late_refuses_the_subscription(api, hooks, receiver):
    hooks.handshake_timeout = 0.2
    receiver.handshake = 1.0  # seconds the receiver stalls

    answer = api.subscribe(receiver.url)

    assert answer.status_code == 400
    assert "in time" in answer.json()["error"]["message"]
    assert hooks.handshakes[0].accepted is False
    assert api.call("GET", "subscriptions").json()["value"] == []


def test_the_handshake_keeps_the_query_of_the_notification_url(api, hooks, receiver):
    answer = api.subscribe(receiver.url + "?site=shop")

    assert answer.status_code == 201
    [(_, query)] = receiver.handshakes
    assert query["site"] == "shop" and query["validationToken"]


@pytest.mark.parametrize(
    "url", ["https://example.com/hook", "ftp://127.0.0.1/hook", "not a url", "http:///hook"]
)
def test_a_notification_url_off_this_machine_is_refused_without_a_call(api, hooks, url):
    answer = api.subscribe(url)

    assert answer.status_code == 400
    assert hooks.handshakes == []


@pytest.mark.parametrize(
    "resource",
    [
        "api/v2.0/companies(00000000-0000-0000-0000-00000000dead)/customers",
        "api/v2.0/companies({company})/customerContacts",
        "api/v2.0/customers",
        "https://evil.example/api/v2.0/companies({company})/customers",
        None,
    ],
)
def test_a_resource_bc_does_not_serve_is_refused(api, hooks, receiver, resource):
    if resource:
        resource = resource.format(company=api.fake.bc.company.id)

    answer = api.call(
        "POST", "subscriptions", {"notificationUrl": receiver.url, "resource": resource}
    )

    assert answer.status_code in (400, 404)
    assert receiver.handshakes == []


def test_client_state_may_be_2048_characters_and_no_more(api, hooks, receiver):
    assert api.subscribe(receiver.url, state="x" * 2048).status_code == 201

    answer = api.subscribe(receiver.url, state="x" * 2049)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "Application_StringExceededLength"
    assert len(api.call("GET", "subscriptions").json()["value"]) == 1


def test_a_leading_slash_and_other_entities_are_accepted(api, hooks, receiver):
    company = api.fake.bc.company.id
    answer = api.call(
        "POST",
        "subscriptions",
        {"notificationUrl": receiver.url, "resource": f"/api/v2.0/companies({company})/items"},
    )

    assert answer.status_code == 201
    assert answer.json()["resource"] == f"/api/v2.0/companies({company})/items"


def test_a_body_that_is_not_json_is_refused(api, hooks):
    answer = api.session.post(
        f"{api.root}/subscriptions",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    assert answer.status_code == 400


def test_subscriptions_need_a_valid_token_and_belong_to_their_environment(
    fake_microsoft, api, hooks, receiver
):
    api.subscribe(receiver.url)

    anonymous = requests.get(f"{api.root}/subscriptions", timeout=30)
    sandbox = Api(fake_microsoft, "Sandbox").call("GET", "subscriptions")

    assert anonymous.status_code == 401
    assert sandbox.json()["value"] == []


def test_the_tenant_domain_and_its_id_see_the_same_subscriptions(
    fake_microsoft, api, hooks, receiver
):
    created = api.subscribe(receiver.url).json()
    by_domain = Api(fake_microsoft)
    by_domain.root = fake_microsoft.bc.base_url(tenant=TENANT_DOMAIN)

    listed = by_domain.call("GET", "subscriptions").json()["value"]

    assert [s["subscriptionId"] for s in listed] == [created["subscriptionId"]]


def test_the_201st_subscription_of_an_environment_is_refused(fake_microsoft, hooks, receiver):
    api = Api(fake_microsoft)
    for _ in range(200):
        assert api.subscribe(receiver.url).status_code == 201

    answer = api.subscribe(receiver.url)

    assert answer.status_code == 400
    assert "maximum number of subscriptions (200)" in answer.json()["error"]["message"]
    assert len(receiver.handshakes) == 200
    assert Api(fake_microsoft, "Sandbox").subscribe(receiver.url).status_code == 201


def test_two_creates_racing_for_the_last_place_get_one_subscription(api, hooks, receiver):
    hooks.max_subscriptions = 1
    receiver.handshake = 0.3  # Both creates are past the first count while it stalls.

    answers = twice_at_once(lambda: Api(api.fake).subscribe(receiver.url))

    assert sorted(a.status_code for a in answers) == [201, 400]
    assert len(api.call("GET", "subscriptions").json()["value"]) == 1


# --- renew, delete, expire ------------------------------------------------------------


def test_renewal_with_the_etag_repeats_the_handshake_and_extends_three_days(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()
    hooks.advance(days=2)

    answer = api.call(
        "PATCH",
        f"subscriptions('{created['subscriptionId']}')",
        {},
        **{"If-Match": created["@odata.etag"]},
    )

    assert answer.status_code == 200, answer.text
    renewed = answer.json()
    assert len(receiver.handshakes) == 2
    assert renewed["@odata.etag"] != created["@odata.etag"]
    assert when(renewed["expirationDateTime"]) - when(created["expirationDateTime"]) == (
        timedelta(days=2)
    )
    hooks.advance(days=2)  # Past the first expiry, inside the renewed one.
    assert api.call("GET", f"subscriptions('{created['subscriptionId']}')").status_code == 200


def test_renewal_may_move_the_notification_url_and_notifications_follow(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()
    elsewhere = WebhookReceiver().start()
    try:
        hooks.advance(days=1)
        renewed = api.call(
            "PATCH",
            f"subscriptions('{created['subscriptionId']}')",
            {"notificationUrl": elsewhere.url, "clientState": "rotated"},
            **{"If-Match": created["@odata.etag"]},
        ).json()

        api.create_customer()
        assert hooks.wait_idle(5)
    finally:
        elsewhere.stop()

    assert len(elsewhere.handshakes) == 1 and receiver.notifications == []
    [item] = elsewhere.items
    assert item["clientState"] == "rotated"
    assert item["expirationDateTime"] == renewed["expirationDateTime"]


def test_renewal_with_a_stale_etag_is_412_and_changes_nothing(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()
    path = f"subscriptions('{created['subscriptionId']}')"
    assert api.call("PATCH", path, {}, **{"If-Match": created["@odata.etag"]}).status_code == 200

    stale = api.call("PATCH", path, {"clientState": "new"}, **{"If-Match": created["@odata.etag"]})
    missing = api.call("PATCH", path, {"clientState": "new"})

    assert stale.status_code == 412
    assert missing.status_code == 400
    assert api.call("GET", path).json()["clientState"] == "s3cret"
    assert len(receiver.handshakes) == 2


def test_renewal_whose_handshake_fails_leaves_the_subscription_as_it_was(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()
    path = f"subscriptions('{created['subscriptionId']}')"
    receiver.handshake = "wrong"

    answer = api.call("PATCH", path, {}, **{"If-Match": created["@odata.etag"]})

    assert answer.status_code == 400
    assert api.call("GET", path).json() == created


def test_two_renewals_racing_with_one_etag_succeed_once(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()
    path = f"subscriptions('{created['subscriptionId']}')"
    receiver.handshake = 0.3  # Both renewals are past the first ETag check while it stalls.

    answers = twice_at_once(
        lambda: Api(api.fake).call("PATCH", path, {}, **{"If-Match": created["@odata.etag"]})
    )

    assert sorted(a.status_code for a in answers) == [200, 412]


def test_delete_needs_the_current_etag(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()
    path = f"subscriptions('{created['subscriptionId']}')"

    assert api.call("DELETE", path, **{"If-Match": 'W/"other"'}).status_code == 412
    assert api.call("DELETE", path).status_code == 400
    assert api.call("DELETE", path, **{"If-Match": created["@odata.etag"]}).status_code == 204
    assert api.call("GET", path).status_code == 404
    assert hooks.removed == [(created["subscriptionId"], "deleted")]


def test_a_subscription_not_renewed_for_three_days_is_gone(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()
    path = f"subscriptions('{created['subscriptionId']}')"
    hooks.advance(days=3)

    assert api.call("GET", path).status_code == 404
    assert api.call("GET", "subscriptions").json()["value"] == []
    renewal = api.call("PATCH", path, {}, **{"If-Match": created["@odata.etag"]})
    assert renewal.status_code == 404
    api.create_customer()
    assert hooks.wait_idle(5)
    assert receiver.notifications == []
    assert hooks.removed == [(created["subscriptionId"], "expired")]


def test_a_subscription_bc_dropped_is_gone_without_a_word(fake_microsoft, api, hooks, receiver):
    created = api.subscribe(receiver.url).json()

    fake_microsoft.webhooks.drop(created["subscriptionId"])
    api.create_customer()
    assert fake_microsoft.webhooks.wait_idle(5)

    assert api.call("GET", f"subscriptions('{created['subscriptionId']}')").status_code == 404
    assert receiver.notifications == []


# --- notifications --------------------------------------------------------------------


def test_changes_through_the_api_are_notified_after_the_delay(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()

    customer = api.create_customer()
    updated = api.update_customer(customer, displayName="Renamed")
    assert api.delete_customer(updated).status_code == 204
    assert hooks.wait_idle(5)

    items = receiver.items
    assert [i["changeType"] for i in items] == ["created", "updated", "deleted"]
    assert {i["resource"] for i in items} == {resource_of(api, customer)}
    for item in items:
        assert item["subscriptionId"] == created["subscriptionId"]
        assert item["clientState"] == "s3cret"
        assert item["expirationDateTime"] == created["expirationDateTime"]
    assert items[1]["lastModifiedDateTime"] == updated["lastModifiedDateTime"]
    assert all(d.status == 202 for d in hooks.deliveries)


def test_only_matching_subscriptions_are_notified(fake_microsoft, api, hooks, receiver):
    other_company = fake_microsoft.bc.companies[1].id
    api.subscribe(receiver.url, company=other_company)
    api.subscribe(receiver.url, entity="items")

    api.create_customer()
    assert hooks.wait_idle(5)

    assert receiver.notifications == []


def test_notifications_of_two_subscriptions_on_one_url_share_one_post(api, hooks, receiver):
    first = api.subscribe(receiver.url, state="one").json()
    second = api.subscribe(receiver.url, state="two").json()

    api.create_customer()
    assert hooks.wait_idle(5)

    [body] = receiver.notifications
    assert {(i["subscriptionId"], i["clientState"]) for i in body["value"]} == {
        (first["subscriptionId"], "one"),
        (second["subscriptionId"], "two"),
    }


def test_consecutive_updates_of_one_record_become_one_notification(api, hooks, receiver):
    api.subscribe(receiver.url)
    customer = api.create_customer()
    assert hooks.wait_idle(5)
    path = f"{api.customers()}({customer['id']})"
    patches = [  # One $batch: both updates land in the same delay window, however slow.
        {"method": "PATCH", "id": name, "url": path, "body": {"displayName": name}}
        for name in ("One", "Two")
    ]
    for patch in patches:
        patch["headers"] = {"Content-Type": "application/json", "If-Match": "*"}

    answer = api.call("POST", "$batch", {"requests": patches})
    assert hooks.wait_idle(5)

    last = answer.json()["responses"][-1]["body"]
    updates = [i for i in receiver.items if i["changeType"] == "updated"]
    assert len(updates) == 1
    assert updates[0]["lastModifiedDateTime"] == last["lastModifiedDateTime"]


def batch_of_creates(api, count, *, atomic=True, then_fail=False):
    requests_ = [
        {
            "method": "POST",
            "id": str(n),
            "url": api.customers(),
            "body": {"displayName": f"Bulk {n}"},
            "headers": {"Content-Type": "application/json"},
        }
        for n in range(count)
    ]
    if then_fail:
        requests_.append(
            {"method": "POST", "id": "bad", "url": api.customers(), "body": {"nope": 1}}
        )
    headers = {"Isolation": "snapshot"} if atomic else {}
    return api.call("POST", "$batch", {"requests": requests_}, **headers)


def test_more_changes_than_the_threshold_become_one_collection_notification(api, hooks, receiver):
    hooks.collection_threshold = 3
    created = api.subscribe(receiver.url).json()
    before = api.call("GET", api.customers()).json()["value"]

    assert batch_of_creates(api, 5).status_code == 200
    assert hooks.wait_idle(5)

    [item] = receiver.items
    assert item["changeType"] == "collection"
    assert item["subscriptionId"] == created["subscriptionId"]
    path, query = item["resource"].split("?")
    assert path == f"/api/v2.0/companies({api.fake.bc.company.id})/customers"
    assert query.startswith("$filter=lastModifiedDateTime%20gt%20")
    changed = api.call("GET", f"{api.customers()}?{unquote(query)}").json()["value"]
    assert sorted(c["displayName"] for c in changed) == [f"Bulk {n}" for n in range(5)]
    assert len(before) == 50


def test_as_many_changes_as_the_threshold_are_sent_one_by_one(api, hooks, receiver):
    hooks.collection_threshold = 3
    api.subscribe(receiver.url)

    batch_of_creates(api, 3)
    assert hooks.wait_idle(5)

    assert [i["changeType"] for i in receiver.items] == ["created"] * 3


def test_a_rolled_back_batch_notifies_nothing(api, hooks, receiver):
    api.subscribe(receiver.url)

    answer = batch_of_creates(api, 2, then_fail=True)
    assert hooks.wait_idle(5)

    assert answer.json()["responses"][-1]["status"] == 400
    assert receiver.notifications == []


# --- delivery: retry, give up, delete -------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_a_transient_answer_is_retried_until_delivered(api, hooks, receiver, status):
    created = api.subscribe(receiver.url).json()
    receiver.answers.extend([status, status])

    api.create_customer()
    assert hooks.wait_idle(5)

    assert [d.status for d in hooks.deliveries] == [status, status, 202]
    assert [d.attempt for d in hooks.deliveries] == [1, 2, 3]
    assert hooks.deliveries[0].body == hooks.deliveries[2].body
    path = f"subscriptions('{created['subscriptionId']}')"
    assert api.call("GET", path).status_code == 200


def test_a_retry_keeps_later_changes_of_the_url_behind_it(api, hooks, receiver):
    hooks.retry_delays = (0.5,)
    api.subscribe(receiver.url)
    receiver.answers.append(503)

    customer = api.create_customer()
    api.update_customer(customer, displayName="Later")
    assert hooks.wait_idle(10)

    delivered = [i for d in hooks.deliveries if d.status == 202 for i in d.body["value"]]
    assert [i["changeType"] for i in delivered] == ["created", "updated"]


def test_subscriptions_on_different_urls_get_their_own_posts(api, hooks, receiver):
    elsewhere = WebhookReceiver().start()
    try:
        api.subscribe(receiver.url)
        api.subscribe(elsewhere.url)

        api.create_customer()
        assert hooks.wait_idle(5)
    finally:
        elsewhere.stop()

    assert len(receiver.notifications) == len(elsewhere.notifications) == 1
    assert receiver.items[0]["subscriptionId"] != elsewhere.items[0]["subscriptionId"]


def test_a_receiver_slower_than_the_timeout_is_retried(api, hooks, receiver):
    hooks.notification_timeout = 0.2
    api.subscribe(receiver.url)
    receiver.answers.append(1.0)  # seconds the receiver stalls on the first notification

    api.create_customer()
    assert hooks.wait_idle(5)

    assert [(d.status, d.error) for d in hooks.deliveries] == [
        (None, "ReadTimeout"),
        (202, ""),
    ]


@pytest.mark.parametrize("status", [301, 400, 401, 404, 410])
def test_any_other_answer_deletes_the_subscriptions_without_retry(api, hooks, receiver, status):
    first = api.subscribe(receiver.url).json()
    second = api.subscribe(receiver.url).json()
    receiver.answers.append(status)

    api.create_customer()
    assert hooks.wait_idle(5)
    api.create_customer()
    assert hooks.wait_idle(5)

    assert [d.status for d in hooks.deliveries] == [status]
    assert api.call("GET", "subscriptions").json()["value"] == []
    assert sorted(hooks.removed) == sorted(
        [(first["subscriptionId"], "refused"), (second["subscriptionId"], "refused")]
    )


def test_a_redirect_deletes_the_subscription_and_is_not_followed(api, hooks, receiver):
    created = api.subscribe(receiver.url).json()
    receiver.answers.append(302)

    api.create_customer()
    assert hooks.wait_idle(5)

    assert [method for method, _ in receiver.requests] == ["POST", "POST"]  # handshake, one
    assert hooks.removed == [(created["subscriptionId"], "refused")]


def test_when_retries_run_out_the_subscription_is_deleted(api, hooks, receiver):
    hooks.retry_delays = (0.01, 0.01)
    created = api.subscribe(receiver.url).json()
    receiver.default_status = 500

    api.create_customer()
    assert hooks.wait_idle(5)

    assert [d.attempt for d in hooks.deliveries] == [1, 2, 3]
    assert hooks.removed == [(created["subscriptionId"], "retries")]


def test_a_receiver_that_is_gone_is_retried_then_deleted(api, hooks, receiver):
    hooks.retry_delays = (0.01,)
    created = api.subscribe(receiver.url).json()
    receiver.stop()

    api.create_customer()
    assert hooks.wait_idle(5)

    assert [d.error for d in hooks.deliveries] == ["ConnectionError", "ConnectionError"]
    assert hooks.removed == [(created["subscriptionId"], "retries")]


def test_wait_idle_says_so_when_delivery_is_still_going(api, hooks, receiver):
    hooks.retry_delays = (30.0,)
    api.subscribe(receiver.url)
    receiver.default_status = 503

    api.create_customer()

    assert hooks.wait_idle(0.5) is False


def test_wait_idle_raises_when_the_delivery_thread_died(api, hooks, receiver):
    hooks.retry_delays = None  # A misconfigured fake: the first retry breaks the thread.
    api.subscribe(receiver.url)
    receiver.answers.append(503)

    api.create_customer()

    with pytest.raises(RuntimeError, match="delivery thread died"):
        hooks.wait_idle(5)


def test_stopping_the_fake_joins_the_delivery_thread(fake_microsoft, api, hooks, receiver):
    api.subscribe(receiver.url)
    running = [t for t in threading.enumerate() if t.name == "fake-bc-webhooks"]

    fake_microsoft.stop()

    assert running and not any(t.is_alive() for t in running)


def test_the_fake_filters_on_unquoted_datetimes_as_odata_v4_does(api):
    since = "2026-01-05T08:00:45Z"  # The fake's generated customers: one a second from 08:00.

    answer = api.call("GET", f"{api.customers()}?$filter=lastModifiedDateTime gt {since}")

    assert [c["number"] for c in answer.json()["value"]] == [f"C0000{n}" for n in (47, 48, 49, 50)]


# --- webhookSupportedResources --------------------------------------------------------


def runtime_url(api, company_id):
    root = api.root.rsplit("/api/v2.0", 1)[0]
    return f"{root}/api/microsoft/runtime/beta/companies({company_id})/webhookSupportedResources"


def test_supported_resources_are_listed_and_filtered_as_bc_does(api):
    url = runtime_url(api, api.fake.bc.company.id)

    everything = api.session.get(url, timeout=30).json()["value"]
    v2 = api.session.get(url, params={"$filter": "resource eq 'v2.0*'"}, timeout=30).json()
    unknown = api.session.get(runtime_url(api, "00000000-0000-0000-0000-00000000dead"), timeout=30)
    bad_filter = api.session.get(url, params={"$filter": "name eq 1"}, timeout=30)

    assert {"resource": "v2.0/customers"} in everything
    assert v2["value"] == everything
    assert unknown.status_code == 404
    assert bad_filter.status_code == 400


def test_notification_bodies_are_plain_json_without_a_bom(api, hooks, receiver):
    api.subscribe(receiver.url)

    api.create_customer()
    assert hooks.wait_idle(5)

    assert receiver.raw[0].startswith(b'{"value"')  # No byte order mark (BC 19 and later).
    assert set(receiver.notifications[0]) == {"value"}
    assert set(receiver.items[0]) == {
        "subscriptionId",
        "clientState",
        "expirationDateTime",
        "resource",
        "changeType",
        "lastModifiedDateTime",
    }
    assert when(receiver.items[0]["lastModifiedDateTime"]) <= datetime.now(UTC)
