"""No secret anywhere: every page, email, command output, event and log line is searched.

Logging is at DEBUG for our code, msal, requests and urllib3 while the whole product is
exercised; then every client secret, access token, refresh token, authorization code,
PKCE verifier and cookie value that ever existed is looked for in everything that was
produced. Authorization URL tokens are shown to staff and emailed on purpose: they are
looked for in the logs, the audit trail and the error emails sent to ADMINS. The logs are
searched as each LOG_FORMAT writes them: text and JSON (`log_lines`).
"""

import io
import json
import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.core.management import call_command

from authentications.connections import link_tokens as links
from authentications.connections.models import AuthorizationRequest, Event
from tests.fakes.entra import CLIENT_SECRET, error_body
from tests.helpers import admin_change_url, change_form_data

pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = "/admin/authentications/authentication/"
LOGGERS = ("authentications", "bcconnect", "msal", "requests", "urllib3", "django", "")
ADMIN_ADDRESS = "admins@example.com"


class Produced:
    """Everything the product showed or wrote during the test."""

    def __init__(self):
        self.parts = []
        self.cookie_values = set()

    def page(self, response, *, status=None):
        """Keep a page; it is no 5xx unless `status` says which one to expect."""
        assert response.status_code == status if status else response.status_code < 500, response
        self.parts.append(response.content.decode(errors="replace"))
        return response

    def command(self, *args):
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command(*args, stdout=out, stderr=err)
        except SystemExit:
            pass
        except Exception as error:
            self.parts.append(str(error))
        self.parts += [out.getvalue(), err.getvalue()]

    def cookies(self, *clients):
        """Remember the values of the cookies the browsers hold now (binding cookies go)."""
        for client in clients:
            self.cookie_values |= {m.value for m in client.cookies.values() if m.value}

    def text(self, caplog, log_lines):
        return "\n".join([*self.parts, *map(email_text, mail.outbox), self.logs(caplog, log_lines)])

    def logs(self, caplog, log_lines):
        """What operators read: log lines, the audit trail and the ADMINS' error emails."""
        records = [
            *Event.objects.values_list("detail", flat=True),
            *LogEntry.objects.values_list("change_message", flat=True),
            *AuthorizationRequest.objects.values_list("error_message", flat=True),
        ]
        errors = [email_text(m) for m in mail.outbox if m.to == [ADMIN_ADDRESS]]
        return "\n".join([*records, *errors, log_lines(caplog)])


def email_text(message):
    return "\n".join([message.subject, message.body, *(b for b, _ in message.alternatives)])


def link_token(url):
    return url.rstrip("/").rsplit("/", 1)[1]


def every_secret(fake):
    verifiers = [json.loads(r.flow)["code_verifier"] for r in AuthorizationRequest.objects.all()]
    return {
        CLIENT_SECRET,
        *fake.entra.access_tokens,
        *fake.entra.refresh_tokens,
        *fake.entra.codes,
        *verifiers,
    }


