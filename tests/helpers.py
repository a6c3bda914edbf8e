"""Plain functions the tests share: admin forms and URLs, tokens, races, child processes.

Fixtures live in conftest.py and may use these; nothing here imports from conftest, so a
test module imports what it needs from here and takes its fixtures as arguments.
"""

import contextlib
import functools
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.utils import timezone

from authentications.certificates import flows, keypairs
from authentications.connections.models import Authentication, AuthorizationRequest, Event
from bcconnect.client import BusinessCentralClient
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")

# What `connected_row` stores: tokens only our database knows, never sent anywhere.
# Requests each fuzzed door gets in one run of the stress suite. CI runs that suite on SQLite
# and again on PostgreSQL (with 3,000 each, see .ci/run); set it higher for a long run.
FUZZ_REQUESTS = int(os.environ.get("STRESS_FUZZ_REQUESTS", 5_000))

ROW_ACCESS_TOKEN = "at-row-only-0123456789abcdef"
ROW_REFRESH_TOKEN = "rt-row-only"


# --- the admin --------------------------------------------------------------------------


def admin_change_url(authentication):
    return f"/admin/authentications/authentication/{authentication.pk}/change/"


def change_form_data(authentication, **overrides):
    """What the admin change form posts for `authentication` (secret left blank)."""
    data = {
        "name": authentication.name,
        "kind": authentication.kind,
        "client_id": authentication.client_id,
        "tenant_id": authentication.tenant_id,
        "client_secret": "",
        "client_secret_expires_on": "",
        "base_url": authentication.base_url,
        "expected_user": authentication.expected_user,
    }
    data.update(overrides)
    return data


def add_form_data(fake, *, button="_continue", **overrides):
    """What the admin add form posts for a user-impersonation authentication at `fake`.

    `button` is the submit button pressed: "_continue" is "Save", "_save" "Save and close".
    """
    return {
        "name": "BC production",
        "kind": "user_impersonation",
        "client_id": CLIENT_ID,
        "tenant_id": TENANT_ID,
        "client_secret": CLIENT_SECRET,
        "client_secret_expires_on": "",
        "base_url": f"{fake.url}/v2.0/{TENANT_ID}/Production/api/v2.0",
        "expected_user": "",
        button: "Save",
        **overrides,
    }


def state_of(response):
    """The OAuth `state` of a response that redirects to Microsoft's sign-in page."""
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


# --- tokens -----------------------------------------------------------------------------


def plant_tokens(fake, authentication, *, user="jane@contoso.com", lifetime=3600):
    """Store tokens on `authentication` as a finished sign-in would, without one.

    The fake Entra knows them (BC accepts the access token, a refresh rotates the refresh
    token), but no sign-in happened: no pending request, no event, no ID token.
    """
    refresh_token = "fake-rt-" + secrets.token_urlsafe(48)
    with fake.entra.lock:
        fake.entra.refresh_tokens[refresh_token] = {
            "client_id": CLIENT_ID,
            "user": fake.entra.users[user],
            "scope": f"{fake.url}/user_impersonation openid profile offline_access",
            "used": False,
        }
    now = timezone.now()
    authentication.access_token = issue_token(fake, user=user, lifetime=lifetime)
    authentication.refresh_token = refresh_token
    authentication.access_token_expires_at = now + timedelta(seconds=lifetime)
    authentication.status = authentication.Status.CONNECTED
    authentication.granted_by_upn = user
    # Refreshed a while ago: a forced refresh (after a 401) is not answered with this token.
    authentication.granted_at = authentication.last_refreshed_at = now - timedelta(minutes=30)
    authentication.save()
    return authentication


def expiring(authentication, *, seconds=60):
    """Make the stored access token expire in `seconds` (negative: already expired)."""
    Authentication.objects.filter(pk=authentication.pk).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=seconds)
    )
    authentication.refresh_from_db()
    return authentication


def fresh(authentication):
    """The row as stored now; `authentication` itself keeps the values it was read with."""
    return Authentication.objects.get(pk=authentication.pk)


def sibling_acts_during_the_token_request(fake_microsoft, monkeypatch, act):
    """While our request is at Microsoft, a sibling process changes the row."""
    answer = fake_microsoft.entra.token

    def token(tenant, request):
        act()
        connection.close()  # The fake's server thread must not keep a connection.
        return answer(tenant, request)

    monkeypatch.setattr(fake_microsoft.entra, "token", token)


