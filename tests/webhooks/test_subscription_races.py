"""Renewal races: overlapping cron runs and stale copies of a subscription row.

Two cron runs can load the same subscription before either renews it; the second one's copy
is then stale. It must neither recreate at BC a subscription the first one already recreated
(an orphan at BC, counting towards the 200 limit) nor write back the counters it loaded.
"""

import json
from datetime import timedelta
from io import StringIO

import pytest
import responses
from django.core.management import call_command
from django.utils import timezone

from authentications.webhooks import subscriptions
from authentications.webhooks.models import Subscription
from tests.webhooks.helpers import FakeSubscriptionsAtBC, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def bc_for_races(tokens_planted):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield FakeSubscriptionsAtBC(mocked, tokens_planted.base_url)


def test_two_overlapping_runs_recreate_a_deleted_subscription_once(bc_for_races, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="gone")
    bc_for_races.forgotten.add("gone")
    loaded_by_second_run = Subscription.objects.get(pk=subscription.pk)

    _, first = subscriptions.renew(subscription, actor="cron")
    _, second = subscriptions.renew(loaded_by_second_run, actor="cron")

    assert (first, second) == ("recreated", "busy")
    assert [request.method for request in bc_for_races.requests] == ["PATCH", "POST"]
    assert Subscription.objects.get().subscription_id == "sub-1"


def test_a_recreation_keeps_the_counters_the_endpoint_wrote(bc_for_races, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="gone")
    bc_for_races.forgotten.add("gone")
    Subscription.objects.filter(pk=subscription.pk).update(
        notifications_received=3, notifications_dropped=2
    )

    _, outcome = subscriptions.renew(subscription, actor="cron")

    stored = Subscription.objects.get()
    assert outcome == "recreated"
    assert (stored.notifications_received, stored.notifications_dropped) == (3, 2)


def test_a_stale_copy_does_not_renew_what_another_run_just_renewed(bc_for_races, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="sub-1")
    loaded_by_second_run = Subscription.objects.get(pk=subscription.pk)
    Subscription.objects.filter(pk=subscription.pk).update(subscription_id="sub-2")

    _, outcome = subscriptions.renew(loaded_by_second_run, actor="cron")

    assert outcome == "busy"
    assert bc_for_races.requests == []


def test_a_dry_run_lists_the_subscriptions_it_would_renew_or_create(bc_for_races, tokens_planted):
    soon = make_subscription(
        tokens_planted, subscription_id="sub-9", expires_at=timezone.now() + timedelta(hours=2)
    )
    make_subscription(
        tokens_planted,
        entity="items",
        subscription_id="",
        status=Subscription.Status.PENDING,
        expires_at=None,
    )
    make_subscription(tokens_planted, entity="vendors", subscription_id="sub-later")

    out = StringIO()
    call_command("refresh_tokens", "--dry-run", stdout=out)

    lines = [line for line in out.getvalue().splitlines() if line.startswith("Subscription")]
    assert len(lines) == 2
    assert any("customers" in line and "would renew (dry run), expires" in line for line in lines)
    assert any("items" in line and "would create (dry run)" in line for line in lines)
    assert bc_for_races.requests == []
    assert Subscription.objects.get(pk=soon.pk).etag == soon.etag
    assert str(soon.client_state) not in out.getvalue()


def test_a_dry_run_in_json_gives_one_object_per_due_subscription(bc_for_races, tokens_planted):
    make_subscription(
        tokens_planted, subscription_id="sub-9", expires_at=timezone.now() + timedelta(hours=2)
    )

    out = StringIO()
    call_command("refresh_tokens", "--dry-run", "--json", stdout=out)

    planned = [json.loads(line) for line in out.getvalue().splitlines() if '"subscription"' in line]
    assert [row["outcome"] for row in planned] == ["would renew"]
    assert bc_for_races.requests == []
