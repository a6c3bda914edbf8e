"""Shared fixtures: the fake Microsoft, settings pointed at it, and factories."""

import io
import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.utils.module_loading import import_string

from authentications.connections import oauth
from authentications.connections.models import Authentication
from authentications.kit import request_context
from authentications.signin import flows
from bcconnect import caches
from tests.fakes.admin_consent import FABRIKAM_TENANT_ID
from tests.fakes.bc import FakeBusinessCentral
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID
from tests.fakes.microsoft import FakeMicrosoft
from tests.helpers import ROW_ACCESS_TOKEN, ROW_REFRESH_TOKEN, plant_tokens


def pytest_terminal_summary(terminalreporter):
    """The figures the stress tests put on their reports (tests/stress/conftest.py). Here,
    not there: under pytest-xdist only the initial conftest runs in the controlling process."""
    lines = {
        value: None
        for category in terminalreporter.stats.values()
        for report in category
        for name, value in getattr(report, "user_properties", ())
        if name in ("stress figure", "api figure")
    }  # A test's properties ride on its setup, call and teardown reports alike: once each.
    if lines:
        terminalreporter.section("stress and API figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fake-microsoft-certs")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache(request):
    """Rate-limit counters live in the cache (the database's): each test starts with none.

    A test without database access uses no cache either, and must not open the database.
    """
    uses_db = {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    if uses_db or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("_django_db_helper")  # pytest-django's: the test's database.
        cache.clear()


@pytest.fixture(autouse=True)
def _log_handlers_outlive_captured_streams():
    """Keep the LOGGING console handlers writable after a test that ran a command line.

    `execute_from_command_line` runs `django.setup()` again, which binds the console handlers
    to that test's captured stderr; once pytest closes it, every later log call fails to emit
    and prints a whole stack instead (noise, and memory a tracemalloc test counts).
    """
    yield
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if getattr(getattr(handler, "stream", None), "closed", False):
                handler.stream = sys.stderr  # Not setStream(): it flushes the closed one.


@pytest.fixture(autouse=True)
def _fresh_msal_http_cache():
    oauth.clear_http_cache()
    yield
    oauth.clear_http_cache()


@pytest.fixture
def fake_microsoft(cert_dir, settings, monkeypatch):
    """The fake Microsoft on a free port, with bcconnect's settings pointed at it."""
    fake = FakeMicrosoft(cert_dir=cert_dir, parts=[FakeBusinessCentral()]).start()
    settings.BC_AUTHORITY_HOST = fake.url
    settings.BC_API_HOST = fake.url
    settings.BC_API_ALLOWED_HOSTS = []
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_path))
    fake.entra.register_app(CLIENT_ID, CLIENT_SECRET, oauth.redirect_uri())
    yield fake
    fake.stop()


@pytest.fixture
def make_authentication(db, fake_microsoft):
    """Factory for authentications registered with the fake Microsoft."""
    counter = iter(range(1, 10_000))

    def make(**fields):
        values = {
            "name": f"BC production {next(counter)}",
            "kind": Authentication.Kind.USER_IMPERSONATION,
            "client_id": CLIENT_ID,
            "tenant_id": TENANT_ID,
            "client_secret": CLIENT_SECRET,
            "base_url": f"{fake_microsoft.url}/v2.0/{TENANT_ID}/Production/api/v2.0",
            **fields,
        }
        return Authentication.objects.create(**values)

    return make


@pytest.fixture
def sign_in(fake_microsoft):
    """Finish a sign-in that `response` redirected to Microsoft, as the browser would."""

    def finish(client, response, *, username=None, accept=True):
        assert response.status_code == 302, response
        callback_url, fields = fake_microsoft.sign_in(
            response["Location"], username=username, accept=accept
        )
        return client.post(urlsplit(callback_url).path, fields)

    return finish


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Test on a SQLite file, not in memory, so other processes (concurrency tests) share it."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        path = tmp_path_factory.mktemp("sqlite") / "test.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(path)


# --- connected authentications: three meanings, three names ------------------------------


