"""Admin consent: an administrator of the customer's tenant lets a service-to-service app in.

A service-to-service app gets tokens in a tenant only once an administrator of that tenant
granted its application permission there (Business Central's API.ReadWrite.All). The
consent is started like a sign-in (`flows.start_admin_consent`: the same pending request,
single-use state and browser binding, from the admin or an Admin consent URL) and Microsoft
answers on the same callback; this module reads that answer.

The answer's `tenant` is only a claim anyone could type into the callback's address: it is
proven by asking that tenant for a client-credentials token, which Entra issues only after
the consent, and by reading the tenant the token names.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.utils import timezone

from authentications.connections import oauth
from authentications.connections.consent import CONSENT_MISSING_AADSTS
from authentications.connections.models import Authentication
from authentications.connections.oauth import ConsentError
from authentications.kit.validators import is_guid

# Entra's numbers for an account that may not consent for its organisation.
NOT_AN_ADMINISTRATOR_AADSTS = {90093, 90094, 90095, 90099}
WRONG_ACCOUNT_AADSTS = {50020, 50034}
DECLINED_AADSTS = {65004}
# "The certificate with identifier used to sign the client assertion is not registered on
# application" (also "...contains an invalid signature"): the app does not know the key.
CERTIFICATE_NOT_REGISTERED_AADSTS = {700027}


@dataclass(frozen=True)
class Consent:
    """A consent proven by a token: the consenting tenant, and the token it issued."""

    tenant_id: str
    tokens: oauth.TokenResult = field(repr=False)

    @property
    def actor(self):
        """Who consented, as far as we know: Entra names no user in this answer."""
        return f"An administrator of tenant {self.tenant_id}"


def finish_admin_consent(authentication, params):
    """Check Microsoft's answer to an admin consent and prove it; raises ConsentError."""
    if params.get("error"):
        raise refusal(params)
    if str(params.get("admin_consent") or "").lower() != "true":
        raise ConsentError(
            "Microsoft's answer does not say that consent was granted; start again.",
            code="invalid_response",
        )
    tenant = consenting_tenant(authentication, params.get("tenant"))
    tokens = _token_in(authentication, tenant)
    if oauth.access_token_tenant(tokens.access_token) != tenant:
        raise ConsentError(
            f"Microsoft said that tenant {tenant} consented, but its token names another "
            "directory, so the consent was not stored. Start the admin consent again.",
            code="wrong_tenant",
        )
    return Consent(tenant, tokens)


def consenting_tenant(authentication, claimed):
    """The tenant GUID Microsoft named, if it is one this authentication may be granted by."""
    claimed = str(claimed or "").strip().lower()
    if not is_guid(claimed):
        raise ConsentError(
            "Microsoft's answer does not name the organisation that consented; start again.",
            code="invalid_response",
        )
    stored = authentication.tenant_id.lower()
    if is_guid(stored) and stored != claimed:
        raise ConsentError(
            f"An administrator of another organisation (tenant {claimed}) consented than the "
            f"one this connection is for (tenant {stored}); nothing was stored. An "
            "administrator of that tenant must consent, or leave the tenant empty to accept "
            "any organisation.",
            code="wrong_tenant",
        )
    in_url = tenant_in_base_url(authentication)
    if not stored and is_guid(in_url) and in_url != claimed:
        # The BC URL already names the tenant this connection's calls go to: a token of
        # another organisation would only be refused there, and must not switch it silently.
        raise ConsentError(
            f"An administrator of another organisation (tenant {claimed}) consented than the "
            f"one this connection's BC URL is for (tenant {in_url}); nothing was stored. An "
            "administrator of that tenant must consent, or correct the BC URL first.",
            code="wrong_tenant",
        )
    return claimed


def tenant_in_base_url(authentication):
    """The tenant segment of the BC URL (…/v2.0/<tenant>/<environment>/api/…), lowercased."""
    parts = [part for part in urlsplit(authentication.base_url or "").path.split("/") if part]
    return parts[1].lower() if len(parts) >= 3 and parts[0] == "v2.0" else ""


def _token_in(authentication, tenant):
    """A client-credentials token from the consenting tenant (the stored domain if any)."""
    try:
        return oauth.acquire_for_client_in(authentication, authentication.tenant_id or tenant)
    except oauth.TokenRefreshError as err:
        raise not_proven(authentication, tenant, err) from err


