"""Renewal races: overlapping cron runs and stale copies of a subscription row.

Two cron runs can load the same subscription before either renews it; the second one's copy
is then stale. It must neither recreate at BC a subscription the first one already recreated
(an orphan at BC, counting towards the 200 limit) nor write back the counters it loaded.
"""

import pytest
import responses

from authentications import subscriptions
from authentications.subscription_models import Subscription
from tests.bc_helpers import FakeSubscriptionsAtBC, make_subscription

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