# --- what people and operators read -------------------------------------------------------


def email_parts(message):
    """Everything a recipient reads of `message`: subject, text and HTML bodies."""
    return [message.subject, message.body, *(body for body, _ in message.alternatives)]


def operator_text(caplog, *, logs=None):
    """What operators read: log lines (`logs`, else caplog's), the audit trail and the
    admin's change log."""
    return "\n".join(
        [
            *Event.objects.values_list("detail", flat=True),
            *Event.objects.values_list("actor", flat=True),
            *LogEntry.objects.values_list("change_message", flat=True),
            *AuthorizationRequest.objects.values_list("error_message", flat=True),
            caplog.text if logs is None else logs,
        ]
    )


# --- processes --------------------------------------------------------------------------


def run_manage_py(*args, env, cwd=ROOT, timeout=60):
    """Run manage.py in a child process with exactly `env`, as cron or an operator would."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- certificates -----------------------------------------------------------------------


@functools.cache
def key_pair(index=0, *, valid_days=365):
    """A key pair made once per test session (3072-bit keys take a while to make)."""
    return keypairs.generate(f"bcconnect test {index}", valid_days=valid_days)


def use_certificate(fake, authentication, pair=None, *, uploaded=True):
    """Make `pair` (or a fresh key pair made here) `authentication`'s credential, no secret;
    `uploaded`: also upload its certificate to the fake's app registration."""
    if pair is None:
        certificate = flows.generate(authentication, actor="test")
    else:
        certificate = flows.add_uploaded(authentication, pair, actor="test")
    if uploaded:
        fake.entra.upload_certificate(certificate.certificate_pem)
    authentication.credential_type = Authentication.Credential.CERTIFICATE
    authentication.client_secret = ""
    authentication.save(update_fields=["credential_type", "client_secret"])
    return certificate


# --- endpoints (issue 12) ---------------------------------------------------------------


def endpoint_url(endpoint, view="change"):
    """The admin URL of one of `endpoint`'s pages: change, test, company, export/csv, ..."""
    return f"/admin/authentications/endpoint/{endpoint.pk}/{view}/"


def log_in_staff_with(client, *codenames):
    """Log `client` in as a new staff user holding exactly the named permissions."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(
        f"staff-{secrets.token_hex(4)}", password="unused-password", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def rename_endpoint(make_endpoint, authentication, fake, *, position=4):
    """A PATCH endpoint ("Rename customer 5") renaming one customer of the fake's first company."""
    customer = fake.bc.company.generate(position)
    return make_endpoint(
        authentication,
        name=f"Rename customer {position + 1}",
        method="PATCH",
        path=f"api/v2.0/companies({{company}})/customers({customer['id']})",
        headers=[["If-Match", customer["@odata.etag"]]],
        body={"displayName": "Renamed by a test"},
    )


def database_url():
    """The test database as a DATABASE_URL, for child processes (a SQLite file or PostgreSQL)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        assert db["NAME"] != ":memory:" and "mode=memory" not in str(db["NAME"])
        return f"sqlite:///{db['NAME']}"
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def gunicorn_serving(env, log_path, *args, workers_booted=0, timeout=60):
    """gunicorn as deployed (gunicorn.conf.py) on a free port, its log in `log_path`: yields
    the base URL once it listens and `workers_booted` workers have booted, stops it after."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(GUNICORN), "--bind", "127.0.0.1:0", "--no-control-socket", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{_listening_port(log_path, process, workers_booted, timeout)}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _listening_port(log_path, process, workers_booted, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text()
        found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
        if found and len(re.findall(r"Booting worker", text)) >= workers_booted:
            return int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not start:\n{log_path.read_text()}")


