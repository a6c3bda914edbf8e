"""Subscriptions at BC: created with the handshake, renewed with their ETag before three days
run out, recreated after BC deleted them, failures reported like token failures.

BC is mocked at the network edge (`responses`); during create and renew the mock performs
BC's handshake against our real endpoint, as BC does.
"""

import json
from datetime import timedelta
from io import StringIO

import pytest
import responses
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from authentications.connections.models import Event
from authentications.webhooks import subscriptions
from authentications.webhooks.models import Subscription
from tests.webhooks.helpers import COMPANY_ID, FakeSubscriptionsAtBC, make_subscription

pytestmark = pytest.mark.django_db
Status = Subscription.Status


@pytest.fixture
def bc(tokens_planted):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield FakeSubscriptionsAtBC(mocked, tokens_planted.base_url)


def new_subscription(authentication):
    return Subscription(authentication=authentication, company_id=COMPANY_ID, entity="customers")


def test_create_sends_the_resource_and_stores_what_bc_answers(bc, tokens_planted):
    subscription = subscriptions.create(new_subscription(tokens_planted), actor="staff")

    body = json.loads(bc.requests[0].body)
    assert body["resource"] == f"/api/v2.0/companies({COMPANY_ID})/customers"
    assert body["notificationUrl"] == "http://127.0.0.1:8000/authentications/notifications/"
    assert body["clientState"] == str(subscription.client_state)
    assert bc.handshakes == [200]
    stored = Subscription.objects.get()
    assert (stored.subscription_id, stored.etag, stored.status) == ("sub-1", 'W/"1"', Status.ACTIVE)
    assert stored.expires_at > timezone.now() + timedelta(days=2)
    assert stored.handshake_until is None  # The window closes with the request.
    assert tokens_planted.events.filter(kind=Event.Kind.SUBSCRIPTION_CREATED).exists()


def test_renew_patches_with_the_etag_and_bc_repeats_the_handshake(bc, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="sub-1", etag='W/"1"')

    subscription, outcome = subscriptions.renew(subscription)

    assert outcome == "renewed"
    assert bc.requests[0].headers["If-Match"] == 'W/"1"'
    assert bc.handshakes == [200]
    assert Subscription.objects.get().etag == 'W/"2"'


def test_a_stale_etag_is_read_again_and_the_renewal_goes_through(bc, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="sub-1", etag='W/"old"')

    subscription, outcome = subscriptions.renew(subscription)

    assert outcome == "renewed"
    assert [request.method for request in bc.requests] == ["PATCH", "PATCH"]
    assert Subscription.objects.get().etag == 'W/"2"'


def test_a_subscription_bc_deleted_is_recreated_and_the_history_says_so(bc, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="gone", etag='W/"1"')
    bc.forgotten.add("gone")

    subscription, outcome = subscriptions.renew(subscription)

    assert outcome == "recreated"
    assert [request.method for request in bc.requests] == ["PATCH", "POST"]
    stored = Subscription.objects.get()
    assert (stored.subscription_id, stored.status) == ("sub-1", Status.ACTIVE)
    assert str(stored.client_state) == json.loads(bc.requests[1].body)["clientState"]
    event = tokens_planted.events.get(kind=Event.Kind.SUBSCRIPTION_RECREATED)
    assert "404" in event.detail


def test_cron_renews_what_expires_within_a_day_and_recreates_a_deleted_one(bc, tokens_planted):
    soon = make_subscription(
        tokens_planted, subscription_id="sub-1", expires_at=timezone.now() + timedelta(hours=2)
    )
    later = make_subscription(
        tokens_planted,
        entity="items",
        subscription_id="sub-later",
        expires_at=timezone.now() + timedelta(days=2),
    )

    out = StringIO()
    call_command("refresh_tokens", stdout=out)

    assert "renewed, valid until" in out.getvalue()
    assert Subscription.objects.get(pk=soon.pk).etag == 'W/"2"'
    assert Subscription.objects.get(pk=later.pk).etag == later.etag  # Not due.


def test_a_failing_renewal_is_reported_once_and_exits_1(bc, tokens_planted, notify_list):
    make_subscription(
        tokens_planted, subscription_id="sub-1", expires_at=timezone.now() + timedelta(hours=2)
    )
    bc.answer_status = 500

    for _ in range(2):
        with pytest.raises(CommandError, match="webhook subscription renewals failed"):
            call_command("refresh_tokens", stdout=StringIO())

    stored = Subscription.objects.get()
    assert stored.status == Status.FAILING and stored.consecutive_failures == 2
    assert len(mail.outbox) == 1
    assert "is failing" in mail.outbox[0].subject
    assert tokens_planted.events.filter(kind=Event.Kind.SUBSCRIPTION_FAILED).count() == 1


def test_the_200_limit_is_explained_before_bc_refuses(bc, tokens_planted):
    bc.existing = 200

    with pytest.raises(subscriptions.SubscriptionError, match="200"):
        subscriptions.create(new_subscription(tokens_planted))

    assert bc.requests == []  # No POST was sent.
    assert Subscription.objects.get().status == Status.FAILING


def test_a_subscription_whose_authentication_needs_a_sign_in_says_so(bc, make_authentication):
    authentication = make_authentication(name="Signed out")
    subscription = make_subscription(
        authentication, subscription_id="sub-1", expires_at=timezone.now() + timedelta(hours=2)
    )

    with pytest.raises(subscriptions.SubscriptionError):
        subscriptions.renew(subscription)

    assert "sign" in Subscription.objects.get(pk=subscription.pk).last_error.lower()


def test_two_renewals_at_once_send_one_request(bc, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="sub-1", etag='W/"1"')
    Subscription.objects.filter(pk=subscription.pk).update(
        handshake_until=timezone.now() + timedelta(seconds=60)
    )

    _, outcome = subscriptions.renew(subscription)

    assert outcome == "busy"
    assert bc.requests == []


def test_stop_deletes_at_bc_with_the_etag(bc, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="sub-1", etag='W/"7"')

    subscriptions.stop(subscription)

    assert bc.requests[0].method == "DELETE"
    assert bc.requests[0].headers["If-Match"] == 'W/"7"'
    assert Subscription.objects.get().status == Status.STOPPED
