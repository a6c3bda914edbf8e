"""Fixtures of the HTTP API: keys made as the admin or the command makes them, and a caller."""

import pytest
from rest_framework.test import APIClient

from authentications.api import keys


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