def child_env(**overrides):
    """The environment of a child manage.py on the test database, with this run's keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BC_"))}
    env.update(
        DATABASE_URL=database_url(),
        SECRET_KEY=settings.SECRET_KEY,
        FERNET_KEYS=",".join(settings.FERNET_KEYS),
        LOG_LEVEL="WARNING",
        **overrides,
    )
    return env


def confirmed_write(client, endpoint):
    """The form a write test's confirmation page posts (its button and its single-use
    nonce), read from the page as `client` is shown it."""
    page = client.get(endpoint_url(endpoint, "test"))
    nonce = re.search(r'name="bc_nonce" value="([^"]+)"', page.content.decode())
    assert nonce, "no confirmation form on the page"
    return {"bc_confirm": "yes", "bc_nonce": nonce.group(1)}


def endpoint_form_data(authentication, *, params=(), headers=(), **fields):
    """The endpoint admin form's POST data, with `params` and `headers` as key/value rows."""
    data = {
        "name": "Customers",
        "description": "",
        "authentication": authentication.pk,
        "method": "GET",
        "path": "api/v2.0/companies({company})/customers",
        "body": "",
        "read_only_intent": "on",
        **fields,
    }
    for prefix, rows in (("params", params), ("headers", headers)):
        for index, (key, value) in enumerate([*rows, ("", "")]):
            data[f"{prefix}-key-{index}"], data[f"{prefix}-value-{index}"] = key, value
    return data


def moves_shown(review):
    """The `bc_seen` stamps a "Point at another authentication" review page posts back."""
    return re.findall(r'name="bc_seen" value="([^"]+)"', review.content.decode())


def move_form(endpoint, target, step, **extra):
    """What the "Point at another authentication" action posts for `endpoint` at `step`."""
    return {
        "action": "point_at_another_authentication",
        "_selected_action": [endpoint.pk],
        "authentication": target.pk,
        "bc_move_step": step,
        **extra,
    }


# --- the BC client: tokens issued by the fake Entra, and a fake clock ---------------------


def issue_token(fake, *, user="jane@contoso.com", lifetime=3600):
    """An access token the fake Entra knows, as if a sign-in had produced it."""
    token = "fake-at-" + secrets.token_urlsafe(32)
    with fake.entra.lock:
        fake.entra.access_tokens[token] = {
            "client_id": CLIENT_ID,
            "user": user,
            "tid": TENANT_ID,
            "expires_at": time.time() + lifetime,
        }
    return token


class Tokens:
    """A token provider that records how it was asked and refreshes when forced."""

    def __init__(self, fake, *, first=None, user="jane@contoso.com", refresh_works=True):
        self.fake, self.user, self.refresh_works = fake, user, refresh_works
        self.current = first or issue_token(fake, user=user)
        self.calls = []
        self.issued = [self.current]

    def __call__(self, force_refresh=False):
        self.calls.append(force_refresh)
        if force_refresh and self.refresh_works:
            self.current = issue_token(self.fake, user=self.user)
            self.issued.append(self.current)
        return self.current


class FakeClock:
    """`clock` and `sleep` for the client: sleeping moves time on, instantly."""

    def __init__(self, start=1_800_000_000.0):
        self.now = start
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(fake, tokens=None, clock=None, **kwargs):
    clock = clock or FakeClock()
    kwargs.setdefault("random", lambda: 0.5)
    return BusinessCentralClient(
        fake.bc.base_url(),
        tokens or Tokens(fake),
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


OFFLINE_BASE = "https://api.businesscentral.dynamics.com/v2.0/tenant/Production/api/v2.0"


def offline_client(base_url=OFFLINE_BASE, **kwargs):
    """A client whose token provider, clock and jitter are local: for `responses` tests."""
    clock = FakeClock()
    return BusinessCentralClient(
        base_url,
        lambda force_refresh=False: "secret-token-value",
        sleep=clock.sleep,
        clock=clock,
        random=lambda: 0.5,
        **kwargs,
    )


# --- the HTTP API (issue 21) ------------------------------------------------------------


def problem(response, status, code):
    """The problem details of an API error answer, checked for their status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code
    assert {"type", "title", "detail"} <= set(body)
    return body


def key_check_reads(captured):
    """The SELECTs among `captured` queries that read an API key or an authentication."""
    from authentications.api.models import ApiKey
    from authentications.connections.models import Authentication

    tables = (ApiKey._meta.db_table, Authentication._meta.db_table)
    return [
        query["sql"]
        for query in captured
        if query["sql"].startswith("SELECT") and any(table in query["sql"] for table in tables)
    ]
