"""API keys for other services, and the audit of every call they make.

Keys are made and checked by djangorestframework-api-key's `KeyGenerator` (its models module
is not used: importing it needs its app installed, with a second key table and admin):
only a SHA-512 hash is stored, the key is shown once, and the prefix (the part before the
dot) names it afterwards. Everything else a broker
needs sits beside it: scopes, the authentications it may use, expiry, a rate limit, and when
and from where it was last used.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework_api_key.crypto import KeyGenerator

from authentications.kit.validators import validate_name

LAST_USED_EVERY = timedelta(seconds=30)  # A key in constant use is not rewritten per call.


GENERATOR = KeyGenerator()  # `prefix.secret`: 8 + 32 random letters and digits.


class ApiKeyQuerySet(models.QuerySet):
    def create_key(self, **fields):
        """Make a key; return it with its plaintext, which is stored nowhere."""
        key = self.model(**fields)
        plaintext = key.assign_key()
        key.save()
        return key, plaintext

    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked=False).filter(
            models.Q(expiry_date__isnull=True) | models.Q(expiry_date__gt=now)
        )


class ApiKey(models.Model):
    """A key another service sends as `Authorization: Api-Key <key>`."""

    prefix = models.CharField(max_length=8, unique=True, editable=False)
    hashed_key = models.CharField(max_length=150, editable=False)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    name = models.CharField(max_length=100, validators=[validate_name])
    revoked = models.BooleanField(
        default=False, editable=False, help_text="A revoked key is refused; it cannot be undone."
    )
    expiry_date = models.DateTimeField(
        null=True, blank=True, verbose_name="Expires", help_text="Refused from this moment on."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="The staff user who made the key.",
    )
    scopes = models.JSONField(default=list, blank=True)
    all_authentications = models.BooleanField(
        default=False,
        help_text="Every authentication, including those added later (superusers only).",
    )
    authentications = models.ManyToManyField(
        "authentications.Authentication", blank=True, related_name="api_keys"
    )
    rate_limit = models.CharField(
        max_length=30,
        blank=True,
        help_text="Requests per second, minute, hour or day, e.g. 600/minute; empty uses "
        "BC_API_RATE_LIMIT.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        permissions = [("revoke_apikey", "Can revoke API key")]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def assign_key(self):
        plaintext, self.prefix, self.hashed_key = GENERATOR.generate()
        return plaintext

    def is_valid(self, plaintext: str) -> bool:
        return GENERATOR.verify(plaintext, self.hashed_key)

    @property
    def has_expired(self):
        return self.expiry_date is not None and self.expiry_date <= timezone.now()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def may_use(self, authentication_id) -> bool:
        if self.all_authentications:
            return True
        return self.authentications.filter(pk=authentication_id).exists()

    def usable_authentications(self, queryset):
        """`queryset` narrowed to the authentications this key may use."""
        if self.all_authentications:
            return queryset
        return queryset.filter(api_keys=self)

    def note_use(self, ip, now=None):
        """Record when and from where the key was used, at most every LAST_USED_EVERY."""
        now = now or timezone.now()
        fresh = self.last_used_at and now - self.last_used_at < LAST_USED_EVERY
        if fresh and self.last_used_ip == ip:
            return
        ApiKey.objects.filter(pk=self.pk).update(last_used_at=now, last_used_ip=ip)
        self.last_used_at, self.last_used_ip = now, ip


class ApiCall(models.Model):
    """One call to the API: who, what, how it ended. Never a token, a key or a body.

    The path keeps query option names but not their values (an OData `$filter` may hold
    customer data); the prefix stays when the key is deleted.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    key_prefix = models.CharField(max_length=8, blank=True, db_index=True)
    authentication = models.ForeignKey(
        "authentications.Authentication",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_calls",
    )
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=1000)
    status = models.PositiveSmallIntegerField()
    code = models.CharField(max_length=50, blank=True, help_text="The error's code, if any.")
    duration_ms = models.PositiveIntegerField()
    bytes = models.PositiveBigIntegerField(default=0, help_text="Bytes of the answer's body.")
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "API call"
        indexes = [models.Index(fields=["authentication", "-at"])]

    def __str__(self):
        return f"{self.method} {self.path} → {self.status}"
