"""Microsoft Entra, through MSAL: the only module that builds MSAL objects.

MSAL keeps nothing between operations here. Each operation gets a fresh, empty
`TokenCache`, so no token outlives the call unencrypted (our encrypted columns are the
only store); the process shares MSAL's `http_cache`, so the OpenID discovery is fetched
once, and one `requests.Session` with (connect, read) timeouts.
"""

import base64
import copy
import json
import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

import msal
import requests
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS
from msal.exceptions import MsalServiceError

from authentications.connections import credentials
from authentications.kit import signals
from authentications.kit.per_process import PerProcess
from authentications.kit.validators import is_guid
from bcconnect.errors import BcconnectError

logger = logging.getLogger(__name__)

# Answers after which only a person signing in again helps (the refresh token is dead).
NEEDS_SIGN_IN_ERRORS = {"invalid_grant", "interaction_required", "consent_required"}
NEEDS_SIGN_IN_AADSTS = {70008, 700082, 50173, 65001, 50076, 50079, 700084, 50078}
# Answers that mean the app registration's secret no longer works.
SECRET_AADSTS = {7000222, 7000215}
# Answers that mean Entra refused the client assertion signed with our certificate: not
# uploaded (or deleted) in Entra, a wrong signature, or outside its validity.
CERTIFICATE_AADSTS = {700027, 700024, 700021, 50027}
# Answers that mean Entra has no usable app registration: not found in the directory
# (deleted, or a wrong client or tenant ID), or disabled.
APP_MISSING_AADSTS = {700016, 7000112}
# Codes of failures where Microsoft never answered: the network or the host is down.
UNREACHABLE_CODES = {"network", "timeout"}
MAX_DESCRIPTION = 400
_GUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_AADSTS = re.compile(r"\s*AADSTS(\d{1,9})\b")


class EntraError(BcconnectError):
    """A failure talking to Entra, with Entra's AADSTS number when it gave one.

    `transient` failures (network, 5xx, 429) are worth retrying and never justify
    forgetting a stored token; the others need someone to act.
    """

    def __init__(self, message, *, code, aadsts=None, transient=False, needs_sign_in=False):
        super().__init__(message, code=code, transient=transient)
        self.aadsts = aadsts
        self.needs_sign_in = needs_sign_in

    @property
    def secret_invalid(self):
        return self.code == "invalid_client" or self.aadsts in SECRET_AADSTS | CERTIFICATE_AADSTS

    @property
    def app_missing(self):
        return self.aadsts in APP_MISSING_AADSTS

    @property
    def needs_person(self):
        """Only a person can fix it: a new sign-in, a new secret, or the app registration."""
        return self.needs_sign_in or self.secret_invalid or self.app_missing

    @property
    def unreachable(self):
        """Microsoft never answered (connection refused, DNS, timeout), as in an outage."""
        return self.transient and self.code in UNREACHABLE_CODES

    @property
    def display_code(self):
        return f"AADSTS{self.aadsts}" if self.aadsts else self.code


class ConsentError(EntraError):
    """The sign-in (authorization code flow) did not produce tokens."""


class TokenRefreshError(EntraError):
    """A refresh-token or client-credentials request did not produce a token."""


@dataclass(frozen=True)
class TokenResult:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    claims: dict = field(default_factory=dict)


class _LockedDict(MutableMapping):
    """MSAL's http_cache, safe to share between threads (each MSAL app has its own lock)."""

    def __init__(self):
        self._data = {}
        self._lock = threading.Lock()

    def __getitem__(self, key):
        with self._lock:
            return self._data[key]

    def __setitem__(self, key, value):
        with self._lock:
            self._data[key] = value

    def __delitem__(self, key):
        with self._lock:
            del self._data[key]

    def __iter__(self):
        with self._lock:
            return iter(list(self._data))

    def __len__(self):
        with self._lock:
            return len(self._data)


# Pooled connections per host: requests keeps 10 and opens (then discards) a new TLS
# connection for every concurrent caller beyond that, e.g. refresh_tokens --workers 16.
POOL_SIZE = 32


