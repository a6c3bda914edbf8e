"""An authentication's credential as MSAL takes it: its client secret, or its certificate.

`oauth` asks here rather than reading `client_secret`, so every flow (sign-in, refresh,
client credentials) works with either kind.
"""

from django.utils import timezone
from django.utils.crypto import salted_hmac

from authentications.connections.models import Authentication

# Entra refused the credential: the status is one (no migration), its words follow the
# credential in use, so nobody hunts for a client secret a certificate connection lacks.
CERTIFICATE_REFUSED = "Certificate refused or expired"
ANY_CREDENTIAL_REFUSED = "Client secret or certificate refused"


def for_msal(authentication, certificate=None):
    """MSAL's `client_credential`: `certificate` when given, else the one in use."""
    if certificate is None and authentication.uses_certificate:
        certificate = authentication.certificates.current()
        if certificate is None:
            return ""
    if certificate is not None:
        return certificate.msal_credential()
    return authentication.client_secret


def missing(authentication):
    """Why `authentication` cannot prove itself to Entra yet, in words for staff; "" when it
    can. A sign-in started without its credential ends at Microsoft in advice about a wrong
    secret, which helps nobody."""
    if authentication.has_credential():
        return ""
    if authentication.uses_certificate:
        return (
            f"“{authentication}” signs with a certificate and has none yet: generate or upload "
            "one under Certificates, upload it to the app registration in Entra (Certificates "
            "& secrets > Certificates), then sign in."
        )
    return (
        f"“{authentication}” has no client secret: enter the secret's Value from Entra "
        "(Certificates & secrets), then sign in."
    )


def fingerprint(authentication):
    """A keyed hash of the credential in use: it tells when someone changed it, and no more."""
    parts = [authentication.client_id, authentication.tenant_id, authentication.client_secret]
    if authentication.uses_certificate:
        certificate = authentication.certificates.current()
        parts[2:] = ["certificate", certificate.thumbprint_sha256 if certificate else ""]
    credentials = "\n".join(parts)
    return salted_hmac("bcconnect.tokens.refused-credentials", credentials).hexdigest()


def expires_on(authentication):
    """The day the credential in use expires: the certificate's, or the secret's as entered."""
    if not authentication.uses_certificate:
        return authentication.client_secret_expires_on
    certificate = authentication.certificates.current()
    return timezone.localdate(certificate.not_after) if certificate else None


def status_label(authentication, status=None):
    """`status` (by default the stored one) as people read it: a refused credential is
    named as the one in use."""
    status = Authentication.Status(status or authentication.status)
    if status == Authentication.Status.SECRET_INVALID and authentication.uses_certificate:
        return CERTIFICATE_REFUSED
    return status.label
