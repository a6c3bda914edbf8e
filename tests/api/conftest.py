"""Fixtures of the HTTP API: keys made as the admin or the command makes them, and a caller."""

import pytest
from rest_framework.test import APIClient

from authentications.api import keys
from tests.helpers import child_env, gunicorn_serving


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
    with gunicorn_serving(env, tmp_path / "gunicorn.log") as url:
        yield url
