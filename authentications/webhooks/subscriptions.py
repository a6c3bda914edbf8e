"""BC webhook subscriptions: create, renew, recreate and delete them at Business Central.

BC handshakes on every create and renew by POSTing a validation token to our notification
URL; our endpoint echoes it only while `handshake_until` is in the future, which is set here
just before the request, with one conditional UPDATE that is also the renewal's lease (two
cron runs never renew the same subscription at once). A subscription lives three days: cron
renews those expiring within BC_SUBSCRIPTION_RENEW_HOURS, recreates one BC no longer knows
(404), and reports failures the way token failures are reported: status, consecutive
failures, one email when it starts failing.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from authentications import mail
from authentications.connections.models import Event
from authentications.connections.tokens import TokenError, bc_client
from authentications.kit import formatting
from authentications.webhooks.models import CLIENT_STATE_MAX_LENGTH, Subscription
from bcconnect.client import BusinessCentralError
from bcconnect.errors import BcconnectError

logger = logging.getLogger(__name__)

MAX_PER_ENVIRONMENT = 200  # BC refuses the 201st subscription of an environment.
SUPPORTED_RESOURCES = "api/microsoft/runtime/beta"
Status = Subscription.Status


class SubscriptionError(BcconnectError):
    """A subscription could not be created, renewed or deleted; `message` says why."""


@dataclass(frozen=True)
class Renewal:
    """One subscription's result in a cron run (printed: no secret in it)."""

    subscription: Subscription
    # renewed, recreated, created, failed, busy (another run holds it); in a dry run
    # "would renew" (or recreate, should BC answer 404) and "would create".
    outcome: str
    error: str = ""

    def line(self):
        name = str(self.subscription)
        if self.outcome == "failed":
            return f"Subscription {name}: FAILED: {self.error}"
        if self.outcome == "busy":
            return f"Subscription {name}: being renewed by another run"
        if self.outcome.startswith("would "):
            return f"Subscription {name}: {self.outcome} (dry run){self._expiry(', expires ')}"
        expires = formatting.when(self.subscription.expires_at, zone=True)
        return f"Subscription {name}: {self.outcome}, valid until {expires}"

    def _expiry(self, prefix):
        if self.subscription.expires_at is None:
            return ""
        return prefix + formatting.when(self.subscription.expires_at, zone=True)


def notification_url():
    return settings.PUBLIC_BASE_URL + reverse("authentications:notifications")


def supported_resources(authentication, company_id):
    """What BC can send notifications for in this company: `v2.0/customers`,
    `<publisher>/<group>/<version>/<entity>` for custom APIs (webhookSupportedResources)."""
    client = bc_client(authentication).environment_client(SUPPORTED_RESOURCES)
    rows = client.get(f"companies({company_id})/webhookSupportedResources").get("value", [])
    return sorted({row.get("resource", "") for row in rows if row.get("resource")})


def create(subscription, *, actor=""):
    """Create `subscription` at BC (it is saved first); raises SubscriptionError."""
    if not subscription.client_state:
        raise SubscriptionError("The clientState cannot be decrypted.", code="key_missing")
    if subscription.pk is None:
        # Only a new row is saved whole: saving a loaded one would put back the counters and
        # subscription ID it was loaded with, over what the endpoint or another run wrote.
        subscription.save()
    if not _take(subscription, expected_id=""):
        raise SubscriptionError("Another request is creating or renewing it.", code="busy")
    return _create_holding_lease(subscription, actor=actor)


def _create_holding_lease(subscription, *, actor):
    """POST the subscription to BC; the caller holds its lease (handshake window)."""
    try:
        _check_limit(subscription)
        answer = _client(subscription).post("subscriptions", json=_body(subscription))
    except BcconnectError as err:
        _failed(subscription, err, actor=actor)
        raise SubscriptionError(_explain(subscription, err), code=err.code) from err
    _stored(subscription, answer)
    subscription.authentication.record(
        Event.Kind.SUBSCRIPTION_CREATED, actor=actor, detail=f"{subscription}: created at BC."
    )
    return subscription