def not_proven(authentication, tenant, err):
    """The ConsentError for a consent whose token request failed: wait advice only where
    waiting helps (Microsoft down, or the consent still reaching the tenant's directory)."""
    if err.transient:
        message = (
            "The consent was given, but Microsoft could not be asked for a token to prove "
            "it; nothing was stored. Open the link again in a few minutes."
        )
        code = "no_token_after_consent"
    elif err.aadsts in CONSENT_MISSING_AADSTS or err.code == "consent_required":
        message = (
            f"The consent was given, but tenant {tenant} does not issue this app a token yet: "
            "nothing was stored. Microsoft can take a few minutes to apply a consent; open "
            "the link again then. " + err.message
        )
        code = "no_token_after_consent"
    elif err.secret_invalid:  # Entra answers 7000229 with invalid_client too: asked above.
        message, code = _credential_refused(authentication, err), "credential_not_registered"
    else:
        message = (
            f"The consent was given, but tenant {tenant} refused this app a token: nothing "
            "was stored. " + err.message
        )
        code = err.code
    return ConsentError(message, code=code, aadsts=err.aadsts, transient=err.transient)


def _credential_refused(authentication, err):
    where = (
        f"in Microsoft Entra > App registrations > the app (client ID "
        f"{authentication.client_id}) > Certificates & secrets"
    )
    certificate = authentication.certificates.current() if authentication.uses_certificate else None
    if certificate is None:
        return (
            "The consent was given, but Entra refused this connection's client secret: it is "
            f"wrong or expired, which waiting does not change. The app's owner must add a new "
            f"client secret {where} and paste its Value on this connection's page; then the "
            f"administrator opens the Admin consent link again. Nothing was stored. "
            f"({err.display_code})"
        )
    registered = (
        "is not registered on the app"
        if err.aadsts in CERTIFICATE_NOT_REGISTERED_AADSTS
        else "is not accepted by the app (not registered there, or not valid now)"
    )
    return (
        f"The consent was given, but the certificate this connection signs with (SHA-1 "
        f"thumbprint {certificate.thumbprint_sha1}) {registered}, which waiting does not "
        f"change. The app's owner must upload it {where} > Certificates > Upload certificate "
        "(download the .cer from this connection's page); then the administrator opens the "
        f"Admin consent link again. Nothing was stored. ({err.display_code})"
    )


def refusal(params):
    """Microsoft's error answer to an admin consent, in words for staff."""
    err = oauth.explain(params, ConsentError)
    advice = _refusal_advice(err)
    if advice is None:
        return err
    # Said once: Microsoft's own description repeats what the advice explains, and its code
    # is shown beside the message anyway.
    return ConsentError(advice, code=err.code, aadsts=err.aadsts, transient=err.transient)


def _refusal_advice(err):
    if err.aadsts in NOT_AN_ADMINISTRATOR_AADSTS or err.code == "consent_required":
        return (
            "The account that signed in may not consent for its organisation: admin consent "
            "needs a Global Administrator, Privileged Role Administrator, or (Cloud) "
            "Application Administrator of the tenant."
        )
    if err.aadsts in WRONG_ACCOUNT_AADSTS:
        return (
            "The account that signed in does not belong to the organisation the consent was "
            "asked for."
        )
    if err.aadsts in DECLINED_AADSTS or err.code in {"access_denied", "permission_denied"}:
        return "The administrator declined or cancelled the admin consent; nothing was changed."
    return None


def grant_changes(authentication, consent):
    """What a proven consent stores: the tenant (if none was set) and the app's token."""
    now = timezone.now()
    return {
        "tenant_id": authentication.tenant_id or consent.tenant_id,
        "access_token": consent.tokens.access_token,
        "refresh_token": "",
        "access_token_expires_at": consent.tokens.expires_at,
        "status": Authentication.Status.CONNECTED,
        "granted_by_upn": "",
        "granted_by_name": consent.actor[:254],
        "granted_by_oid": "",
        "granted_via": Authentication.GrantedVia.CLIENT_CREDENTIALS,
        "granted_at": now,
        "last_refreshed_at": now,
        "last_error": "",
        "last_error_code": "",
        "consecutive_failures": 0,
        "refused_credentials": "",
        "updated_at": now,
    }
