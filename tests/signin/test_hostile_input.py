"""Hostile input: random and malicious parameters never cause a 500 or change a token."""

import os

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from authentications.connections.models import Authentication
from tests.helpers import ROW_ACCESS_TOKEN, ROW_REFRESH_TOKEN, admin_change_url, change_form_data

pytestmark = pytest.mark.django_db

CALLBACK = "/authentications/callback/"
# Examples per test: 150 by default, HYPOTHESIS_EXAMPLES=5000 for a thorough hunt.
FIXTURES_OK = hypothesis_settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text the way an attacker would send it: control characters, unicode, long runs, markup.
nasty_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(
        [
            "",
            "\x00",
            "' OR 1=1 --",
            "<script>alert(1)</script>",
            "../../etc/passwd",
            "https://evil.example/",
            "//evil.example",
            "A" * 10_000,
            "%00%0d%0a",
            "\u202e\u0000\ufeff",
        ]
    ),
)
oauth_keys = st.sampled_from(
    [
        "code",
        "state",
        "error",
        "error_description",
        "iss",
        "session_state",
        "client_info",
        "next",
        "redirect_uri",
        "returnUrl",
    ]
)
params = st.dictionaries(
    st.one_of(oauth_keys, st.text(min_size=1, max_size=20)), nasty_text, max_size=6
)


@pytest.fixture
def no_rate_limit(settings):
    """Set once per test, not per example: each assignment nests another settings layer."""
    settings.BC_PUBLIC_RATE_LIMIT = ""


def assert_tokens_kept(authentication):
    stored = Authentication.objects.get(pk=authentication.pk)
    assert stored.access_token == ROW_ACCESS_TOKEN
    assert stored.refresh_token == ROW_REFRESH_TOKEN


@FIXTURES_OK
@given(data=params, method=st.sampled_from(["get", "post"]))
def test_random_answers_at_the_callback_are_refused_cleanly(
    client, connected_row, no_rate_limit, data, method
):
    clean = {key.replace("\x00", ""): value.replace("\x00", "") for key, value in data.items()}

    response = getattr(client, method)(CALLBACK, clean)

    assert 400 <= response.status_code < 500
    assert "Location" not in response  # No redirect anywhere, open or not.
    assert_tokens_kept(connected_row)


@FIXTURES_OK
@given(extra=params)
@example(extra={"error": "0", "error_description": "\r"})  # Once a 500: a blank first line.
@example(extra={"client_info": "M0"})  # Once a 500: client_info "3", not a JSON object.
@example(extra={"client_info": "bnVsbA"})  # And "null".
def test_a_valid_state_with_hostile_extras_never_redirects_off_site(
    admin_client, connected_row, no_rate_limit, extra
):
    start = admin_client.post(admin_change_url(connected_row).replace("change/", "sign-in/"))
    state = start["Location"].split("state=")[1].split("&")[0]
    data = {key.replace("\x00", ""): value.replace("\x00", "") for key, value in extra.items()}
    data["state"] = state
    data.setdefault("code", "attacker-chosen-code")

    response = admin_client.post(CALLBACK, data)

    assert response.status_code in (303, 400, 503)
    if response.status_code == 303:  # Only ever to our own admin page.
        assert response["Location"].startswith("/admin/")
    assert_tokens_kept(connected_row)


form_fields = st.fixed_dictionaries(
    {},
    optional={
        name: nasty_text
        for name in (
            "name",
            "kind",
            "client_id",
            "tenant_id",
            "client_secret",
            "base_url",
            "expected_user",
            "client_secret_expires_on",
        )
    },
)


@FIXTURES_OK
@given(data=form_fields, button=st.sampled_from(["_save", "_continue"]))
def test_random_admin_form_data_is_a_form_error_or_a_save(
    admin_client, connected_row, data, button
):
    clean = {key: value.replace("\x00", "") for key, value in data.items()}
    payload = {**change_form_data(connected_row), **clean, button: "Save"}

    response = admin_client.post(admin_change_url(connected_row), payload)

    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert not response["Location"].startswith("//")
        assert response["Location"].startswith(("/admin/", "https://"))
    assert Authentication.objects.get(pk=connected_row.pk).refresh_token == ROW_REFRESH_TOKEN


link_tokens = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=300),
    st.from_regex(r"[A-Za-z0-9_\-:.]{1,200}", fullmatch=True),
    st.sampled_from(["..", "%2e%2e", "eyJhIjoxLCJuIjoieCJ9:1abc:sig", "a" * 5000]),
)


@FIXTURES_OK
@given(token=link_tokens, method=st.sampled_from(["get", "post", "head"]))
def test_random_link_tokens_are_refused_and_start_nothing(
    client, connected_row, no_rate_limit, token, method
):
    from urllib.parse import quote

    from authentications.connections.models import AuthorizationRequest

    response = getattr(client, method)(f"/authentications/authorize/{quote(token, safe='')}/")

    assert 400 <= response.status_code < 500
    assert not AuthorizationRequest.objects.exists()
    assert_tokens_kept(connected_row)
