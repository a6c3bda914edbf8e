"""Consent state of a connection: waiting for its first admin consent, or refused for want
of one.

The token core asks this before and after every service-to-service token request, so it
sits with the tokens; the consent *flow* (Microsoft's answer, proven by a token) is
`signin.consent`, and the Admin consent URL is minted by `link_tokens`.
"""

from authentications.connections import link_tokens, oauth

# Entra's answers to a client-credentials request in a tenant where the app has no service
# principal: no administrator consented there yet, or the consent was revoked (700016: the
# app "was not found in the directory"; 7000229: its service principal is missing; 65001:
# consent_required). In the app's home tenant 700016 can also mean a deleted app.
CONSENT_MISSING_AADSTS = {700016, 7000229, 65001}

AWAITING_CONSENT = (
    "Admin consent has not been granted yet: send the Admin consent URL to an administrator "
    "of the customer's tenant."
)


class ConsentMissing(oauth.TokenRefreshError):
    """Entra refused a service-to-service token because the tenant never consented (or took
    the consent back). Only a person fixes it, once, like a missing app registration: the
    connection stops asking until its credentials change or someone clicks "Refresh now"."""

    @property
    def secret_invalid(self):
        return False  # Entra answers 7000229 with invalid_client: the secret is not to blame.

    @property
    def app_missing(self):
        return True


def awaiting_consent(authentication):
    """Whether `authentication` is a service-to-service one still waiting for its first
    consent: everything filled in but the tenant, which the consent will name."""
    consent_link = link_tokens.link_available(authentication, link_tokens.ADMIN_CONSENT)
    return consent_link and not authentication.tenant_id


def in_plain_words(authentication, err):
    """`err`, Entra's refusal of a service-to-service token, told as a missing consent when
    that is what it means; any other refusal as it was."""
    missing = err.aadsts in CONSENT_MISSING_AADSTS or err.code == "consent_required"
    if authentication.is_user_impersonation or err.transient or not missing:
        return err
    message = (
        f"{AWAITING_CONSENT} Entra gives this app no token in tenant "
        f"{authentication.tenant_id}: no administrator "
        "of that tenant has consented to it, or the consent was revoked. Copy or email the "
        "Admin consent URL from this connection's admin page. If the tenant is your own, "
        "check in Entra > App registrations that the app exists and that the Application "
        "(client) ID and Directory (tenant) ID are right."
    )
    return ConsentMissing(message, code=err.code, aadsts=err.aadsts)
