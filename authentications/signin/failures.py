"""Why a sign-in started from an Authorization URL failed, in words for the person signing in.

Staff see oauth's messages, which say what to fix in Entra. The person who followed an
emailed link cannot fix anything there: they need to know what happened in plain words
and what to tell the person who sent the link.
"""

from dataclasses import dataclass

from authentications.connections.models import AuthorizationRequest


@dataclass(frozen=True)
class LinkFailure:
    title: str
    reason: str
    tell_sender: str
    retry: bool = False  # Whether opening the same link again may work.


_CANCELLED = LinkFailure(
    "Sign-in cancelled",
    "You cancelled the sign-in or declined the permission request at Microsoft. "
    "Nothing was changed.",
    "If you did not mean to cancel, open the link from your email again and choose Accept. "
    "If you do not want to grant access, tell the sender so.",
    retry=True,
)
_UNKNOWN_ACCOUNT = LinkFailure(
    "Account not found",
    "Microsoft does not know the account you signed in with in this organisation's directory.",
    "Tell the sender which account you used: they may need to invite you to their Microsoft "
    "Entra directory, or you may need to sign in with your work account for Business Central.",
    retry=True,
)
_NOT_ALLOWED = LinkFailure(
    "Your account is not allowed to use this app",
    "Your organisation's Microsoft settings do not let your account use this app "
    "(it is not assigned to you, or a sign-in policy blocked it).",
    "Tell the sender: an administrator of your Microsoft Entra directory must allow your "
    "account to use the app, then send you a new link.",
)
_ADMIN_CONSENT = LinkFailure(
    "An administrator must approve this app",
    "Your organisation requires an administrator to approve apps that access Business "
    "Central on your behalf, and this app is not approved yet.",
    "Tell the sender: an administrator of your Microsoft Entra directory must grant admin "
    "consent to the app (Dynamics 365 Business Central, user_impersonation), then send you "
    "a new link.",
)
_NO_BUSINESS_CENTRAL = LinkFailure(
    "Business Central is not available for this account",
    "Microsoft says your organisation has no Business Central subscription for this app to "
    "use, or your account has no access to it.",
    "Tell the sender: your account needs a Business Central license (or the environment "
    "must be set up in your organisation) before you can grant access.",
)
_SETUP_PROBLEM = LinkFailure(
    "The connection is not set up correctly",
    "Microsoft refused the request because of how the sender set up the connection. "
    "Nothing you can change fixes this.",
    "Tell the sender the error code below: they need to check the app registration "
    "in Microsoft Entra.",
)
_WRONG_TENANT = LinkFailure(
    "Wrong organisation",
    "You signed in with an account of another organisation than the one this connection "
    "belongs to.",
    "Sign out of Microsoft, open the link again and sign in with your account of the right "
    "organisation. If you have none, tell the sender.",
    retry=True,
)
_LINK_GONE = LinkFailure(
    "This link no longer works",
    "The link was withdrawn or already used while you were signing in. Nothing was changed.",
    "Ask the sender for a new link.",
)
_TRY_AGAIN = LinkFailure(
    "Sign-in did not complete",
    "The sign-in took too long, was already finished, or was finished in another browser "
    "than the one it started in. Nothing was changed.",
    "Open the link from your email again and sign in within a few minutes, in one browser. "
    "If it keeps failing, tell the sender.",
    retry=True,
)
_UNAVAILABLE = LinkFailure(
    "Microsoft is not answering",
    "Microsoft could not be reached or had a temporary problem. Nothing was changed.",
    "Wait a few minutes and open the link again. If it keeps failing, tell the sender.",
    retry=True,
)

_BY_AADSTS = {
    65004: _CANCELLED,
    50034: _UNKNOWN_ACCOUNT,
    50020: _UNKNOWN_ACCOUNT,
    50105: _NOT_ALLOWED,
    53003: _NOT_ALLOWED,
    530003: _NOT_ALLOWED,
    65001: _ADMIN_CONSENT,
    90094: _ADMIN_CONSENT,
    90095: _ADMIN_CONSENT,
    650052: _NO_BUSINESS_CENTRAL,
    500011: _NO_BUSINESS_CENTRAL,
    7000215: _SETUP_PROBLEM,
    7000222: _SETUP_PROBLEM,
    50011: _SETUP_PROBLEM,
    700016: _SETUP_PROBLEM,
    90002: _SETUP_PROBLEM,
}

_BY_CODE = {
    "access_denied": _CANCELLED,
    "consent_required": _ADMIN_CONSENT,
    "invalid_client": _SETUP_PROBLEM,
    "unauthorized_client": _SETUP_PROBLEM,
    "invalid_tenant": _SETUP_PROBLEM,
    "wrong_tenant": _WRONG_TENANT,
    "link_revoked": _LINK_GONE,
    "state_expired": _TRY_AGAIN,
    "state_used": _TRY_AGAIN,
    "browser_mismatch": _TRY_AGAIN,
    "unknown_state": _TRY_AGAIN,
    "missing_state": _TRY_AGAIN,
    "invalid_response": _TRY_AGAIN,
}