def renew(subscription, *, actor=""):
    """Renew `subscription` for three more days (PATCH with its ETag), or recreate it."""
    if not subscription.subscription_id:
        return create(subscription, actor=actor), "created"
    if not _take(subscription, expected_id=subscription.subscription_id):
        # Another run holds it, or renewed or recreated it since this copy was loaded.
        return subscription, "busy"
    Subscription.objects.filter(pk=subscription.pk).update(status=Status.RENEWING)
    try:
        answer = _patch(subscription)
    except BusinessCentralError as err:
        if err.status == 404:
            return _recreate(subscription, actor=actor), "recreated"
        _failed(subscription, err, actor=actor)
        raise SubscriptionError(_explain(subscription, err), code=err.code) from err
    except BcconnectError as err:
        _failed(subscription, err, actor=actor)
        raise SubscriptionError(_explain(subscription, err), code=err.code) from err
    _stored(subscription, answer)
    return subscription, "renewed"


def _patch(subscription):
    """PATCH with the stored ETag; once more with BC's current one if it moved on (412)."""
    client = _client(subscription)
    try:
        return client.patch(_path(subscription), _body(subscription), subscription.etag or "*")
    except BusinessCentralError as err:
        if err.status != 412:
            raise
    current = client.get(_path(subscription)).get("@odata.etag") or "*"
    return client.patch(_path(subscription), _body(subscription), current)


def _recreate(subscription, *, actor):
    """BC forgot the subscription (expired, or deleted it after failed deliveries).

    The renewal's lease is kept (and extended for the POST's handshake) rather than let go
    and taken again: in between, an overlapping cron run could take it and create a second
    subscription at BC.
    """
    until = timezone.now() + _handshake_window()
    Subscription.objects.filter(pk=subscription.pk).update(
        subscription_id="", etag="", status=Status.DELETED_BY_BC, handshake_until=until
    )
    subscription.subscription_id, subscription.etag = "", ""
    subscription.status, subscription.handshake_until = Status.DELETED_BY_BC, until
    _create_holding_lease(subscription, actor=actor)
    subscription.authentication.record(
        Event.Kind.SUBSCRIPTION_RECREATED,
        actor=actor,
        detail=f"{subscription}: Business Central no longer knew it (404); created it again.",
    )
    return subscription


def stop(subscription, *, actor=""):
    """Delete `subscription` at BC; a subscription BC no longer knows counts as deleted.

    Raises SubscriptionError when BC refused; the row is then still marked stopped, so its
    notifications are answered 404, which makes BC delete it on its next delivery.
    """
    Subscription.objects.filter(pk=subscription.pk).update(status=Status.STOPPED)
    subscription.status = Status.STOPPED
    if subscription.subscription_id:
        try:
            _client(subscription).delete(_path(subscription), subscription.etag or "*")
        except BcconnectError as err:
            if getattr(err, "status", None) != 404:
                raise SubscriptionError(_explain(subscription, err), code=err.code) from err
    subscription.authentication.record(
        Event.Kind.SUBSCRIPTION_STOPPED, actor=actor, detail=f"{subscription}: deleted at BC."
    )


def due_subscriptions(*, within=None):
    """The subscriptions cron would renew, create or recreate now (what --dry-run lists)."""
    within = within or timedelta(hours=settings.BC_SUBSCRIPTION_RENEW_HOURS)
    return Subscription.objects.select_related("authentication").filter(
        Q(expires_at__isnull=True) | Q(expires_at__lt=timezone.now() + within),
        status__in=(*Subscription.LIVE, Status.PENDING, Status.DELETED_BY_BC),
    )


def planned_outcome(subscription):
    """What a run would do to a due subscription: renew it (or recreate it, should BC answer
    404, which only the PATCH tells), or create it when BC has no ID for it yet."""
    return "would renew" if subscription.subscription_id else "would create"


