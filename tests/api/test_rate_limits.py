"""Each key has a rate limit, counted in the shared cache: past it, 429 with Retry-After."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from authentications.api.models import ApiCall, ApiKey
from tests.helpers import problem

LIST = "/api/v1/authentications/"


def test_the_default_cache_is_shared_between_processes():
    assert settings.CACHES["default"]["BACKEND"] in (
        "authentications.kit.counters.DatabaseCache",  # The database's, incr made atomic.
        "django.core.cache.backends.redis.RedisCache",
    )


def test_past_the_keys_rate_the_answer_is_429_with_retry_after(make_key, caller, connected_row):
    _, plaintext = make_key(connected_row, rate_limit="3/hour")
    client = caller(plaintext)

    statuses = [client.get(LIST).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = client.get(LIST)
    problem(refused, 429, "rate_limited")
    assert 0 < int(refused["Retry-After"]) <= 3600


def test_each_key_counts_on_its_own(make_key, caller, connected_row):
    _, busy = make_key(connected_row, rate_limit="2/hour")
    _, calm = make_key(connected_row, rate_limit="2/hour")
    for _ in range(3):
        caller(busy).get(LIST)

    assert caller(calm).get(LIST).status_code == 200


def test_without_a_rate_of_its_own_a_key_has_the_settings_rate(
    make_key, caller, connected_row, settings
):
    settings.BC_API_RATE_LIMIT = "2/hour"
    key, plaintext = make_key(connected_row)

    assert [caller(plaintext).get(LIST).status_code for _ in range(3)] == [200, 200, 429]

    ApiKey.objects.filter(pk=key.pk).update(rate_limit="10/hour")  # Set in the admin.
    assert caller(plaintext).get(LIST).status_code == 200


def test_a_refused_key_is_not_counted_against_anyone(make_key, caller, connected_row, settings):
    settings.BC_API_RATE_LIMIT = "1/hour"
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


def test_a_daily_rate_outlives_the_caches_default_timeout(make_key, caller, connected_row):
    key, plaintext = make_key(connected_row, rate_limit="100/day")
    caller(plaintext).get(LIST)
    caller(plaintext).get(LIST)

    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key, expires FROM bcconnect_cache")
        (expires,) = [expires for name, expires in cursor.fetchall() if key.prefix in name]
    if isinstance(expires, str):  # SQLite hands the column back as text.
        expires = datetime.fromisoformat(expires)
    assert expires.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(hours=23)


def test_with_redis_as_the_cache_the_limit_holds_the_same(
    redis_cache, make_key, caller, connected_row
):
    from django.core.cache import caches

    _, plaintext = make_key(connected_row, rate_limit="3/hour")

    statuses = [caller(plaintext).get(LIST).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    assert type(caches["default"]).__name__ == "RedisCache"
    assert [key for key in caches["default"]._cache.get_client().keys() if b"api-rate" in key]


def test_with_the_cache_unreachable_a_call_is_a_503_and_nothing_is_handed_out(
    unreachable_cache, make_key, caller, tokens_planted
):
    """Nothing can be counted, so nothing is let through; not a 500."""
    _, plaintext = make_key(tokens_planted, scopes=["tokens"])

    response = caller(plaintext).post(f"/api/v1/authentications/{tokens_planted.pk}/token/")

    body = problem(response, 503, "rate_limit_unavailable")
    assert response["Retry-After"] == "30"
    assert tokens_planted.access_token not in response.content.decode()
    assert "access_token" not in body
    (call,) = ApiCall.objects.all()  # The refusal is audited like any answer.
    assert (call.status, call.code) == (503, "rate_limit_unavailable")
