"""Fixtures of the HTTP API: keys made as the admin or the command makes them, and a caller."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from authentications.api import keys
from tests.helpers import ROOT, child_env

GUNICORN = Path(sys.executable).with_name("gunicorn")


@pytest.fixture
def make_key(db):
    """Factory: an API key and its plaintext (scopes and authentications as given)."""

    def make(*authentications, scopes=("tokens", "bc.read"), **fields):
        fields.setdefault("name", "Storefront")
        return keys.create_key(scopes=scopes, authentications=authentications, **fields)

    return make


@pytest.fixture
def caller():
    """Factory: an API client sending `Authorization: Api-Key <plaintext>`."""

    def make(plaintext=None):
        client = APIClient()
        if plaintext is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
        return client

    return make


@pytest.fixture
def served(transactional_db, fake_microsoft, tmp_path):
    """bcconnect under gunicorn as deployed (2 workers, threads), on the test database and
    pointed at the fake Microsoft; yields its base URL. Rows the test writes are committed
    (transactional_db), so the workers see them."""
    env = child_env(
        BC_AUTHORITY_HOST=fake_microsoft.url,
        BC_API_HOST=fake_microsoft.url,
        REQUESTS_CA_BUNDLE=str(fake_microsoft.ca_path),
        EMAIL_URL="dummymail://",
        WEB_CONCURRENCY="2",
        WEB_THREADS="8",
    )
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [str(GUNICORN), "--bind", "127.0.0.1:0", "--no-control-socket"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{_port(log_path, server)}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _port(log_path, server, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log_path.read_text())
        if found:
            return int(found.group(1))
        if server.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not start:\n{log_path.read_text()}")