def test_no_secret_leaks_anywhere(
    admin_client, client, make_authentication, fake_microsoft, sign_in, caplog, settings, log_lines
):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]
    settings.ADMINS = [("Admins", ADMIN_ADDRESS)]  # Django mails them 5xx reports.
    out = Produced()
    authentication = make_authentication(name="Leak test")
    change = admin_change_url(authentication)

    # Staff sign in through the admin, then look at every admin page.
    saved = out.page(admin_client.post(change, change_form_data(authentication, _continue="Save")))
    out.page(admin_client.get(out.page(sign_in(admin_client, saved))["Location"]))
    for url in (
        LIST_URL,
        LIST_URL + "add/",
        change,
        change + "?signin=x",
        change.replace("change/", "history/"),
        change.replace("change/", "delete/"),
        change.replace("change/", "environments/"),
        change.replace("change/", "link/email/"),
    ):
        out.page(admin_client.get(url, follow=True))
    for action in ("refresh_now", "test_connection_action"):
        out.page(
            admin_client.post(
                LIST_URL, {"action": action, "_selected_action": [authentication.pk]}, follow=True
            )
        )
    for button in ("refresh/", "test-connection/"):
        out.page(admin_client.post(change.replace("change/", button), follow=True))
    out.page(
        admin_client.post(
            change.replace("change/", "link/email/"),
            {"recipients": "jane@contoso.com", "message": "Please"},
            follow=True,
        )
    )

    # A BC user grants access through the Authorization URL; every public page.
    authentication.refresh_from_db()
    url = links.authorization_url(authentication).url
    landing = url.split("://", 1)[1].split("/", 1)[1]
    out.page(client.get("/" + landing))
    pressed = out.page(client.post("/" + landing))
    out.cookies(client, admin_client)  # Session, CSRF and sign-in binding cookies.
    out.page(sign_in(client, pressed))
    out.page(client.get("/authentications/granted/"))
    out.page(client.get("/" + landing))  # Spent now.
    out.page(client.get("/authentications/authorize/tampered/"))
    out.page(client.post("/authentications/callback/", {"state": "unknown"}))
    out.page(
        sign_in(
            admin_client, admin_client.post(change.replace("change/", "sign-in/")), accept=False
        )
    )
    # A new link pressed while Microsoft is unreachable: a 503, reported to ADMINS.
    authentication.refresh_from_db()  # The grant spent the first link.
    second_url = links.authorization_url(authentication).url
    settings.BC_AUTHORITY_HOST = "https://127.0.0.1:9"
    second_landing = "/" + second_url.split("://", 1)[1].split("/", 1)[1]
    out.page(client.post(second_landing), status=503)
    settings.BC_AUTHORITY_HOST = fake_microsoft.url

    # Commands, plain and --json.
    out.command("refresh_tokens", "--all")
    out.command("refresh_tokens", "--all", "--json")
    out.command("bc", "Leak test", "GET", "companies")
    out.command("bc", "Leak test", "GET", "companies", "--json")
    out.command("bc", "Leak test", "GET", "companies", "--all")
    out.command("bc", "No such", "GET", "companies")
    out.command("rotate_encryption_keys")
    out.command("purge_history")
    out.command("purge_history", "--dry-run")
    # A proxy in front of Entra that answers with an HTML page quoting the request body.
    fake_microsoft.entra.fail_next_token_request(("echo",))
    out.command("refresh_tokens", "--all")

    # Error paths: a transient failure, then a definitive one (emails the ops list).
    fake_microsoft.entra.fail_next_token_request(("status", 503))
    out.command("refresh_tokens", "--all", "--json")
    fake_microsoft.entra.fail_next_token_request(
        ("error", error_body("invalid_grant", 50173, "Grant revoked."), 400)
    )
    out.command("refresh_tokens", "--all")
    out.page(admin_client.get(change))
    out.page(
        admin_client.post(
            LIST_URL, {"action": "disconnect", "_selected_action": [authentication.pk]}, follow=True
        )
    )

    produced = out.text(caplog, log_lines)
    secrets = every_secret(fake_microsoft) | out.cookie_values
    assert len(secrets) > 8  # Codes, verifiers and several rotated tokens were issued.
    assert any(name.startswith("bc_signin_") for name in client.cookies)
    assert mail.outbox, "emails were sent and searched"
    for proof_it_ran in (
        "Access token received",
        "Access granted",
        '"outcome": "refreshed"',
        "CRONUS USA",
        "Disconnected",
        "Sign-in did not complete",
        "Service Unavailable: /authentications/authorize/",  # The ADMINS' error email.
        "Token response is not in json format",  # MSAL logged the echoing proxy's page.
        "finished sign-in",
    ):
        assert proof_it_ran in produced
    leaked = [secret for secret in secrets if secret in produced]
    assert leaked == []
    link_tokens = {link_token(url), link_token(second_url)}
    assert [token for token in link_tokens if token in out.logs(caplog, log_lines)] == []
