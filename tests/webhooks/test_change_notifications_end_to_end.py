"""The whole path, for real: the site served by a real server, the fake BC creating and
renewing the subscription with its handshake, notifying after changes made through its API,
and the real worker (a child process) handing the changes to the site's handler."""

import json

import pytest

from authentications.connections.tokens import bc_client
from authentications.webhooks import subscriptions
from authentications.webhooks.models import ChangeNotification, Subscription
from tests.helpers import child_env, run_manage_py
from tests.webhooks.helpers import worker_command

# The live server and the worker process share the database: no test transaction. .ci/run
# runs these again with RQ on Redis as the task engine.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.task_engines]


@pytest.fixture
def site(live_server, settings, fake_microsoft):
    """The live site at its own PUBLIC_BASE_URL; the fake BC's webhooks quick but delayed."""
    settings.PUBLIC_BASE_URL = live_server.url
    webhooks = fake_microsoft.bc.webhooks
    webhooks.retry_delays = (0.05, 0.05, 0.05)
    webhooks.handshake_timeout = webhooks.notification_timeout = 10.0
    return live_server.url


def run_worker_process(log_path):
    env = child_env(
        BC_NOTIFICATION_HANDLERS="tests.webhooks.notification_handlers",
        NOTIFICATION_LOG=str(log_path),
    )
    return run_manage_py(*worker_command(), env=env, timeout=120)


def new_subscription(authentication, fake):
    return Subscription(
        authentication=authentication, company_id=fake.bc.company.id, entity="customers"
    )


def test_a_change_in_bc_reaches_the_handler_through_server_fake_and_worker(
    site, tokens_planted, fake_microsoft, tmp_path
):
    subscription = subscriptions.create(new_subscription(tokens_planted, fake_microsoft))
    assert [handshake.accepted for handshake in fake_microsoft.webhooks.handshakes] == [True]
    customers = bc_client(tokens_planted).company(fake_microsoft.bc.company.id)
    created = customers.post("customers", {"displayName": "Webhook Ltd"})
    customers.patch(f"customers({created['id']})", {"city": "Oslo"}, created["@odata.etag"])

    assert fake_microsoft.webhooks.wait_idle(10)
    assert {delivery.status for delivery in fake_microsoft.webhooks.deliveries} == {202}
    stored = ChangeNotification.objects.filter(subscription=subscription)
    assert stored.count() >= 1 and {row.record_id for row in stored} == {created["id"]}

    log_path = tmp_path / "delivered.log"
    result = run_worker_process(log_path)

    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in log_path.read_text().splitlines()]
    assert {record for _, record, _ in lines} == {created["id"]}
    assert lines[0][2] == "created"
    assert Subscription.objects.get().notifications_received == stored.count()


def test_renewal_and_recreation_with_the_fake_bc(site, tokens_planted, fake_microsoft):
    subscription = subscriptions.create(new_subscription(tokens_planted, fake_microsoft))
    first_etag = subscription.etag

    subscription, outcome = subscriptions.renew(subscription)
    assert outcome == "renewed" and subscription.etag != first_etag
    fake_microsoft.webhooks.drop(subscription.subscription_id)  # BC deleted it, silently.

    subscription, outcome = subscriptions.renew(subscription)

    assert outcome == "recreated"
    assert subscription.subscription_id in fake_microsoft.webhooks.subscriptions
    assert [handshake.accepted for handshake in fake_microsoft.webhooks.handshakes] == [True] * 3


def test_an_expired_subscription_is_recreated_by_cron(site, tokens_planted, fake_microsoft):
    from io import StringIO

    from django.core.management import call_command

    subscription = subscriptions.create(new_subscription(tokens_planted, fake_microsoft))
    fake_microsoft.webhooks.advance(days=3, minutes=1)
    Subscription.objects.filter(pk=subscription.pk).update(expires_at=None)

    out = StringIO()
    call_command("refresh_tokens", stdout=out)

    assert "recreated" in out.getvalue()
    stored = Subscription.objects.get()
    assert stored.subscription_id != subscription.subscription_id
    assert stored.subscription_id in fake_microsoft.webhooks.subscriptions


def test_a_handshake_nobody_asked_for_fails_the_subscription_at_the_fake(
    site, fake_microsoft, tokens_planted
):
    """Someone else asks BC to send our URL their notifications: our URL refuses."""
    client = bc_client(tokens_planted)
    with pytest.raises(Exception, match="not validated"):
        client.post(
            "subscriptions",
            {
                "notificationUrl": f"{site}/authentications/notifications/",
                "resource": f"api/v2.0/companies({fake_microsoft.bc.company.id})/customers",
                "clientState": "theirs",
            },
        )

    assert fake_microsoft.webhooks.subscriptions == {}
    assert json.dumps([h.status for h in fake_microsoft.webhooks.handshakes]) == "[403]"