@pytest.fixture
def sign_in_at_microsoft(fake_microsoft):
    """Sign an authentication in at the fake Microsoft, as a person would; returns it fresh.

    The whole flow runs (pending request, consent, code, PKCE, ID token), so the tokens
    stored are ones the fake accepts, and a refresh rotates them.
    """

    def sign_in_as_a_person(authentication, *, username=None):
        start = flows.start_sign_in(authentication, via=flows.AuthorizationRequest.Via.ADMIN)
        _, fields = fake_microsoft.sign_in(start.authorize_url, username=username)
        flows.complete_sign_in(fields, {start.cookie_name: start.cookie_value})
        authentication.refresh_from_db()
        return authentication

    return sign_in_as_a_person


@pytest.fixture
def signed_in(make_authentication, sign_in_at_microsoft):
    """An authentication ("BC production") connected by a real sign-in at the fake Microsoft."""
    return sign_in_at_microsoft(make_authentication(name="BC production"))


@pytest.fixture
def tokens_planted(make_authentication, fake_microsoft):
    """An authentication ("BC production") holding tokens the fake knows, but never signed in."""
    return plant_tokens(fake_microsoft, make_authentication(name="BC production"))


@pytest.fixture
def connected_row(make_authentication):
    """An authentication ("BC production") connected in the database only.

    The fake Microsoft knows none of its tokens: enough for pages, permissions and input
    that must change nothing; anything that sends a token to Microsoft or BC fails.
    """
    return make_authentication(
        name="BC production",
        access_token=ROW_ACCESS_TOKEN,
        refresh_token=ROW_REFRESH_TOKEN,
        status=Authentication.Status.CONNECTED,
    )


@pytest.fixture
def notify_list(settings):
    """Who is emailed when a connection needs a person."""
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]
    return settings.BC_NOTIFY_EMAILS


# --- endpoints (issue 12) -----------------------------------------------------------------


@pytest.fixture
def make_endpoint(db, fake_microsoft):
    """Factory for endpoints: customers of the fake's first company, unless told otherwise."""
    from authentications.endpoints.models import Endpoint

    counter = iter(range(1, 10_000))

    def make(authentication, **fields):
        values = {
            "name": f"Customers {next(counter)}",
            "authentication": authentication,
            "path": "api/v2.0/companies({company})/customers",
            "company_id": fake_microsoft.bc.company.id,
            "company_name": fake_microsoft.bc.company.name,
            **fields,
        }
        return Endpoint.objects.create(**values)

    return make


@pytest.fixture
def fabrikam(make_authentication, fake_microsoft):
    """A service-to-service authentication for the fake's customer tenant (Fabrikam),
    whose administrator has not consented yet: Entra gives it no token there."""
    return make_authentication(
        name="Fabrikam",
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        tenant_id=FABRIKAM_TENANT_ID,
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )


@pytest.fixture(params=["text", "json"])
def log_lines(request, settings):
    """The log a leak test searches, in each LOG_FORMAT: `log_lines(caplog)`.

    text: what caplog captured. json: what a handler configured as LOG_FORMAT=json configures
    the console (the same formatter and request-id filter) wrote, each line checked to be one
    JSON object; it sits on the root logger beside caplog's handler and sees what it sees.
    """
    if request.param == "text":
        yield lambda caplog: caplog.text
        return
    settings.LOG_FORMAT = "json"
    handler = logging.StreamHandler(io.StringIO())
    options = dict(settings.LOGGING["formatters"]["json"])
    handler.setFormatter(import_string(options.pop("()"))(**options))
    handler.addFilter(request_context.RequestIdFilter())
    logging.getLogger().addHandler(handler)

    def json_lines(caplog):
        text = handler.stream.getvalue()
        assert text and all(isinstance(json.loads(line), dict) for line in text.splitlines())
        return text

    try:
        yield json_lines
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture
def redis_cache(settings, tmp_path, free_tcp_port):
    """A redis-server of the test's own as the default cache, set up as CACHE_URL=redis://...
    sets it up (bcconnect/caches.py)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_tcp_port
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        settings.CACHES = {"default": caches.config(url)}
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def unreachable_cache(settings, free_tcp_port):
    """Redis as the default cache, on a port where nothing listens: every count fails."""
    settings.CACHES = {"default": caches.config(f"redis://127.0.0.1:{free_tcp_port}/0")}
    return free_tcp_port