# An administrator following an Admin consent URL: the same plain words, about consent.
_CONSENT_DECLINED = LinkFailure(
    "Admin consent cancelled",
    "You cancelled or declined the admin consent at Microsoft. Nothing was changed.",
    "If you did not mean to, open the link from your email again and choose Accept. If your "
    "organisation does not want to grant it, tell the sender so.",
    retry=True,
)
_NOT_AN_ADMINISTRATOR = LinkFailure(
    "An administrator role is needed",
    "The account you signed in with may not grant admin consent for your organisation.",
    "Ask a Global Administrator, Privileged Role Administrator or Application Administrator "
    "of your Microsoft Entra directory to open the link, or forward it to them.",
    retry=True,
)
_CONSENT_WRONG_ORGANISATION = LinkFailure(
    "Wrong organisation",
    "You signed in with an account of another organisation than the one this link is for. "
    "Nothing was changed.",
    "Open the link again and sign in with an administrator account of the right "
    "organisation. If you have none, tell the sender.",
    retry=True,
)
_CONSENT_NOT_EFFECTIVE = LinkFailure(
    "Consent not in effect yet",
    "Microsoft recorded your consent but did not yet issue the app a token, so nothing was "
    "stored. Microsoft can take a few minutes to apply a consent.",
    "Wait a few minutes and open the link again (it still works). If it keeps failing, tell "
    "the sender the error code below.",
    retry=True,
)
_CONSENT_BY_CODE = {
    "access_denied": _CONSENT_DECLINED,
    "permission_denied": _CONSENT_DECLINED,
    "consent_required": _NOT_AN_ADMINISTRATOR,
    "wrong_tenant": _CONSENT_WRONG_ORGANISATION,
    "no_token_after_consent": _CONSENT_NOT_EFFECTIVE,
}
_CONSENT_BY_AADSTS = {
    65004: _CONSENT_DECLINED,
    90093: _NOT_AN_ADMINISTRATOR,
    90094: _NOT_AN_ADMINISTRATOR,
    90095: _NOT_AN_ADMINISTRATOR,
    90099: _NOT_AN_ADMINISTRATOR,
    50020: _CONSENT_WRONG_ORGANISATION,
}


def credential_not_registered(err):
    """An administrator's consent that Entra took, while it refuses the app's own credential:
    only the app's owner can fix that, so the page says who, and what to look for."""
    request = getattr(err, "auth_request", None)
    authentication = request.authentication if request else None
    certificate = authentication.certificates.current() if authentication else None
    if authentication is not None and not authentication.uses_certificate:
        certificate = None
    if certificate is None:
        what = "the client secret the sender's app signs in with is wrong or expired"
        fix = "add a new client secret to the app's registration"
    else:
        what = (
            "the certificate the sender's app signs in with (thumbprint "
            f"{certificate.thumbprint_sha1}) is not registered on the app"
        )
        fix = (
            f"upload the certificate with thumbprint {certificate.thumbprint_sha1} to the app's "
            "registration"
        )
    return LinkFailure(
        "The app's credential is not registered at Microsoft",
        f"Microsoft recorded your consent, but {what}, so nothing was stored. Waiting or "
        "opening the link again now does not change that.",
        f"Tell the sender: the app's owner must {fix} in Microsoft Entra (App registrations > "
        "the app > Certificates & secrets). Once they have, open the link again, or ask them "
        "for a new one.",
    )


def explain_failure(err, *, purpose=None):
    """The LinkFailure for a sign-in (or, for purpose "admin_consent", an admin consent)
    started through a link: a ConsentError or SignInError."""
    if purpose == AuthorizationRequest.Purpose.ADMIN_CONSENT and not err.transient:
        if err.code == "credential_not_registered":
            return credential_not_registered(err)
        found = _CONSENT_BY_AADSTS.get(err.aadsts) or _CONSENT_BY_CODE.get(err.code)
        if found:
            return found
    if err.code == "wrong_user":
        return LinkFailure(
            "Signed in with another account",
            err.message + " Nothing was changed.",
            "Sign out of Microsoft (or use a private window), open the link again and sign "
            "in with the expected account. If you are not that person, tell the sender.",
            retry=True,
        )
    if err.transient:
        return _UNAVAILABLE
    return (
        _BY_AADSTS.get(err.aadsts)
        or _BY_CODE.get(err.code)
        or LinkFailure(
            "Microsoft refused the sign-in",
            "Microsoft did not grant access, for a reason we do not recognise. "
            "Nothing was changed.",
            "Tell the sender the error code below.",
        )
    )
