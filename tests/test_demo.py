"""The newcomer path: `make demo` shows the whole flow without an Entra tenant."""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from cryptography.fernet import Fernet

from authentications.connections.models import Authentication
from tests.fakes.demo import DEMO_AUTHENTICATION, DemoRefused, set_up_demo
from tests.fakes.microsoft import read_form
from tests.helpers import ROOT

# They start gunicorn or the whole demo: kept out of the parallel run (`make test`).
pytestmark = pytest.mark.serial


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_demo(tmp_path, **env):
    """`make demo` with this venv and throw-away ports and directory."""
    stamp = tmp_path / "installed"
    stamp.touch()
    demo_port, fake_port = free_port(), free_port()
    command = [
        "make",
        "--no-print-directory",
        "demo",
        f"BIN={Path(sys.executable).parent}",
        f"STAMP={stamp}",
        f"DEMO_DIR={tmp_path / 'demo'}",
        f"DEMO_PORT={demo_port}",
        f"FAKE_PORT={fake_port}",
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BC_"))}
    environment.pop("DATABASE_URL", None)
    environment.update(env)
    return command, environment, demo_port


def test_demo_setup_refuses_with_debug_off(db, settings):
    settings.DEBUG = False

    with pytest.raises(DemoRefused, match="refuses to run with DEBUG off"):
        set_up_demo()

    assert not Authentication.objects.exists()


def test_demo_setup_refuses_against_the_real_microsoft(db, settings):
    settings.DEBUG = True
    settings.BC_AUTHORITY_HOST = "https://login.microsoftonline.com"

    with pytest.raises(DemoRefused, match="BC_AUTHORITY_HOST is https://login.microsoftonline"):
        set_up_demo()


def test_make_demo_refuses_with_debug_off(tmp_path):
    command, env, _ = make_demo(
        tmp_path,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS=Fernet.generate_key().decode(),
    )

    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert "refuses to run with DEBUG off" in result.stderr
    assert not (tmp_path / "demo" / "fake-microsoft.log").exists()  # Nothing was started.


@pytest.fixture
def running_demo(tmp_path):
    command, env, port = make_demo(tmp_path, DEBUG="true")
    log_path = tmp_path / "make-demo.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_served(base_url + "/admin/login/", process, log_path)
        yield base_url, log_path.read_text(), tmp_path / "demo" / "certs" / "ca.pem"
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make, the fake and runserver: our own group.
        process.wait(timeout=30)


def _wait_until_served(url, process, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"make demo did not serve {url}:\n{log_path.read_text()}")


def test_make_demo_prints_credentials_that_lead_to_access_token_received(running_demo):
    base_url, banner, ca_path = running_demo
    assert f"Open:      {base_url}/admin/" in banner
    username = re.search(r"Username:\s+(\S+)", banner).group(1)
    password = re.search(r"Password:\s+(\S+)", banner).group(1)
    browser = Browser(base_url)

    browser.submit("/admin/login/", {"username": username, "password": password})
    change_page = browser.get(re.search(r"\((http://\S+/change/)\)", banner).group(1))
    assert DEMO_AUTHENTICATION in change_page.text
    sign_in_action = re.search(r'formaction="([^"]+/sign-in/)"', change_page.text).group(1)
    to_microsoft = browser.submit(change_page.url, {}, action=sign_in_action)

    trust = {"verify": str(ca_path), "timeout": 10}
    page = requests.get(to_microsoft.headers["Location"], **trust)
    action, fields = read_form(page.text)
    answer = requests.post(action, {**fields, "decision": "accept"}, **trust)
    callback, posted = read_form(answer.text)
    landed = browser.post(callback, posted)

    assert landed.status_code == 200
    assert "Access token received" in landed.text
    assert "Jane Doe (jane@contoso.com)" in landed.text


def test_make_demo_offers_onboarding_a_customer_tenant_by_admin_consent(running_demo):
    base_url, banner, ca_path = running_demo
    trust = {"verify": str(ca_path), "timeout": 10}
    username = re.search(r"Username:\s+(\S+)", banner).group(1)
    password = re.search(r"Password:\s+(\S+)", banner).group(1)
    staff = Browser(base_url)
    staff.submit("/admin/login/", {"username": username, "password": password})
    change_url = re.findall(r"\((http://\S+/change/)\)", banner)[1]
    change_page = staff.get(change_url)
    assert "Demo customer (admin consent)" in change_page.text
    link = re.search(r'id="bc-admin-consent-url"[^>]*value="([^"]+)"', change_page.text).group(1)

    administrator = Browser(base_url)
    to_microsoft = administrator.submit(link, {})
    page = requests.get(to_microsoft.headers["Location"], **trust)
    action, fields = read_form(page.text)
    admin = re.search(r"sign in as\s+(\S+@\S+)", banner).group(1)
    answer = requests.post(
        action,
        {**fields, "username": admin, "decision": "accept"},
        allow_redirects=False,
        **trust,
    )
    granted = administrator.get(answer.headers["Location"])

    assert "Admin consent granted, access token received" in granted.text
    test_action = re.search(r'formaction="([^"]+/test-connection/)"', change_page.text).group(1)
    refused = staff.submit(change_url, {}, action=test_action)
    assert "Microsoft Entra Applications card" in refused.text
    cards = re.search(r"at\s+(https://\S+/entra-applications)", banner).group(1)
    tenant = re.search(r"tenant ([0-9a-f-]{36}) and client ID ([0-9a-f-]{36})", banner)
    requests.post(cards, {"tenant": tenant.group(1), "client_id": tenant.group(2)}, **trust)
    connected = staff.submit(change_url, {}, action=test_action)
    assert "Connected: " in connected.text


class Browser:
    """Just enough of a browser: cookies (Secure ones too, as Chrome on 127.0.0.1) and forms."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.cookies = {}

    def _send(self, method, url, data=None):
        response = requests.request(
            method,
            urljoin(self.base_url, url),
            data=data,
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())},
            allow_redirects=False,
            timeout=10,
        )
        for header in response.raw.headers.getlist("Set-Cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        if response.status_code in (301, 302, 303) and urljoin(
            self.base_url, response.headers["Location"]
        ).startswith(self.base_url):
            return self._send("GET", response.headers["Location"])
        return response

    def get(self, url):
        return self._send("GET", url)

    def post(self, url, data):
        return self._send("POST", url, data)

    def submit(self, page_url, fields, *, action=None):
        page = self.get(page_url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return self.post(action or page_url, {"csrfmiddlewaretoken": token, **fields})


def test_every_demo_endpoint_reads_rows_from_the_fake_bc(admin_client, tokens_planted):
    from authentications.endpoints.models import Endpoint
    from tests.fakes.demo import DEMO_ENDPOINTS, create_demo_endpoints
    from tests.helpers import endpoint_url

    create_demo_endpoints(tokens_planted)

    rows = {}
    for name in DEMO_ENDPOINTS:
        endpoint = Endpoint.objects.get(name=name)
        page = admin_client.get(endpoint_url(endpoint, "test"))
        assert page.status_code == 200, name
        endpoint.refresh_from_db()
        assert endpoint.last_test_status == 200, (name, endpoint.last_test_error)
        rows[name] = endpoint.last_test_rows
    assert rows == {
        "Demo customers": 50,
        "Demo vendors": 5,
        "Demo items": 6,
        "Demo sales orders": 4,
        "Demo sales order lines": 8,
    }
