"""Each key has a rate limit, counted in the shared cache: past it, 429 with Retry-After."""

from django.conf import settings

from authentications.api.models import ApiKey
from tests.helpers import problem

LIST = "/api/v1/authentications/"


def test_the_default_cache_is_shared_between_processes():
    assert settings.CACHES["default"]["BACKEND"] in (
        "django.core.cache.backends.db.DatabaseCache",
        "django.core.cache.backends.redis.RedisCache",
    )


def test_past_the_keys_rate_the_answer_is_429_with_retry_after(make_key, caller, connected_row):
    _, plaintext = make_key(connected_row, rate_limit="3/minute")
    client = caller(plaintext)

    statuses = [client.get(LIST).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = client.get(LIST)
    problem(refused, 429, "rate_limited")
    assert 0 < int(refused["Retry-After"]) <= 60


def test_each_key_counts_on_its_own(make_key, caller, connected_row):
    _, busy = make_key(connected_row, rate_limit="2/minute")
    _, calm = make_key(connected_row, rate_limit="2/minute")
    for _ in range(3):
        caller(busy).get(LIST)

    assert caller(calm).get(LIST).status_code == 200


def test_without_a_rate_of_its_own_a_key_has_the_settings_rate(
    make_key, caller, connected_row, settings
):
    settings.BC_API_RATE_LIMIT = "2/minute"
    key, plaintext = make_key(connected_row)

    assert [caller(plaintext).get(LIST).status_code for _ in range(3)] == [200, 200, 429]

    ApiKey.objects.filter(pk=key.pk).update(rate_limit="10/minute")  # Set in the admin.
    assert caller(plaintext).get(LIST).status_code == 200


def test_a_refused_key_is_not_counted_against_anyone(make_key, caller, connected_row, settings):
    settings.BC_API_RATE_LIMIT = "1/minute"
    _, plaintext = make_key(connected_row)
    for _ in range(3):
        caller("nope.nope").get(LIST)

    assert caller(plaintext).get(LIST).status_code == 200


def test_the_admin_refuses_a_rate_it_cannot_read(admin_client, connected_row):
    page = admin_client.post(
        "/admin/authentications/apikey/add/",
        {"name": "x", "scopes": ["tokens"], "authentications": [connected_row.pk],
         "rate_limit": "lots"},
    )  # fmt: skip

    assert "e.g. 600/minute" in page.content.decode()
    assert not ApiKey.objects.exists()
