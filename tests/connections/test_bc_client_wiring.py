"""`bc_client(authentication)`: the client wired to stored tokens and the settings."""

import pytest

from authentications.connections.tokens import bc_client
from bcconnect.client import BusinessCentralRequestRefused
from tests.helpers import plant_tokens

pytestmark = pytest.mark.django_db


def test_a_token_bc_rejects_is_refreshed_once_and_stored(make_authentication, fake_microsoft):
    authentication = plant_tokens(fake_microsoft, make_authentication())
    old_token = authentication.access_token
    fake_microsoft.entra.expire_access_token(old_token)  # BC says 401; our row says valid.

    companies = bc_client(authentication).companies()

    assert len(companies) == 3
    assert fake_microsoft.entra.count("refresh_token") == 1
    authentication.refresh_from_db()
    assert authentication.access_token != old_token


def test_clients_of_one_authentication_share_one_limit_from_the_setting(
    make_authentication, fake_microsoft, settings
):
    settings.BC_CLIENT_MAX_CONCURRENCY = 2
    first, second = (plant_tokens(fake_microsoft, make_authentication()) for _ in range(2))

    client = bc_client(first)

    assert client.max_concurrency == 2
    assert client._limiter is bc_client(first)._limiter
    assert client._limiter is client.company("My Company")._limiter
    assert client._limiter is not bc_client(second)._limiter
    assert client.timeout == tuple(settings.BC_HTTP_TIMEOUT)


def test_a_base_url_on_another_host_gets_no_token(make_authentication, fake_microsoft):
    authentication = plant_tokens(
        fake_microsoft,
        make_authentication(base_url="https://evil.example/v2.0/t/Production/api/v2.0"),
    )

    with pytest.raises(BusinessCentralRequestRefused, match="evil.example"):
        bc_client(authentication)
