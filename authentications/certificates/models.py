"""The certificates an authentication signs its client assertions with.

During a rollover an authentication has two: the *current* one, which every token request
uses, and the *next* one, waiting until Entra knows it. A switched-out certificate stays
as *old* until someone deletes it, so Entra's list and ours can be compared.
"""

from django.db import models
from django.db.models import Q

from authentications.certificates.keypairs import KeyPair, msal_credential
from authentications.kit.fields import EncryptedTextField


class CertificateQuerySet(models.QuerySet):
    """`authentication.certificates.current()` is how the token core reaches a certificate:
    through the reverse relation, so `connections` never imports this capability."""

    def current(self):
        return self.filter(role=Certificate.Role.CURRENT).first()

    def next(self):
        return self.filter(role=Certificate.Role.NEXT).first()

    def current_for(self, authentication):
        return self.filter(authentication=authentication).current()

    def next_for(self, authentication):
        return self.filter(authentication=authentication).next()


class Certificate(models.Model):
    class Role(models.TextChoices):
        CURRENT = "current", "Current"
        NEXT = "next", "Next"
        OLD = "old", "Old (switched out)"

    class Source(models.TextChoices):
        GENERATED = "generated", "Generated here"
        UPLOADED = "uploaded", "Uploaded"

    authentication = models.ForeignKey(
        "authentications.Authentication", on_delete=models.CASCADE, related_name="certificates"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    private_key = EncryptedTextField()  # PEM, PKCS#8, never rendered, exported or logged.
    certificate_pem = models.TextField()  # Public: what is uploaded to Entra.
    subject = models.CharField(max_length=255)
    thumbprint_sha1 = models.CharField("SHA-1 thumbprint", max_length=40)
    thumbprint_sha256 = models.CharField("SHA-256 thumbprint", max_length=64)
    not_before = models.DateTimeField("valid from")
    not_after = models.DateTimeField("valid until")
    # The smallest reminder (30, 7, 1 days) already emailed for this certificate.
    expiry_notified_days = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["authentication", "role", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["authentication"],
                condition=Q(role="current"),
                name="one_current_certificate",
            ),
            models.UniqueConstraint(
                fields=["authentication"], condition=Q(role="next"), name="one_next_certificate"
            ),
        ]

    def __str__(self):
        return f"{self.get_role_display()} certificate {self.thumbprint_sha1}"

    @property
    def key_pair(self):
        return KeyPair(self.private_key, self.certificate_pem)

    def msal_credential(self):
        """MSAL's `client_credential` for this certificate (what `connections.credentials`
        hands to `oauth`)."""
        return msal_credential(self.key_pair)
