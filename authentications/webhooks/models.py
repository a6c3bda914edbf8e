"""What bcconnect stores about BC webhooks: subscriptions and the notifications they bring.

A notification is written here before BC gets its 202, so that once BC stops retrying
nothing depends on BC any more: delivery to the site's handlers reads only these rows.
"""

import secrets
from datetime import timedelta

from django.db import models
from django.utils import timezone

from authentications.kit.fields import EncryptedTextField

CLIENT_STATE_MAX_LENGTH = 2048  # BC refuses a longer clientState.


def new_client_state():
    return secrets.token_urlsafe(32)


class Subscription(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Not created yet"
        ACTIVE = "active", "Active"
        RENEWING = "renewing", "Renewing"
        FAILING = "failing", "Failing"
        DELETED_BY_BC = "deleted_by_bc", "Deleted by Business Central"
        STOPPED = "stopped", "Stopped"

    # Subscriptions whose notifications we accept: BC may send while we renew or retry.
    LIVE = (Status.ACTIVE, Status.RENEWING, Status.FAILING)

    authentication = models.ForeignKey(
        "authentications.Authentication", on_delete=models.CASCADE, related_name="subscriptions"
    )
    company_id = models.CharField("company ID", max_length=36)
    company_name = models.CharField(max_length=250, blank=True)
    entity = models.CharField(
        max_length=100,
        help_text="The entity set, e.g. customers, items, salesOrders; what handlers "
        "register for with @change_notifications.on(...).",
    )
    api_path = models.CharField(
        "API",
        max_length=200,
        default="api/v2.0",
        help_text="api/v2.0 for the standard API; "
        "api/&lt;publisher&gt;/&lt;group&gt;/&lt;version&gt; for a custom API.",
    )
    subscription_id = models.CharField("BC subscription ID", max_length=64, blank=True)
    client_state = EncryptedTextField(default=new_client_state, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    etag = models.CharField(max_length=200, blank=True, editable=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # While set and in the future, one of our create or renew requests is at BC: its
    # handshake is answered, and no second renewal starts (the lease).
    handshake_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_notification_at = models.DateTimeField(null=True, blank=True)
    notifications_received = models.PositiveIntegerField(default=0)
    notifications_dropped = models.PositiveIntegerField(
        default=0, help_text="Items naming this subscription with a wrong clientState."
    )
    notifications_malformed = models.PositiveIntegerField(
        "malformed notifications",
        default=0,
        help_text="Items with the right clientState that could not be stored: no resource or "
        "changeType, another resource, or a changeType BC does not document.",
    )
    # A body over BC_NOTIFICATION_MAX_BYTES is answered 503 (BC retries it, then gives up
    # after 36 hours): counted on each subscription it names, so staff see they are lost.
    oversize_refused = models.PositiveIntegerField(
        "oversize bodies refused",
        default=0,
        help_text="Notification bodies over BC_NOTIFICATION_MAX_BYTES naming this "
        "subscription, answered 503 so BC retries them; raise the setting if this grows.",
    )
    last_oversize_at = models.DateTimeField("last oversize body", null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["authentication__name", "entity"]
        indexes = [models.Index(fields=["subscription_id"])]

    def __str__(self):
        return f"{self.entity} of {self.company_name or self.company_id} ({self.authentication})"

    @property
    def resource(self):
        """The resource as BC names it: `api/v2.0/companies(<id>)/customers`."""
        return f"{self.api_path.strip('/')}/companies({self.company_id})/{self.entity}"

    def expires_within(self, delta):
        return self.expires_at is None or self.expires_at < timezone.now() + delta


class ChangeNotification(models.Model):
    """One verified change from BC, kept until the site's handlers have taken it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        DELIVERING = "delivering", "Delivering"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        PARKED = "parked", "Parked (failed)"
        NO_HANDLER = "no_handler", "No handler"

    # Not yet delivered: a later change of the same record waits behind these.
    OPEN = (Status.PENDING, Status.DELIVERING, Status.RETRYING, Status.PARKED, Status.NO_HANDLER)
    # Waiting for a person: a handler to fix, or one to register (then replay).
    NEEDS_ATTENTION = (Status.PARKED, Status.NO_HANDLER)
    COLLECTION = "collection"

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="notifications"
    )
    # Also the handlers' idempotency key: the same change sent twice by BC is one row.
    key = models.CharField(max_length=64, unique=True)
    record_key = models.CharField(max_length=300)
    entity = models.CharField(max_length=100)
    record_id = models.CharField(max_length=100, blank=True)
    change_type = models.CharField(max_length=20)
    changed_at = models.DateTimeField(null=True, blank=True)
    resource = models.TextField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The handler given the change last (dotted path): named when its worker dies in it.
    handler = models.CharField(max_length=300, blank=True, default="", db_default="")
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["record_key", "status", "id"])]

    def __str__(self):
        what = self.record_id or "collection"
        return f"{self.change_type} {self.entity} {what}"

    def claim_expired(self):
        return self.claimed_until is not None and self.claimed_until < timezone.now()


RETENTION = timedelta(days=30)  # Delivered notifications are kept this long for the admin.
