"""What bcconnect stores: authentications, pending sign-ins and the audit trail.

Every secret lives in a Fernet-encrypted column (`fernet_fields`), so callers never
encrypt or decrypt by hand and the raw database row holds no usable credential.
"""

import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone

from authentications.kit.fields import EncryptedTextField, Undecryptable, undecryptable_fields
from authentications.kit.validators import (
    validate_base_url,
    validate_guid,
    validate_name,
    validate_tenant,
)

REFRESH_TOKEN_LIFETIME = timedelta(days=90)  # Entra's inactivity limit for refresh tokens.


def new_link_nonce():
    return secrets.token_urlsafe(16)


def mask(value, *, keep=6):
    """Show the first and last few characters: enough to compare, useless to steal."""
    if not value:
        return ""
    if len(value) <= keep * 3:
        return "•" * 8
    return f"{value[:keep]}…{value[-keep:]}"


class Authentication(models.Model):
    class Kind(models.TextChoices):
        USER_IMPERSONATION = "user_impersonation", "OAuth 2.0 - User impersonation"
        SERVICE_TO_SERVICE = "service_to_service", "OAuth 2.0 - Service-to-service"

    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected", "Not connected"
        CONNECTED = "connected", "Connected"
        NEEDS_SIGN_IN = "needs_sign_in", "Needs sign-in"
        FAILING = "failing", "Failing"
        SECRET_INVALID = "secret_invalid", "Client secret expired or wrong"
        APP_MISSING = "app_missing", "App registration missing or disabled"

    class GrantedVia(models.TextChoices):
        ADMIN = "admin", "Admin"
        LINK = "link", "Authorization URL"
        CLIENT_CREDENTIALS = "client_credentials", "Client credentials"

    class Credential(models.TextChoices):
        SECRET = "secret", "Client secret"
        CERTIFICATE = "certificate", "Certificate"

    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    kind = models.CharField(
        max_length=32, choices=Kind.choices, default=Kind.USER_IMPERSONATION, verbose_name="type"
    )
    client_id = models.CharField(
        "Application (client) ID", max_length=36, validators=[validate_guid]
    )
    # Blank only for service-to-service awaiting admin consent ("organizations"): the
    # consenting tenant is stored then. The form requires it for user impersonation.
    tenant_id = models.CharField(
        "Directory (tenant) ID", max_length=253, blank=True, validators=[validate_tenant]
    )
    credential_type = models.CharField(
        "credential", max_length=16, choices=Credential.choices, default=Credential.SECRET
    )
    client_secret = EncryptedTextField("client secret", blank=True)
    client_secret_expires_on = models.DateField(
        "client secret expires",
        null=True,
        blank=True,
        help_text="From Entra > Certificates & secrets; you are warned 30, 7 and 1 days before.",
    )
    base_url = models.URLField(
        "Business Central URL",
        max_length=500,
        validators=[validate_base_url],
        help_text="API root, e.g. https://api.businesscentral.dynamics.com/v2.0/"
        "&lt;tenant&gt;/&lt;environment&gt;/api/v2.0",
    )
    expected_user = models.CharField(
        max_length=254,
        blank=True,
        help_text="Optional: the only account that may grant access, as its UPN "
        "(jane@contoso.com), e-mail address or Entra object ID. For a guest, their home "
        "address (jane@fabrikam.com) or their UPN "
        "(jane_fabrikam.com#EXT#@contoso.onmicrosoft.com) both work. An address is sent to "
        "Microsoft as a login hint; a grant by any other account is refused.",
    )

    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.NOT_CONNECTED, db_index=True
    )

    granted_by_upn = models.CharField("granted by (UPN)", max_length=254, blank=True)
    granted_by_name = models.CharField("granted by (name)", max_length=254, blank=True)
    granted_by_oid = models.CharField("granted by (object ID)", max_length=64, blank=True)
    granted_via = models.CharField(max_length=32, choices=GrantedVia.choices, blank=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)

    last_error = models.TextField(blank=True)
    last_error_code = models.CharField(max_length=64, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # A keyed hash of the client ID, tenant and secret that Entra refused (secret invalid, app
    # missing): code and cron do not ask Entra again until they change or a person asks.
    refused_credentials = models.CharField(max_length=64, blank=True, editable=False)
    secret_expiry_notified_days = models.PositiveIntegerField(null=True, blank=True)

    # The refresh lease: whoever sets lease_id while lease_until is past may refresh.
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_id = models.CharField(max_length=64, blank=True)
    # Rotating this revokes every Authorization URL issued so far.
    link_nonce = models.CharField(max_length=64, default=new_link_nonce)
    # Bumped by every change to the connection (`changes.change_connection`): a refresh or
    # sign-in that started before it stores only while this is still what it read.
    generation = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            (
                "authorize_authentication",
                "Can start sign-ins and see, regenerate or email the Authorization URL",
            ),
            ("view_token", "Can see the masked access token"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_user_impersonation(self):
        return self.kind == self.Kind.USER_IMPERSONATION

    @property
    def cannot_decrypt(self):
        """Whether a stored secret (or the private key of the certificate in use) was
        encrypted with a key no longer in FERNET_KEYS."""
        if undecryptable_fields(self):
            return True
        current = self.uses_certificate and self.pk and self.certificates.current()
        return bool(current) and isinstance(current.private_key, Undecryptable)

    @property
    def uses_certificate(self):
        return self.credential_type == self.Credential.CERTIFICATE

    def has_credential(self):
        """Whether the credential in use is stored: the client secret, or a current certificate."""
        if self.uses_certificate:
            return bool(self.pk and self.certificates.current())
        return bool(self.client_secret)

    def has_credentials(self):
        return bool(self.client_id and self.tenant_id and self.base_url and self.has_credential())

    def token_valid_for(self, seconds=0):
        """Whether the stored access token stays valid for at least `seconds` more."""
        if not self.access_token or not self.access_token_expires_at:
            return False
        return self.access_token_expires_at > timezone.now() + timedelta(seconds=seconds)

    @property
    def masked_access_token(self):
        return mask(self.access_token)

    @property
    def sign_in_valid_until(self):
        """When the refresh token dies if unused (Entra: 90 days of inactivity)."""
        if not self.refresh_token:
            return None
        last_use = self.last_refreshed_at or self.granted_at
        return last_use + REFRESH_TOKEN_LIFETIME if last_use else None

    @property
    def environment_name(self):
        """The BC environment named in the base URL (…/v2.0/<tenant>/<environment>/api/…)."""
        parts = [part for part in urlsplit(self.base_url or "").path.split("/") if part]
        if len(parts) >= 3 and parts[0] == "v2.0":
            return parts[2]
        return ""

    @property
    def granted_by_display(self):
        if self.granted_by_name and self.granted_by_upn:
            return f"{self.granted_by_name} ({self.granted_by_upn})"
        return self.granted_by_name or self.granted_by_upn

    def record(self, kind, *, actor="", detail=""):
        return Event.objects.create(authentication=self, kind=kind, actor=actor, detail=detail)


class AuthorizationRequestQuerySet(models.QuerySet):
    def claim(self, state):
        """Mark the pending sign-in for `state` used; True for exactly one caller, once."""
        now = timezone.now()
        return bool(
            self.filter(state=state, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
        )


class AuthorizationRequest(models.Model):
    """One pending sign-in, found again by its OAuth `state` when Microsoft answers.

    Kept in the database, not the session: whoever finishes the sign-in (a BC user
    following an emailed link) may have no session at all.
    """

    class Via(models.TextChoices):
        ADMIN = "admin", "Admin"
        LINK = "link", "Authorization URL"

    class Purpose(models.TextChoices):
        SIGN_IN = "sign_in", "Sign-in"
        ADMIN_CONSENT = "admin_consent", "Admin consent"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        GRANTED = "granted", "Granted"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    authentication = models.ForeignKey(
        Authentication, on_delete=models.CASCADE, related_name="authorization_requests"
    )
    state = models.CharField(max_length=128, unique=True)
    flow = EncryptedTextField()  # MSAL's flow dict as JSON: PKCE verifier, nonce, state.
    binding_hash = models.CharField(max_length=64)
    started_via = models.CharField(max_length=16, choices=Via.choices, default=Via.ADMIN)
    # What Microsoft is asked for: a user's sign-in, or an administrator's consent for a
    # tenant (service-to-service); the callback finishes each its own way.
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.SIGN_IN)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    link_nonce = models.CharField(max_length=64, blank=True)
    # The authentication's generation when this sign-in started: it grants only while
    # nothing changed the connection since.
    generation = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    error_message = models.TextField(blank=True)

    objects = AuthorizationRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Sign-in for {self.authentication} ({self.get_outcome_display()})"


class Event(models.Model):
    """The audit trail. `detail` is written for people and never holds a secret."""

    class Kind(models.TextChoices):
        SIGN_IN_STARTED = "sign_in_started", "Sign-in started"
        SIGN_IN_GRANTED = "sign_in_granted", "Access granted"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        TOKEN_ACQUIRED = "token_acquired", "Token acquired"
        TOKEN_REFRESHED = "token_refreshed", "Token refreshed"
        REFRESH_FAILED = "refresh_failed", "Token refresh failed"
        NEEDS_SIGN_IN = "needs_sign_in", "Needs a new sign-in"
        LINK_CREATED = "link_created", "Authorization URL created"
        LINK_EMAILED = "link_emailed", "Authorization URL emailed"
        LINK_REVOKED = "link_revoked", "Authorization URLs revoked"
        SECRET_EXPIRY = "secret_expiry", "Client secret expiry warning"
        DISCONNECTED = "disconnected", "Disconnected"
        KEY_ROTATED = "key_rotated", "Encryption key rotated"
        ADMIN_CONSENT_GRANTED = "admin_consent_granted", "Admin consent granted"
        CERTIFICATE_CHANGED = "certificate_changed", "Certificate changed"
        CERTIFICATE_EXPIRY = "certificate_expiry", "Certificate expiry warning"
        ENDPOINT_MOVED = "endpoint_moved", "Endpoint pointed at another authentication"
        ENDPOINT_WRITE_TESTED = "endpoint_write_tested", "Endpoint tested (changed data)"
        SUBSCRIPTION_CREATED = "subscription_created", "Webhook subscription created"
        SUBSCRIPTION_RECREATED = "subscription_recreated", "Webhook subscription recreated"
        SUBSCRIPTION_FAILED = "subscription_failed", "Webhook subscription failing"
        SUBSCRIPTION_STOPPED = "subscription_stopped", "Webhook subscription deleted"

    authentication = models.ForeignKey(
        Authentication, on_delete=models.CASCADE, related_name="events"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.CharField(max_length=254, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"
