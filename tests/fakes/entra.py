"""A fake Microsoft Entra ID, strict enough to catch real mistakes.

It checks the client secret, the exact redirect URI, PKCE S256 and single-use codes; it
rotates refresh tokens and accepts each one once; it answers errors in Entra's shape
({error, error_description, error_codes, trace_id, correlation_id}) with real AADSTS codes.
"""

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote

from .admin_consent import AdminConsents
from .assertions import AssertionChecker, AssertionRefused
from .http import DropConnection, Response, html_response, json_response

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TENANT_DOMAIN = "contoso.onmicrosoft.com"
CLIENT_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
CLIENT_SECRET = "fake-client-secret-Value~1234567890abcdef"


@dataclass
class User:
    upn: str
    name: str
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    tid: str = TENANT_ID
    revoked: bool = False  # A password change revokes every grant (AADSTS50173).
    home_address: str = ""  # A guest's address in their own organisation.


@dataclass
class App:
    client_id: str
    secret: str
    redirect_uris: set
    secret_expired: bool = False
    certificates: list = field(default_factory=list)  # PEM certificates uploaded to it.


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def error_body(error, aadsts, description):
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": error,
        "error_description": f"AADSTS{aadsts}: {description} Trace ID: {trace} "
        f"Correlation ID: {correlation} Timestamp: {stamp}",
        "error_codes": [aadsts],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={aadsts}",
    }