def renew_due(*, within=None):
    """Renew every subscription expiring soon, (re)create the ones that need it; cron's part."""
    results = []
    for subscription in due_subscriptions(within=within):
        try:
            subscription, outcome = renew(subscription, actor="cron")
        except SubscriptionError as err:
            results.append(Renewal(subscription, "failed", err.message))
        else:
            results.append(Renewal(subscription, outcome))
    return results


# --- BC requests ---------------------------------------------------------------------------


def _client(subscription):
    """A client for the subscription's API: a custom API has its own `subscriptions`."""
    return bc_client(subscription.authentication).environment_client(subscription.api_path)


def _path(subscription):
    return f"subscriptions('{subscription.subscription_id}')"


def _body(subscription):
    client_state = str(subscription.client_state)
    if len(client_state) > CLIENT_STATE_MAX_LENGTH:
        raise SubscriptionError("The clientState is longer than BC allows.", code="too_long")
    return {
        "notificationUrl": notification_url(),
        "resource": "/" + subscription.resource,  # As BC's documentation writes it.
        "clientState": client_state,
    }


def _check_limit(subscription):
    """Say so before BC refuses: an environment holds at most 200 subscriptions."""
    existing = _client(subscription).get("subscriptions").get("value", [])
    if len(existing) >= MAX_PER_ENVIRONMENT:
        raise SubscriptionError(
            f"The environment already has {len(existing)} webhook subscriptions, the most "
            f"Business Central allows ({MAX_PER_ENVIRONMENT}); delete unused ones first.",
            code="subscription_limit",
        )


# --- state ---------------------------------------------------------------------------------


def _handshake_window():
    connect, read = settings.BC_HTTP_TIMEOUT
    return timedelta(seconds=2 * (connect + read) + 10)


def _take(subscription, *, expected_id):
    """Open the handshake window; False while another create or renew holds it, or when the
    row no longer has `expected_id` (another run renewed or recreated it meanwhile)."""
    now = timezone.now()
    until = now + _handshake_window()
    taken = (
        Subscription.objects.filter(pk=subscription.pk, subscription_id=expected_id)
        .filter(Q(handshake_until__isnull=True) | Q(handshake_until__lt=now))
        .update(handshake_until=until)
    )
    subscription.handshake_until = until if taken else subscription.handshake_until
    return bool(taken)


def _stored(subscription, answer):
    answer = answer or {}
    changes = {
        "subscription_id": str(answer.get("subscriptionId") or subscription.subscription_id),
        "etag": str(answer.get("@odata.etag") or ""),
        "expires_at": parse_datetime(str(answer.get("expirationDateTime") or "")),
        "status": Status.ACTIVE,
        "handshake_until": None,
        "consecutive_failures": 0,
        "last_error": "",
    }
    Subscription.objects.filter(pk=subscription.pk).update(**changes)
    for name, value in changes.items():
        setattr(subscription, name, value)


def _failed(subscription, err, *, actor):
    message = _explain(subscription, err)
    was_failing = subscription.status == Status.FAILING
    changes = {
        "status": Status.FAILING,
        "handshake_until": None,
        "consecutive_failures": subscription.consecutive_failures + 1,
        "last_error": message,
    }
    Subscription.objects.filter(pk=subscription.pk).update(**changes)
    for name, value in changes.items():
        setattr(subscription, name, value)
    if not was_failing:  # One email and one event per transition, not per attempt.
        subscription.authentication.record(
            Event.Kind.SUBSCRIPTION_FAILED, actor=actor, detail=f"{subscription}: {message}"
        )
        mail.notify_quietly(
            "subscription_failing",
            {
                "subscription": subscription,
                "reason": message,
                "admin_url": settings.PUBLIC_BASE_URL
                + reverse("admin:authentications_subscription_change", args=[subscription.pk]),
            },
            subject=f"Webhook subscription “{subscription}” is failing",
        )


def _explain(subscription, err):
    if isinstance(err, TokenError) and err.needs_sign_in:
        return (
            f"The authentication “{subscription.authentication}” needs a new sign-in, so the "
            f"subscription cannot be renewed: {err.message}"
        )
    return str(err)
