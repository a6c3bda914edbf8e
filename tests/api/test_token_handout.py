"""A service asks for an access token: fresh, refreshed through the lease when too short."""

from datetime import timedelta

import pytest
from django.utils import timezone

from authentications.api.models import ApiCall
from authentications.connections.models import Authentication
from tests.helpers import expiring, fresh, key_check_reads, problem


def token_url(authentication, query=""):
    return f"/api/v1/authentications/{authentication.pk}/token/{query}"


def test_a_fresh_token_is_handed_out_and_never_cached(make_key, caller, tokens_planted):
    _, plaintext = make_key(tokens_planted, scopes=["tokens"])

    response = caller(plaintext).post(token_url(tokens_planted))

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["access_token"] == tokens_planted.access_token
    assert body["token_type"] == "Bearer"
    assert 3500 < body["expires_in"] <= 3600
    assert body["expires_at"].startswith(str(tokens_planted.access_token_expires_at.year))


def test_a_token_with_less_than_min_validity_left_is_refreshed_first(
    make_key, caller, tokens_planted, fake_microsoft
):
    _, plaintext = make_key(tokens_planted, scopes=["tokens"])
    expiring(tokens_planted, seconds=100)

    kept = caller(plaintext).post(token_url(tokens_planted, "?min_validity=60")).json()
    assert kept["access_token"] == tokens_planted.access_token
    assert fake_microsoft.entra.count("refresh_token") == 0

    renewed = caller(plaintext).post(token_url(tokens_planted)).json()  # Default: 120 s.
    assert fake_microsoft.entra.count("refresh_token") == 1
    assert renewed["access_token"] == fresh(tokens_planted).access_token != kept["access_token"]
    assert renewed["expires_in"] > 3000


def test_a_hand_out_makes_one_read_the_key_check_with_the_token(make_key, caller, tokens_planted):
    """The key check reads the token along: every query is on every call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, plaintext = make_key(tokens_planted, scopes=["tokens"])
    client = caller(plaintext)
    client.post(token_url(tokens_planted))  # The rate limit's window exists from here on.

    with CaptureQueriesContext(connection) as captured:
        assert client.post(token_url(tokens_planted)).status_code == 200

    reads = key_check_reads(captured)
    assert len(reads) == 1
    assert Authentication._meta.db_table in reads[0] and "access_token" in reads[0]


def test_a_key_for_every_authentication_gets_each_token(
    make_key, caller, tokens_planted, make_authentication
):
    other = make_authentication(
        name="Other",
        access_token="other-token",
        access_token_expires_at=timezone.now() + timedelta(hours=1),
    )
    _, plaintext = make_key(scopes=["tokens"], all_authentications=True)
    client = caller(plaintext)

    assert client.post(token_url(tokens_planted)).json()["access_token"] == (
        tokens_planted.access_token
    )
    assert client.post(token_url(other)).json()["access_token"] == "other-token"


@pytest.mark.parametrize(
    "pk",
    ["9223372036854775808", "99999999999999999999999", "0", "9" * 5000],
    ids=["past-bigint", "23-digits", "zero", "5000-digits"],
)
def test_an_id_no_row_can_have_is_a_404_not_an_error(make_key, caller, tokens_planted, pk):
    _, plaintext = make_key(tokens_planted, scopes=["tokens"])

    response = caller(plaintext).post(f"/api/v1/authentications/{pk}/token/")

    problem(response, 404, "not_found")


@pytest.mark.parametrize("query", ["?min_validity=-1", "?min_validity=99999", "?min_validity=x"])
def test_a_bad_min_validity_is_a_400(make_key, caller, tokens_planted, query):
    _, plaintext = make_key(tokens_planted, scopes=["tokens"])

    body = problem(caller(plaintext).post(token_url(tokens_planted, query)), 400, "invalid_input")
    assert "min_validity" in body["errors"]


def test_without_the_tokens_scope_the_answer_is_403(make_key, caller, tokens_planted):
    _, plaintext = make_key(tokens_planted, scopes=["bc.read"])

    body = problem(caller(plaintext).post(token_url(tokens_planted)), 403, "scope_missing")
    assert "tokens" in body["detail"]


def test_another_keys_authentication_is_a_404_before_the_scope(
    make_key, caller, tokens_planted, make_authentication
):
    other = make_authentication(name="Other")
    _, plaintext = make_key(other, scopes=["tokens"])

    problem(caller(plaintext).post(token_url(tokens_planted)), 404, "not_found")


def test_a_connection_that_needs_a_person_is_a_409_without_a_link(
    make_key, caller, tokens_planted, fake_microsoft
):
    _, plaintext = make_key(tokens_planted, scopes=["tokens"])
    fake_microsoft.entra.revoke_user("jane@contoso.com")
    expiring(tokens_planted, seconds=-10)

    response = caller(plaintext).post(token_url(tokens_planted))

    body = problem(response, 409, "needs_sign_in")
    assert "http" not in response.content.decode().lower()
    assert body["reason"]
    assert fresh(tokens_planted).status == Authentication.Status.NEEDS_SIGN_IN


def test_microsoft_unreachable_is_a_503_with_retry_after(
    make_key, caller, tokens_planted, fake_microsoft
):
    _, plaintext = make_key(tokens_planted, scopes=["tokens"])
    expiring(tokens_planted, seconds=-10)
    fake_microsoft.entra.fail_next_token_request(("status", 503))

    response = caller(plaintext).post(token_url(tokens_planted))

    problem(response, 503, "entra_unavailable")
    assert int(response["Retry-After"]) > 0


def test_the_audit_and_the_answers_hold_no_token_nor_key(make_key, caller, tokens_planted, caplog):
    key, plaintext = make_key(tokens_planted, scopes=["tokens"])
    expiring(tokens_planted, seconds=10)

    handed = caller(plaintext).post(token_url(tokens_planted)).json()["access_token"]
    caller(plaintext).get("/api/v1/authentications/")

    rows = [str(row) for row in ApiCall.objects.values()]
    secrets = {plaintext, plaintext.partition(".")[2], handed, tokens_planted.access_token}
    for secret in secrets:
        assert all(secret not in row for row in rows)
        assert secret not in caplog.text
    assert ApiCall.objects.filter(authentication=tokens_planted, status=200).count() == 1
    assert fresh(tokens_planted).access_token_expires_at > timezone.now() + timedelta(minutes=50)


def test_every_call_is_counted_in_the_metrics_by_scope_and_status(make_key, caller, tokens_planted):
    """The API announces each call (the metrics' `bcconnect_api_requests_total`)."""
    from prometheus_client import REGISTRY

    def counted(scope, status):
        labels = {"scope": scope, "status": status}
        return REGISTRY.get_sample_value("bcconnect_api_requests_total", labels) or 0

    _, plaintext = make_key(tokens_planted, scopes=["tokens"])
    before = counted("tokens", "200"), counted("tokens", "401"), counted("none", "200")

    caller(plaintext).post(token_url(tokens_planted))
    caller("nope.nope").post(token_url(tokens_planted))
    caller(plaintext).get("/api/v1/authentications/")

    after = counted("tokens", "200"), counted("tokens", "401"), counted("none", "200")
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