class FakeEntra:
    def __init__(self):
        self.lock = threading.Lock()
        self.base_url = ""  # Set by FakeMicrosoft once the port is known.
        self.apps = {}
        self.users = {}
        self.codes = {}
        self.refresh_tokens = {}
        self.access_tokens = {}
        self.token_requests = []  # (grant_type, client_id) per token request received.
        self.discovery_requests = 0
        self.refresh_token_reuse = 0
        self.access_token_lifetime = 3600
        self.assertions = AssertionChecker()
        # Faults, switchable by tests: seconds of latency, forced answers, dropped sockets.
        self.token_latency = 0.0
        # Queue of ("status", code) / ("error", body) / ("drop",) / ("echo",) / ("sleep", s).
        self.token_faults = []
        # ID token variations: claims to change (None removes one), or none issued at all.
        self.id_token_changes = {}
        self.issue_id_tokens = True
        self.add_user("jane@contoso.com", "Jane Doe")
        self.add_user("john@contoso.com", "John Smith")
        self.admin_consents = AdminConsents(self, home_tenant=TENANT_ID)

    # --- configuration ------------------------------------------------------------------

    def add_user(self, upn, name, **kwargs):
        self.users[upn.lower()] = User(upn=upn, name=name, **kwargs)
        return self.users[upn.lower()]

    def add_guest(self, home_address, name):
        """A B2B guest: UPN jane_fabrikam.com#EXT#@<tenant domain>, signs in with their home
        address, which their ID token names (preferred_username, email), like Entra's."""
        local, _, domain = home_address.partition("@")
        user = self.add_user(f"{local}_{domain}#EXT#@{TENANT_DOMAIN}", name)
        user.home_address = home_address
        self.users[home_address.lower()] = user
        return user

    def register_app(self, client_id=CLIENT_ID, secret=CLIENT_SECRET, redirect_uri=None):
        app = self.apps.get(client_id) or App(client_id, secret, set())
        app.secret = secret
        if redirect_uri:
            app.redirect_uris.add(redirect_uri)
        self.apps[client_id] = app
        self.admin_consents.consent(client_id, TENANT_ID)  # Its home tenant: consented.
        return app

    def upload_certificate(self, certificate_pem, client_id=CLIENT_ID):
        """What Entra > Certificates & secrets > Upload certificate does."""
        self.apps[client_id].certificates.append(certificate_pem)

    def fail_next_token_request(self, *faults):
        with self.lock:
            self.token_faults.extend(faults)

    def count(self, grant_type):
        return sum(1 for grant, _ in self.token_requests if grant == grant_type)

    def revoke_user(self, upn):
        self.users[upn.lower()].revoked = True

    def expire_access_token(self, token):
        with self.lock:
            self.access_tokens[token]["expires_at"] = time.time() - 1

    def token_info(self, token):
        """What the BC side needs: the token's subject, or None when invalid or expired."""
        with self.lock:
            info = self.access_tokens.get(token)
        if info is None or info["expires_at"] <= time.time():
            return None
        return info

    # --- routing ------------------------------------------------------------------------

    def handle(self, request):
        if (answer := self.admin_consents.handle(request)) is not None:
            return answer
        match = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", request.path)
        if match and request.method == "GET":
            return self.openid_configuration(unquote(match.group(1)))
        match = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/(authorize|token)", request.path)
        if not match:
            return None
        tenant, endpoint = unquote(match.group(1)), match.group(2)
        if endpoint == "token" and request.method == "POST":
            return self.token(tenant, request)
        if endpoint == "authorize" and request.method == "GET":
            return self.authorize_page(tenant, request.query)
        if endpoint == "authorize" and request.method == "POST":
            return self.authorize_decision(tenant, request.form)
        return json_response({"error": "invalid_request"}, status=405)

    def _tenant_id(self, tenant):
        if tenant.lower() == TENANT_DOMAIN:
            return TENANT_ID
        try:
            return str(uuid.UUID(tenant))
        except ValueError:
            return None

    def issuer(self, tid):
        return f"{self.base_url}/{tid}/v2.0"

    def openid_configuration(self, tenant):
        with self.lock:
            self.discovery_requests += 1
        tid = self._tenant_id(tenant)
        if tid is None:
            return json_response(
                error_body(
                    "invalid_tenant",
                    90002,
                    f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                    "tenant ID and are signing into the correct cloud.",
                ),
                status=400,
            )
        base = f"{self.base_url}/{tid}"  # Like Entra: a domain's endpoints name its GUID.
        return json_response(
            {
                "issuer": self.issuer(tid),
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "response_types_supported": ["code", "id_token", "code id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                    "private_key_jwt",
                ],
                "code_challenge_methods_supported": ["plain", "S256"],
                "tenant_region_scope": "EU",
            }
        )

    # --- the sign-in pages --------------------------------------------------------------

    def _authorize_problem(self, tenant, query):
        app = self.apps.get(query.get("client_id", ""))
        if self._tenant_id(tenant) is None:
            return 90002, f"Tenant '{tenant}' not found."
        if app is None:
            return 700016, (
                f"Application with identifier '{query.get('client_id')}' was not found in the "
                "directory."
            )
        if query.get("redirect_uri") not in app.redirect_uris:
            return 50011, (
                f"The redirect URI '{query.get('redirect_uri')}' specified in the request does "
                "not match the redirect URIs configured for the application."
            )
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return 900144, "The request body must contain code_challenge with method S256."
        if not query.get("code_challenge") or not query.get("state"):
            return 900144, "The request must contain code_challenge and state."
        return None

    def authorize_page(self, tenant, query):
        problem = self._authorize_problem(tenant, query)
        if problem:  # Like Entra: an error page, no redirect to an unverified URI.
            aadsts, text = problem
            return html_response(
                f"<!DOCTYPE html><title>Sign in</title><h1>Sorry, but we're having trouble "
                f"signing you in.</h1><p id='error'>AADSTS{aadsts}: {html.escape(text)}</p>",
                status=400,
            )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
            for key, value in query.items()
        )
        user = html.escape(query.get("login_hint") or "jane@contoso.com")
        return html_response(
            "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
            "<h1>Fake Microsoft sign-in</h1>"
            f'<form method="post" action="{self.base_url}/{html.escape(tenant)}/oauth2/v2.0/'
            f'authorize">{hidden}'
            f'<label>Account <input id="username" name="username" value="{user}"></label>'
            "<p>The app asks for: Dynamics 365 Business Central (user_impersonation).</p>"
            '<button id="accept" name="decision" value="accept">Accept</button> '
            '<button id="cancel" name="decision" value="cancel">Cancel</button>'
            "</form></body></html>"
        )

    def authorize_decision(self, tenant, form):
        problem = self._authorize_problem(tenant, form)
        if problem:
            return self.authorize_page(tenant, form)
        fields = {"state": form["state"]}
        user = self.users.get(form.get("username", "").lower())
        if form.get("decision") != "accept":
            fields.update(
                error="access_denied",
                error_description="AADSTS65004: User declined to consent to access the app.",
            )
        elif user is None:
            fields.update(
                error="access_denied",
                error_description="AADSTS50034: The user account does not exist in the directory.",
            )
        else:
            code = "fake-code-" + secrets.token_urlsafe(24)
            with self.lock:
                self.codes[code] = {
                    "client_id": form["client_id"],
                    "redirect_uri": form["redirect_uri"],
                    "challenge": form["code_challenge"],
                    "nonce": form.get("nonce", ""),
                    "user": user,
                    "scope": form.get("scope", ""),
                    "expires": time.time() + 600,
                    "used": False,
                }
            fields.update(
                code=code,
                client_info=_b64(json.dumps({"uid": user.oid, "utid": user.tid}).encode()),
                session_state=str(uuid.uuid4()),
            )
        return self.form_post_page(form["redirect_uri"], fields)

    @staticmethod
    def form_post_page(action, fields):
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in fields.items()
        )
        return html_response(
            "<!DOCTYPE html><html><head><title>Working...</title></head>"
            '<body onload="document.forms[0].submit()">'
            f'<form method="POST" name="hiddenform" action="{html.escape(action)}">{inputs}'
            "<noscript><p>Script is disabled. Click Submit to continue.</p>"
            '<input type="submit" value="Submit"></noscript></form></body></html>'
        )

    # --- the token endpoint -------------------------------------------------------------

    def token(self, tenant, request):
        if self.token_latency:
            time.sleep(self.token_latency)
        form = request.form
        with self.lock:
            self.token_requests.append((form.get("grant_type", ""), form.get("client_id", "")))
            fault = self.token_faults.pop(0) if self.token_faults else None
        if fault:
            return self._fault(fault, request)
        tid = self._tenant_id(tenant)
        if tid is None:
            return self._error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        client_id, secret = self._client_credentials(request, form)
        app = self.apps.get(client_id)
        if app is None:
            return self._error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if form.get("client_assertion") or form.get("client_assertion_type"):
            refused = self._assertion_refused(app, tid, tenant, form)
            if refused:
                return refused
        elif app.secret_expired:
            return self._error(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{client_id}' are expired.",
            )
        elif not secrets.compare_digest(secret.encode(), app.secret.encode()):
            return self._error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID.",
            )
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._redeem_code(app, tid, form)
        if grant == "refresh_token":
            return self._redeem_refresh_token(app, tid, form)
        if grant == "client_credentials":
            return self._client_credentials_grant(app, tid, form)
        return self._error(400, "unsupported_grant_type", 70003, "Unsupported grant type.")

    def _fault(self, fault, request):
        kind = fault[0]
        if kind == "drop":
            raise DropConnection()
        if kind == "echo":  # A misbehaving proxy: an HTML page quoting the request body.
            page = (
                b"<html><body><p>Request rejected</p><pre>" + request.body + b"</pre></body></html>"
            )
            return Response(403, page, {"Content-Type": "text/html"})
        if kind == "sleep":
            time.sleep(fault[1])
            return self._error(504, "temporarily_unavailable", 50196, "Timed out.")
        if kind == "status":
            return Response(
                fault[1],
                b"<html>Service unavailable</html>",
                fault[2] if len(fault) > 2 else {"Content-Type": "text/html"},
            )
        return json_response(fault[1], status=fault[2] if len(fault) > 2 else 400)

    def _assertion_refused(self, app, tid, tenant, form):
        """Entra's answer to a client assertion it refuses, or None when it accepts it."""
        endpoints = {f"{self.base_url}/{name}/oauth2/v2.0/token" for name in (tid, tenant)}
        try:
            self.assertions.check(form, certificates=app.certificates, token_endpoints=endpoints)
        except AssertionRefused as refused:
            return self._error(401, "invalid_client", refused.aadsts, refused.description)
        return None

    @staticmethod
    def _client_credentials(request, form):
        auth = request.header("authorization")
        if auth.lower().startswith("basic "):
            decoded = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
        return form.get("client_id", ""), form.get("client_secret", "")

    def _error(self, status, error, aadsts, description):
        return json_response(error_body(error, aadsts, description), status=status)

    def _redeem_code(self, app, tid, form):
        with self.lock:
            grant = self.codes.get(form.get("code", ""))
            if grant is None or grant["expires"] < time.time():
                return self._error(
                    400, "invalid_grant", 70000, "The provided authorization code is invalid."
                )
            if grant["used"]:
                return self._error(
                    400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed."
                )
            grant["used"] = True
        if grant["client_id"] != app.client_id:
            return self._error(
                400, "invalid_grant", 70000, "The code was issued to another application."
            )
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return self._error(
                400,
                "invalid_grant",
                500112,
                "The reply address does not match the reply address of the authorization.",
            )
        verifier = form.get("code_verifier", "")
        if _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return self._error(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the "
                "code_challenge supplied in the authorization request.",
            )
        return self._issue(app, tid, grant["user"], grant["scope"], nonce=grant["nonce"])

    def _redeem_refresh_token(self, app, tid, form):
        with self.lock:
            grant = self.refresh_tokens.get(form.get("refresh_token", ""))
            if grant is not None and grant["used"]:
                self.refresh_token_reuse += 1
            valid = grant is not None and not grant["used"] and grant["client_id"] == app.client_id
            if valid:
                grant["used"] = True
        if not valid:
            return self._error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity or was already used.",
            )
        if grant["user"].revoked:
            return self._error(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token "
                "is needed. The user might have changed or reset their password.",
            )
        return self._issue(app, tid, grant["user"], grant["scope"])

    def _client_credentials_grant(self, app, tid, form):
        if not self.admin_consents.has_consent(app.client_id, tid):
            return self._error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{app.client_id}' was not found in the directory "
                f"'{tid}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
            )
        if not form.get("scope", "").endswith("/.default"):
            return self._error(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. "
                "Client credential flows must have a scope value with /.default suffixed.",
            )
        return self._issue(app, tid, None, form["scope"])

    def _issue(self, app, tid, user, scope, nonce=None):
        now = time.time()
        access_token = self._access_token(app, tid, user, now)
        with self.lock:
            self.access_tokens[access_token] = {
                "client_id": app.client_id,
                "user": user.upn if user else None,
                "tid": tid,
                "expires_at": now + self.access_token_lifetime,
            }
        body = {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access_token,
        }
        if user is not None:
            refresh_token = "fake-rt-" + secrets.token_urlsafe(48)
            with self.lock:
                self.refresh_tokens[refresh_token] = {
                    "client_id": app.client_id,
                    "user": user,
                    "scope": scope,
                    "used": False,
                }
            body.update(
                refresh_token=refresh_token,
                client_info=_b64(json.dumps({"uid": user.oid, "utid": user.tid}).encode()),
            )
            if self.issue_id_tokens:
                body["id_token"] = self._id_token(app, tid, user, nonce)
        return json_response(body, headers={"Cache-Control": "no-store"})

    def _access_token(self, app, tid, user, now):
        """JWT-shaped like Entra's (its claims readable, so `tid` can be checked), with a
        "fake-at-" prefix before the header so tests and leak checks can spot one."""
        claims = {
            "aud": "https://api.businesscentral.dynamics.com",
            "iss": f"https://sts.windows.net/{tid}/",
            "tid": tid,
            "appid": app.client_id,
            "idtyp": "user" if user else "app",
            "iat": int(now),
            "exp": int(now + self.access_token_lifetime),
        }
        if user is None:
            claims["roles"] = ["API.ReadWrite.All"]
        header = {"typ": "JWT", "alg": "RS256", "kid": "fake-key"}
        parts = [_b64(json.dumps(part).encode()) for part in (header, claims)]
        return "fake-at-" + ".".join([*parts, secrets.token_urlsafe(32)])

    def _id_token(self, app, tid, user, nonce):
        now = int(time.time())
        claims = {
            "aud": app.client_id,
            "iss": self.issuer(user.tid),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.name,
            "oid": user.oid,
            "preferred_username": user.home_address or user.upn,
            "sub": _b64(hashlib.sha256(user.oid.encode()).digest()),
            "tid": user.tid,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        if user.home_address:
            claims["email"] = user.home_address
        for name, value in self.id_token_changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        header = {"typ": "JWT", "alg": "RS256", "kid": "fake-key"}
        parts = [_b64(json.dumps(part).encode()) for part in (header, claims)]
        return ".".join([*parts, _b64(b"fake-signature")])