class _TimeoutSession(requests.Session):
    """A session that never waits forever: MSAL passes no timeout of its own.

    Every request to Entra passes here, so here each is timed and announced (metrics).
    """

    def __init__(self):
        super().__init__()
        self.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE))

    def request(self, method, url, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = settings.BC_HTTP_TIMEOUT
        started = time.perf_counter()
        try:
            response = super().request(method, url, **kwargs)
        except requests.RequestException as err:
            timed_out = isinstance(err, requests.Timeout)
            signals.sent_outside("entra", _since(started), timed_out=timed_out)
            raise
        signals.sent_outside("entra", _since(started), status=response.status_code)
        return response


def _since(started):
    return time.perf_counter() - started


class _NoMsalDebug(logging.Filter):
    """MSAL's DEBUG records carry authorization codes and PKCE verifiers (token cache
    events): drop them even when someone turns the `msal` logger up to DEBUG."""

    def filter(self, record):
        return record.levelno >= logging.INFO


TOKEN_REQUEST_FIELDS = (
    "refresh_token",
    "client_secret",
    "code",
    "code_verifier",
    "client_assertion",
    "access_token",
)
REDACTED = "[redacted]"
_FIELD_NAMES = "|".join(TOKEN_REQUEST_FIELDS)
_FORM_FIELD = re.compile(rf"(?<![\w.-])({_FIELD_NAMES})=[^&\s\"'<>]+")
_QUOTE = r"(?:\"|'|&quot;|&#34;|&#39;|&#x27;)"
_QUOTED_FIELD = re.compile(
    rf"(?P<key>(?P<q>{_QUOTE})(?:{_FIELD_NAMES})(?P=q)\s*:\s*)"
    rf"(?P<v>{_QUOTE})(?:(?!(?P=v)).)*(?P=v)"
)


def redact_token_fields(text):
    """`text` without the values of token-request fields: form-encoded, JSON or repr."""
    text = _FORM_FIELD.sub(rf"\1={REDACTED}", text)
    return _QUOTED_FIELD.sub(rf"\g<key>\g<v>{REDACTED}\g<v>", text)


class _RedactTokenFields(logging.Filter):
    """MSAL logs a token endpoint's answer that is not JSON at ERROR: a proxy that echoes
    the request would put the refresh token and client secret in the log. Redact them
    from every record of MSAL and the HTTP stack, at every level."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # Arguments that do not fit the message.
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact_token_fields(message), ()
        return True


_GUARDED_LOGGERS = ("msal", "urllib3", "requests")


def _guard_http_loggers():
    """Attach the guards to each logger of MSAL, urllib3 and requests that exists yet:
    a logger's filters apply only to the records it creates, not to its children's."""
    # list() copies the names at once: another thread may be creating a logger.
    for name in [*_GUARDED_LOGGERS, *list(logging.root.manager.loggerDict)]:
        family = name.split(".", 1)[0]
        if family not in _GUARDED_LOGGERS:
            continue
        logger_ = logging.getLogger(name)
        guards = [_RedactTokenFields, _NoMsalDebug] if family == "msal" else [_RedactTokenFields]
        for guard in guards:
            if not any(isinstance(f, guard) for f in logger_.filters):
                logger_.addFilter(guard())


_guard_http_loggers()
_http_cache = _LockedDict()
_sessions = PerProcess(_TimeoutSession)
_discovered = set()  # Authorities whose OpenID discovery is in _http_cache.
_discovering = set()  # Authorities whose discovery a thread is fetching right now.
_discovery_failures = Counter()  # Discoveries that got no answer, per authority.
_discovery_changed = threading.Condition()


def http_session():
    """The process's session for Entra (a forked child gets its own connection pool)."""
    return _sessions.get()


def clear_http_cache():
    """Forget discovery documents and MSAL's remembered error answers."""
    _http_cache.clear()
    _discovered.clear()


def redirect_uri():
    return settings.PUBLIC_BASE_URL + reverse("authentications:callback")


def authority_url(tenant_id):
    return f"{settings.BC_AUTHORITY_HOST}/{tenant_id}"


def user_impersonation_scopes():
    return [f"{settings.BC_API_HOST}/user_impersonation"]


def client_credentials_scopes():
    return [f"{settings.BC_API_HOST}/.default"]


def _is_microsoft_authority():
    return urlsplit(settings.BC_AUTHORITY_HOST).hostname in WELL_KNOWN_AUTHORITY_HOSTS


def _application(authentication, error_class, *, certificate=None):
    """A fresh MSAL app; the first one per authority fetches the discovery, alone.

    Otherwise every thread that starts at once (refresh_tokens' workers) misses the shared
    http_cache and fetches the same OpenID configuration. When that discovery gets no
    answer, the threads that waited for it fail with it: repeating it one after the other
    would make each wait for a timeout of its own, in turn.
    """
    authority = authority_url(authentication.tenant_id)
    if authority in _discovered or not _take_discovery(authority, error_class):
        return _new_application(authentication, error_class, certificate)
    outcome = "refused"
    try:
        app = _new_application(authentication, error_class, certificate)
        outcome = "found"
        return app
    except EntraError as err:
        outcome = "unreachable" if err.transient else outcome
        raise
    finally:
        _end_discovery(authority, outcome)


def _take_discovery(authority, error_class):
    """Wait while another thread fetches the discovery; True when this one must fetch it."""
    with _discovery_changed:
        failures_before = _discovery_failures[authority]
        while authority in _discovering and _discovery_failures[authority] == failures_before:
            _discovery_changed.wait()
        if _discovery_failures[authority] != failures_before:
            raise error_class(_DISCOVERY_UNREACHABLE, code="network", transient=True)
        if authority in _discovered:
            return False
        _discovering.add(authority)
        return True


def _end_discovery(authority, outcome):
    with _discovery_changed:
        _discovering.discard(authority)
        if outcome == "found":
            _discovered.add(authority)
        elif outcome == "unreachable":
            _discovery_failures[authority] += 1
        _discovery_changed.notify_all()


_DISCOVERY_UNREACHABLE = (
    "Microsoft could not be reached to look up the directory; try again shortly."
)


def _new_application(authentication, error_class, certificate=None):
    try:
        app = msal.ConfidentialClientApplication(
            authentication.client_id,
            client_credential=credentials.for_msal(authentication, certificate),
            authority=authority_url(authentication.tenant_id),
            http_client=http_session(),
            http_cache=_http_cache,
            token_cache=msal.TokenCache(),
            # For a sovereign cloud or a private test authority, never ask
            # login.microsoftonline.com whether the host is known.
            instance_discovery=_is_microsoft_authority(),
        )
    except (requests.RequestException, MsalServiceError) as err:
        raise error_class(_DISCOVERY_UNREACHABLE, code="network", transient=True) from err
    except ValueError as err:
        raise error_class(
            f"Microsoft does not know the directory (tenant) “{authentication.tenant_id}”. "
            "Check the Directory (tenant) ID copied from Entra.",
            code="invalid_tenant",
        ) from err
    _guard_http_loggers()  # MSAL creates some loggers only now (msal.oauth2cli.oauth2).
    return app


def _call(error_class, operation, *args, **kwargs):
    """Run one MSAL call, turning network trouble into a transient error."""
    try:
        return operation(*args, **kwargs)
    except requests.Timeout as err:
        raise error_class(
            "Microsoft did not answer in time; try again shortly.", code="timeout", transient=True
        ) from err
    except requests.RequestException as err:
        raise error_class(
            "Microsoft could not be reached; try again shortly.", code="network", transient=True
        ) from err
    except MsalServiceError as err:
        raise error_class(
            "Microsoft had a temporary problem (server error); try again shortly.",
            code="server_error",
            transient=True,
        ) from err
    except json.JSONDecodeError as err:  # MSAL: a 429 or 5xx page instead of JSON.
        raise error_class(
            "Microsoft answered with an error page instead of a token; try again shortly.",
            code="bad_response",
            transient=True,
        ) from err


def _aadsts(result):
    """Entra's numeric code: from error_codes, or from the description's "AADSTSnnnn:" prefix
    (the authorize endpoint's answer carries only the description)."""
    codes = result.get("error_codes") or []
    if isinstance(codes, list) and codes and str(codes[0]).isdigit():
        return int(codes[0])
    match = _AADSTS.match(str(result.get("error_description") or ""))
    return int(match.group(1)) if match else None


def _first_line(description):
    """The first line of what Microsoft (or whoever forged its answer) said, without control
    characters: it is shown and stored, and PostgreSQL text cannot hold a NUL."""
    lines = str(description or "").strip().splitlines()
    return _printable(lines[0][:MAX_DESCRIPTION] if lines else "")


def _printable(text):
    return "".join(character for character in text if character.isprintable())


def explain(result, error_class):
    """Turn Entra's error body into an EntraError whose message says what to do."""
    code = _printable(str(result.get("error") or ""))[:64] or "unknown_error"
    aadsts = _aadsts(result)
    said = _first_line(result.get("error_description"))
    transient = code in {"temporarily_unavailable", "server_error"} or aadsts in {50196}
    needs_sign_in = code in NEEDS_SIGN_IN_ERRORS or aadsts in NEEDS_SIGN_IN_AADSTS
    message = _advice(code, aadsts, authentication_hint=said)
    return error_class(
        message, code=code, aadsts=aadsts, transient=transient, needs_sign_in=needs_sign_in
    )


def _advice(code, aadsts, *, authentication_hint):
    said = f" Microsoft said: {authentication_hint}" if authentication_hint else ""
    if aadsts in CERTIFICATE_AADSTS:
        return (
            "Entra refused the certificate: it is not uploaded to the app registration (or "
            "was deleted there), or it is not valid now. In Entra, open the app registration "
            "> Certificates & secrets > Certificates and upload it." + said
        )
    if code == "invalid_client" or aadsts in SECRET_AADSTS:
        return (
            "The client secret is wrong or expired. In Entra, open the app registration > "
            "Certificates & secrets, add a new client secret and paste its Value here." + said
        )
    if aadsts == 50011:
        return (
            f"The redirect URI is not registered for this app. In Entra > Authentication, "
            f"add the Web redirect URI {redirect_uri()}." + said
        )
    if aadsts == 700016:
        return (
            "Entra does not know this app registration in the directory: it was deleted, or the "
            "Application (client) ID or Directory (tenant) ID is wrong. In Entra > App "
            "registrations, restore it from Deleted applications, or correct the IDs here." + said
        )
    if aadsts == 7000112:
        return (
            "The app is disabled in Entra. Enable it again in Entra > Enterprise applications > "
            "the app > Properties > Enabled for users to sign-in." + said
        )
    if code == "access_denied":
        return "The sign-in was cancelled or access was refused at Microsoft." + said
    if code == "consent_required" or aadsts == 65001:
        return (
            "Consent is missing: the app needs the Dynamics 365 Business Central "
            "user_impersonation permission, granted by the user or an administrator." + said
        )
    if code in NEEDS_SIGN_IN_ERRORS or aadsts in NEEDS_SIGN_IN_AADSTS:
        return "Microsoft no longer accepts the stored sign-in; someone must sign in again." + said
    return ("Microsoft refused the request." + said).strip()


def _token_result(result, error_class):
    if "error" in result:
        raise explain(result, error_class)
    if not result.get("access_token"):
        raise error_class("Microsoft answered without an access token.", code="no_access_token")
    expires_in = int(result.get("expires_in") or 3600)
    return TokenResult(
        access_token=result["access_token"],
        refresh_token=result.get("refresh_token") or "",
        expires_at=timezone.now() + timedelta(seconds=expires_in),
        claims=result.get("id_token_claims") or {},
    )


def start_auth_code_flow(authentication, *, login_hint=""):
    """Begin a sign-in: MSAL's flow dict (state, PKCE verifier, nonce) and its auth_uri."""
    app = _application(authentication, ConsentError)
    return _call(
        ConsentError,
        app.initiate_auth_code_flow,
        user_impersonation_scopes(),
        redirect_uri=redirect_uri(),
        state=secrets.token_urlsafe(32),
        response_mode="form_post",
        login_hint=login_hint or None,
    )


def finish_auth_code_flow(authentication, flow, auth_response):
    """Redeem Microsoft's answer for tokens, after checking it belongs to `flow`."""
    _check_issuer(authentication, auth_response.get("iss"))
    if auth_response.get("error"):
        raise explain(auth_response, ConsentError)
    app = _application(authentication, ConsentError)
    try:
        result = _call(ConsentError, app.acquire_token_by_auth_code_flow, flow, auth_response)
    # MSAL: ValueError for a state or scope mismatch; RuntimeError when the ID token's
    # nonce is not this flow's (an ID token replayed from another sign-in); TypeError for a
    # client_info that is JSON but not an object ("3", "null").
    except (ValueError, RuntimeError, TypeError) as err:
        raise ConsentError(
            "The answer from Microsoft did not match this sign-in; start again.",
            code="invalid_response",
        ) from err
    tokens = _token_result(result, ConsentError)
    _check_id_token(authentication, tokens.claims, directory=_directory_id(authentication, app))
    return tokens


def _check_issuer(authentication, issuer):
    """Mix-up defence (RFC 9207): an answer naming its issuer must name ours."""
    if issuer is None:
        return
    tenant = authentication.tenant_id if is_guid(authentication.tenant_id) else _GUID_PATTERN
    expected = re.escape(settings.BC_AUTHORITY_HOST) + "/" + tenant + "/v2.0/?"
    if not re.fullmatch(expected, str(issuer), flags=re.IGNORECASE):
        raise ConsentError(
            "The answer came from another identity provider than the one this sign-in was "
            "sent to; it was refused. Start the sign-in again.",
            code="issuer_mismatch",
        )


def _directory_id(authentication, app):
    """The directory (tenant) GUID the sign-in went to.

    A domain tenant (contoso.onmicrosoft.com) is resolved by the OpenID discovery the
    sign-in used: Entra's endpoints for a domain name the directory's GUID.
    """
    if is_guid(authentication.tenant_id):
        return authentication.tenant_id.lower()
    resolved = str(app.authority.tenant)
    if not is_guid(resolved):
        raise ConsentError(
            f"Microsoft did not say which directory “{authentication.tenant_id}” is, so the "
            "account that signed in cannot be checked. Enter the Directory (tenant) ID as a "
            "GUID (Entra > Overview).",
            code="invalid_tenant",
        )
    return resolved.lower()


def _check_id_token(authentication, claims, *, directory):
    """Refuse an ID token not issued to this app, by this directory, for one of its accounts.

    MSAL no longer validates ID tokens (since 1.38); it only decodes them. The token came
    straight from the token endpoint over TLS, so its signature needs no check (OIDC 3.1.3.7).
    """
    if not claims:
        raise ConsentError(
            "Microsoft answered with no ID token, so who signed in is unknown; start again.",
            code="invalid_id_token",
        )
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if authentication.client_id.lower() not in {str(value).lower() for value in audiences}:
        raise ConsentError(
            "Microsoft's ID token was issued to another application than this Application "
            "(client) ID; it was refused. Start the sign-in again.",
            code="invalid_id_token",
        )
    if str(claims.get("tid") or "").lower() != directory:
        raise ConsentError(
            "The account that signed in belongs to another Microsoft Entra directory than "
            "the configured Directory (tenant) ID; sign in with an account of that directory.",
            code="wrong_tenant",
        )
    if str(claims.get("iss") or "").lower() != _issuer(directory).lower():
        raise ConsentError(
            "Microsoft's ID token came from another identity provider than the one this "
            "sign-in was sent to; it was refused. Start the sign-in again.",
            code="issuer_mismatch",
        )


def _issuer(directory):
    return f"{settings.BC_AUTHORITY_HOST}/{directory}/v2.0"


def redeem_refresh_token(authentication, refresh_token):
    """Exchange a refresh token for new tokens (Entra usually rotates the refresh token)."""
    app = _application(authentication, TokenRefreshError)
    result = _call(
        TokenRefreshError,
        app.acquire_token_by_refresh_token,
        refresh_token,
        user_impersonation_scopes(),
    )
    return _token_result(result, TokenRefreshError)


def acquire_for_client(authentication, *, certificate=None):
    """Service-to-service: a token for the app itself (client credentials grant).

    `certificate`: sign with it instead of the credential in use (does Entra know it yet?).
    """
    app = _application(authentication, TokenRefreshError, certificate=certificate)
    result = _call(TokenRefreshError, app.acquire_token_for_client, client_credentials_scopes())
    return _token_result(result, TokenRefreshError)


# --- admin consent (service-to-service onboarding) -----------------------------------------

ORGANIZATIONS = "organizations"


def admin_consent_url(authentication, *, state):
    """Entra's admin consent page for the app's Business Central application permission.

    With no tenant stored, "organizations": an administrator of any organisation may
    consent, and Microsoft's answer names their tenant.
    """
    query = urlencode(
        {
            "client_id": authentication.client_id,
            "scope": " ".join(client_credentials_scopes()),
            "redirect_uri": redirect_uri(),
            "state": state,
        }
    )
    tenant = authentication.tenant_id or ORGANIZATIONS
    return f"{authority_url(quote(tenant, safe=''))}/v2.0/adminconsent?{query}"


def acquire_for_client_in(authentication, tenant_id):
    """Client credentials in `tenant_id`, which need not be the stored tenant (yet).

    For proving a consent just given: a refusal from before it is stale, so MSAL must not
    answer with it (`forget_token_refusals`).
    """
    forget_token_refusals()
    as_consented = copy.copy(authentication)  # The stored row keeps its tenant until granted.
    as_consented.tenant_id = tenant_id
    return acquire_for_client(as_consented)


def forget_token_refusals():
    """Drop the token endpoint refusals MSAL keeps in the shared http_cache.

    MSAL answers a repeated token request that got an HTTP 400 with that same 400 for 60
    seconds, without asking Entra (its "UI required" cache, keyed "POST <url> hash=<form>
    400"). Client credentials send the same form every time, so a refusal from before an
    admin consent would be taken for Entra's answer after it.
    """
    for key in list(_http_cache):
        if isinstance(key, str) and key.startswith("POST ") and key.endswith(" 400"):
            _http_cache.pop(key, None)


def access_token_tenant(access_token):
    """The tenant (`tid`) an Entra access token names, lowercased; "" when it names none.

    The token is Business Central's, fresh from the token endpoint over TLS: its claims are
    read to learn which directory issued it, not verified (we are not its audience).
    """
    parts = str(access_token).split(".")
    if len(parts) != 3:
        return ""
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return ""
    return str(claims.get("tid") or "").lower() if isinstance(claims, dict) else ""
