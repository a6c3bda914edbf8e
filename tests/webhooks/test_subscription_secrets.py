"""No clientState anywhere: pages, events, emails, command output and log lines are searched.

The clientState is the only proof a notification comes from BC: whoever reads it can forge
changes. It is encrypted at rest and shown to nobody, whatever they may see in the admin.
"""

import io
import logging
from datetime import timedelta

import pytest
import responses
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from authentications.connections.models import Event
from authentications.webhooks.models import Subscription
from tests.webhooks.helpers import (
    FakeSubscriptionsAtBC,
    make_subscription,
    notification_item,
    post_notifications,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def bc(tokens_planted):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield FakeSubscriptionsAtBC(mocked, tokens_planted.base_url)


def test_the_client_state_is_encrypted_at_rest(tokens_planted):
    subscription = make_subscription(tokens_planted)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_state FROM authentications_subscription WHERE id = %s",
            [subscription.pk],
        )
        (raw,) = cursor.fetchone()

    assert str(subscription.client_state) not in str(bytes(raw) if raw else raw)


def test_no_client_state_in_pages_events_emails_output_or_logs(
    admin_client, client, bc, tokens_planted, notify_list, caplog
):
    caplog.set_level(logging.DEBUG)
    active = make_subscription(tokens_planted, subscription_id="sub-1", etag='W/"1"')
    failing = make_subscription(
        tokens_planted,
        entity="items",
        subscription_id="sub-2",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    secrets = {str(active.client_state), str(failing.client_state)}
    produced = []
    bc.answer_status = 500  # The renewal fails and is reported.

    produced.append(post_notifications(client, [notification_item(active, "c-1")]).content)
    forged = notification_item(active, "c-2", clientState=str(failing.client_state))
    produced.append(post_notifications(client, [forged]).content)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("refresh_tokens", stdout=out, stderr=out)
    produced.append(out.getvalue().encode())
    for url in (
        "/admin/authentications/subscription/",
        f"/admin/authentications/subscription/{active.pk}/change/",
        f"/admin/authentications/subscription/{failing.pk}/change/",
        "/admin/authentications/changenotification/",
        f"/admin/authentications/authentication/{tokens_planted.pk}/change/",
    ):
        page = admin_client.get(url)
        assert page.status_code == 200, url
        produced.append(page.content)

    everything = "\n".join(
        [
            *(part.decode(errors="replace") for part in produced),
            *(message.body + str(message.alternatives) for message in mail.outbox),
            *Event.objects.values_list("detail", flat=True),
            *Subscription.objects.values_list("last_error", flat=True),
            caplog.text,
        ]
    )
    assert Subscription.objects.get(pk=failing.pk).status == Subscription.Status.FAILING
    assert mail.outbox, "the failing renewal was reported"
    assert not [secret for secret in secrets if secret in everything]
    assert repr(active).count(str(active.client_state)) == 0
    assert str(active.client_state) not in str(active)
