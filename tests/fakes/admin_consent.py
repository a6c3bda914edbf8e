"""The fake Entra's admin consent: `/{tenant}/v2.0/adminconsent` and who consented where.

Like Entra, an app gets client-credentials tokens in a tenant only once an administrator of
that tenant consented there (the consent creates the app's service principal). The fake's
home tenant has every registered app consented, as if its own administrator had clicked
"Grant admin consent" in the portal; any other tenant (Fabrikam below) needs the link.

The consent page takes an account name like the sign-in page; only an administrator of a
tenant can consent for it. Microsoft answers with a GET to the redirect URI:
`admin_consent=True&tenant=<guid>&scope=...&state=...`, or `error`, `error_description`
(with the AADSTS number) and `state`.
"""

import html
import re
import threading
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import requests

from .http import Response, html_response

FABRIKAM_TENANT_ID = "5b1a7f2e-3c4d-4e6f-8a9b-0c1d2e3f4a5b"
FABRIKAM_DOMAIN = "fabrikam.onmicrosoft.com"
FABRIKAM_ADMIN = "admin@fabrikam.com"
FABRIKAM_USER = "user@fabrikam.com"  # A member of Fabrikam without an administrator role.
CONTOSO_ADMIN = "admin@contoso.com"
BC_PERMISSION = "Dynamics 365 Business Central: API.ReadWrite.All (application permission)"

PATH = re.compile(r"/([^/]+)/v2\.0/adminconsent")


class AdminConsents:
    """Which (client ID, tenant GUID) pairs an administrator consented to, and the page."""

    def __init__(self, entra, home_tenant):
        self.entra = entra
        self.home_tenant = home_tenant
        self.lock = threading.Lock()
        self.granted = set()
        self.administrators = set()
        self.pages_served = 0
        self.add_administrator(CONTOSO_ADMIN, "Contoso Admin", tid=home_tenant)
        self.add_administrator(FABRIKAM_ADMIN, "Fabrikam Admin", tid=FABRIKAM_TENANT_ID)
        entra.add_user(FABRIKAM_USER, "Fabrikam User", tid=FABRIKAM_TENANT_ID)

    def add_administrator(self, upn, name, *, tid):
        self.administrators.add(upn.lower())
        return self.entra.add_user(upn, name, tid=tid)

    def consent(self, client_id, tid):
        with self.lock:
            self.granted.add((client_id, tid))

    def has_consent(self, client_id, tid):
        with self.lock:
            return (client_id, tid) in self.granted

    def tenant_id(self, tenant):
        """The GUID a path's tenant names, "organizations" as is, or None if unknown."""
        if tenant.lower() == FABRIKAM_DOMAIN:
            return FABRIKAM_TENANT_ID
        if tenant.lower() == "organizations":
            return "organizations"
        return self.entra._tenant_id(tenant)

    # --- the consent page ---------------------------------------------------------------

    def handle(self, request):
        match = PATH.fullmatch(request.path)
        if not match:
            return None
        tenant = unquote(match.group(1))
        if request.method == "GET":
            return self.page(tenant, request.query)
        if request.method == "POST":
            return self.decision(tenant, request.form)
        return html_response("<h1>Method not allowed</h1>", status=405)

    def _problem(self, tenant, query):
        """Like Entra: what stops the request before an administrator sees anything."""
        app = self.entra.apps.get(query.get("client_id", ""))
        if self.tenant_id(tenant) is None:
            return f"AADSTS90002: Tenant '{tenant}' not found."
        if app is None:
            return (
                f"AADSTS700016: Application with identifier '{query.get('client_id')}' was not "
                "found in the directory."
            )
        if query.get("redirect_uri") not in app.redirect_uris:
            return (
                f"AADSTS50011: The redirect URI '{query.get('redirect_uri')}' specified in the "
                "request does not match the redirect URIs configured for the application."
            )
        if not query.get("scope", "").endswith("/.default"):
            return "AADSTS70011: The provided value for the input parameter 'scope' is not valid."
        return None

    def page(self, tenant, query):
        problem = self._problem(tenant, query)
        if problem:  # An error page: Entra never redirects to an unverified URI.
            return html_response(
                "<!DOCTYPE html><title>Sign in</title><h1>Sorry, but we're having trouble "
                f"signing you in.</h1><p id='error'>{html.escape(problem)}</p>",
                status=400,
            )
        with self.lock:
            self.pages_served += 1
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
            for key, value in query.items()
        )
        action = f"{self.entra.base_url}/{html.escape(tenant)}/v2.0/adminconsent"
        return html_response(
            "<!DOCTYPE html><html><head><title>Permissions requested</title></head><body>"
            "<h1>Fake Microsoft: permissions requested</h1>"
            f'<form method="post" action="{action}">{hidden}'
            '<label>Administrator account <input id="username" name="username" '
            f'value="{FABRIKAM_ADMIN}"></label>'
            f"<p>The app asks, for your whole organisation: {BC_PERMISSION}.</p>"
            '<button id="accept" name="decision" value="accept">Accept</button> '
            '<button id="cancel" name="decision" value="cancel">Cancel</button>'
            "</form></body></html>"
        )

    def decision(self, tenant, form):
        if self._problem(tenant, form):
            return self.page(tenant, form)
        answer = self._answer(tenant, form)
        answer["state"] = form.get("state", "")
        return Response(302, b"", {"Location": f"{form['redirect_uri']}?{urlencode(answer)}"})

    def _answer(self, tenant, form):
        user = self.entra.users.get(form.get("username", "").strip().lower())
        wanted = self.tenant_id(tenant)
        if form.get("decision") != "accept":
            return _error("access_denied", 65004, "The administrator declined to consent.")
        if user is None:
            return _error(
                "access_denied", 50034, "The user account does not exist in the directory."
            )
        if wanted not in ("organizations", user.tid):
            return _error(
                "access_denied",
                50020,
                f"User account '{user.upn}' from identity provider does not exist in tenant "
                f"'{tenant}' and cannot access the application.",
            )
        if user.upn.lower() not in self.administrators:
            return _error(
                "consent_required",
                90094,
                "The grant requires admin permission: the signed-in user has no administrator "
                "role that may consent for the organisation.",
            )
        self.consent(form["client_id"], user.tid)
        return {"admin_consent": "True", "tenant": user.tid, "scope": form["scope"]}


def _error(code, aadsts, description):
    return {"error": code, "error_description": f"AADSTS{aadsts}: {description}"}


def consent_at_microsoft(fake, url, *, username=FABRIKAM_ADMIN, accept=True):
    """Do what an administrator does on the consent page; return Microsoft's redirect target.

    Real HTTP against the fake: the page must accept the request (client, exact redirect
    URI, scope) before there is anything to click. Returns (path, query dict) to GET.
    """
    page = requests.get(url, verify=str(fake.ca_path), timeout=10)
    if page.status_code != 200:
        raise AssertionError(f"admin consent page refused the request: {page.text}")
    # Imported here: microsoft.py builds FakeEntra, which imports this module.
    from .microsoft import read_form

    action, fields = read_form(page.text)
    fields["decision"] = "accept" if accept else "cancel"
    fields["username"] = username
    answer = requests.post(
        action, data=fields, verify=str(fake.ca_path), timeout=10, allow_redirects=False
    )
    assert answer.status_code == 302, answer.text
    target = urlsplit(answer.headers["Location"])
    return target.path, dict(parse_qsl(target.query))
