"""Every way Microsoft's answer can go wrong ends on a clear page and changes no token."""

import logging

import pytest
from pytest_django.asserts import assertContains

from authentications.connections.models import Authentication, AuthorizationRequest, Event
from tests.fakes.entra import TENANT_ID, error_body
from tests.helpers import admin_change_url, change_form_data, state_of

pytestmark = pytest.mark.django_db

CALLBACK = "/authentications/callback/"
OTHER_TENANT = "00000000-1111-4222-8333-444444444444"


def start(client, authentication):
    return client.post(
        admin_change_url(authentication).replace("change/", "sign-in/"),
    )


def assert_tokens_unchanged(authentication):
    stored = Authentication.objects.get(pk=authentication.pk)
    assert stored.access_token == authentication.access_token
    assert stored.refresh_token == authentication.refresh_token
    assert stored.access_token_expires_at == authentication.access_token_expires_at


def test_missing_state_is_a_clear_400(client):
    response = client.post(CALLBACK, {"code": "abc"})

    assertContains(response, "none came", status_code=400)


def test_unknown_state_is_a_clear_400(client, signed_in):
    response = client.post(CALLBACK, {"code": "abc", "state": "x" * 43})

    assertContains(response, "unknown", status_code=400)
    assert_tokens_unchanged(signed_in)


def test_oversized_state_is_refused_without_a_lookup(client, signed_in):
    response = client.post(CALLBACK, {"code": "abc", "state": "x" * 5000})

    assert response.status_code == 400
    assert_tokens_unchanged(signed_in)


def test_replayed_state_is_refused(admin_client, signed_in, fake_microsoft):
    response = start(admin_client, signed_in)
    callback, fields = fake_microsoft.sign_in(response["Location"])
    first = admin_client.post(CALLBACK, fields)
    assert first.status_code == 303
    signed_in.refresh_from_db()

    replay = admin_client.post(CALLBACK, fields)

    assertContains(replay, "already completed", status_code=400)
    assert_tokens_unchanged(signed_in)


def test_expired_state_is_refused(admin_client, signed_in, fake_microsoft):
    response = start(admin_client, signed_in)
    AuthorizationRequest.objects.filter(state=state_of(response)).update(
        expires_at="2000-01-01T00:00:00Z"
    )
    _, fields = fake_microsoft.sign_in(response["Location"])

    answer = admin_client.post(CALLBACK, fields)

    assertContains(answer, "expired", status_code=400)
    assert_tokens_unchanged(signed_in)


def test_a_flow_started_in_one_browser_cannot_be_finished_in_another(
    admin_client, client, signed_in, fake_microsoft
):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])

    other_browser = client.post(CALLBACK, fields)

    assertContains(other_browser, "different browser", status_code=400)
    assert_tokens_unchanged(signed_in)
    # The rightful browser can still finish: the refusal did not burn the state.
    assert admin_client.post(CALLBACK, fields).status_code == 303


def test_cancel_at_microsoft_shows_microsofts_reason(admin_client, signed_in, sign_in):
    answer = sign_in(admin_client, start(admin_client, signed_in), accept=False)

    content = answer.content.decode()
    assert answer.status_code == 400
    assert "cancelled or access was refused" in content
    assert "AADSTS65004" in content
    assert_tokens_unchanged(signed_in)
    signed_in.refresh_from_db()
    assert "AADSTS65004" in signed_in.last_error
    assert signed_in.events.filter(kind=Event.Kind.SIGN_IN_FAILED).exists()
    assert AuthorizationRequest.objects.filter(outcome="failed").count() == 1


@pytest.mark.parametrize(
    ("error", "aadsts", "expected"),
    [
        ("consent_required", 65001, "Consent is missing"),
        ("access_denied", 50105, "cancelled or access was refused"),
        ("invalid_request", 50011, "redirect URI is not registered"),
    ],
)
def test_errors_from_microsoft_are_explained(
    admin_client, signed_in, fake_microsoft, error, aadsts, expected
):
    response = start(admin_client, signed_in)
    body = error_body(error, aadsts, "Something happened.")

    answer = admin_client.post(
        CALLBACK,
        {
            "state": state_of(response),
            "error": error,
            "error_description": body["error_description"],
        },
    )

    assertContains(answer, expected, status_code=400)
    assert_tokens_unchanged(signed_in)


def test_wrong_client_secret_is_explained(admin_client, signed_in, fake_microsoft):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    fake_microsoft.entra.register_app(signed_in.client_id, "rotated-in-entra")

    answer = admin_client.post(CALLBACK, fields)

    content = answer.content.decode()
    assert answer.status_code == 400
    assert "client secret is wrong or expired" in content
    assert "AADSTS7000215" in content
    assert_tokens_unchanged(signed_in)


def test_tampered_code_is_refused(admin_client, signed_in, fake_microsoft):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    fields["code"] = fields["code"][:-4] + "AAAA"

    answer = admin_client.post(CALLBACK, fields)

    assertContains(answer, "AADSTS70000", status_code=400)
    assert_tokens_unchanged(signed_in)


def test_a_code_from_another_sign_in_is_refused(admin_client, signed_in, fake_microsoft):
    first = start(admin_client, signed_in)
    second = start(admin_client, signed_in)
    _, first_fields = fake_microsoft.sign_in(first["Location"])
    _, second_fields = fake_microsoft.sign_in(second["Location"])
    injected = {**second_fields, "code": first_fields["code"]}

    answer = admin_client.post(CALLBACK, injected)

    assertContains(answer, "AADSTS501481", status_code=400)  # PKCE: the verifier does not match.
    assert_tokens_unchanged(signed_in)


# What the token endpoint does, the read timeout we allow it, and what the page then says.
TOKEN_ENDPOINT_OUTAGES = {
    "timeout": (("sleep", 1.0), 0.2, "did not answer in time"),
    "connection-drop": (("drop",), 30.0, "could not be reached"),
    "server-error": (("status", 503), 30.0, "temporary problem"),
}


@pytest.mark.parametrize(
    ("fault", "read_timeout", "explanation"),
    TOKEN_ENDPOINT_OUTAGES.values(),
    ids=TOKEN_ENDPOINT_OUTAGES.keys(),
)
def test_a_token_endpoint_outage_is_a_clear_page_and_keeps_tokens(
    admin_client, signed_in, fake_microsoft, settings, fault, read_timeout, explanation
):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    settings.BC_HTTP_TIMEOUT = (2, read_timeout)
    fake_microsoft.entra.fail_next_token_request(fault)

    answer = admin_client.post(CALLBACK, fields)

    assertContains(answer, explanation, status_code=503)
    assert_tokens_unchanged(signed_in)


def test_an_id_token_for_another_tenant_is_refused(admin_client, signed_in, fake_microsoft):
    fake_microsoft.entra.add_user(
        "mallory@fabrikam.com", "Mallory", tid="00000000-1111-4222-8333-444444444444"
    )
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"], username="mallory@fabrikam.com")

    answer = admin_client.post(CALLBACK, fields)

    assertContains(answer, "another Microsoft Entra directory", status_code=400)
    assert_tokens_unchanged(signed_in)


def test_a_domain_tenant_refuses_an_account_of_another_directory_too(
    admin_client, make_authentication, fake_microsoft
):
    fake_microsoft.entra.add_user("mallory@fabrikam.com", "Mallory", tid=OTHER_TENANT)
    authentication = make_authentication(tenant_id="contoso.onmicrosoft.com")
    response = start(admin_client, authentication)
    _, fields = fake_microsoft.sign_in(response["Location"], username="mallory@fabrikam.com")

    answer = admin_client.post(CALLBACK, fields)

    assert answer.status_code == 400
    assert "another Microsoft Entra directory" in answer.content.decode()
    assert Authentication.objects.get(pk=authentication.pk).access_token == ""


def test_a_domain_tenant_accepts_its_own_accounts(
    admin_client, make_authentication, fake_microsoft, sign_in
):
    authentication = make_authentication(tenant_id="contoso.onmicrosoft.com")

    answer = sign_in(admin_client, start(admin_client, authentication))

    assert answer.status_code == 303
    assert Authentication.objects.get(pk=authentication.pk).access_token.startswith("fake-at-")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"aud": "0b6c7a52-3d5e-4c1f-9a8b-7e6d5c4b3a21"}, "issued to another application"),
        ({"aud": None}, "issued to another application"),
        ({"iss": "https://evil.example/{tid}/v2.0"}, "another identity provider"),
        ({"iss": None}, "another identity provider"),
        ({"tid": OTHER_TENANT}, "another Microsoft Entra directory"),
        ({"tid": None}, "another Microsoft Entra directory"),
        ({"nonce": "replayed-from-another-sign-in"}, "did not match this sign-in"),
        ({"nonce": None}, "did not match this sign-in"),
    ],
    ids=["aud", "no-aud", "iss", "no-iss", "tid", "no-tid", "nonce", "no-nonce"],
)
def test_an_id_token_not_for_this_sign_in_is_refused(
    admin_client, signed_in, fake_microsoft, changes, expected
):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    fake_microsoft.entra.id_token_changes = {
        name: value.format(tid=TENANT_ID) if value else value for name, value in changes.items()
    }

    answer = admin_client.post(CALLBACK, fields)

    assert answer.status_code == 400
    assert expected in answer.content.decode()
    assert_tokens_unchanged(signed_in)
    assert signed_in.events.filter(kind=Event.Kind.SIGN_IN_FAILED).exists()


def test_an_answer_without_an_id_token_is_refused(admin_client, signed_in, fake_microsoft):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    fake_microsoft.entra.issue_id_tokens = False

    answer = admin_client.post(CALLBACK, fields)

    assert answer.status_code == 400
    assert "no ID token" in answer.content.decode()
    assert_tokens_unchanged(signed_in)


def test_get_with_an_error_is_handled_too(client):
    response = client.get(CALLBACK, {"error": "access_denied"})

    assert response.status_code == 400


def test_the_callback_refuses_other_methods(client):
    assert client.put(CALLBACK).status_code == 405


def test_error_pages_are_not_cached(client):
    response = client.post(CALLBACK, {"state": "nope"})

    assert "no-store" in response["Cache-Control"]


def test_failures_log_no_secrets(admin_client, signed_in, fake_microsoft, caplog):
    caplog.set_level(logging.DEBUG)
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    fake_microsoft.entra.register_app(signed_in.client_id, "rotated-in-entra")

    admin_client.post(CALLBACK, fields)

    pending = AuthorizationRequest.objects.get(state=fields["state"])
    verifier = __import__("json").loads(pending.flow)["code_verifier"]
    for secret in (
        signed_in.client_secret,
        signed_in.access_token,
        signed_in.refresh_token,
        fields["code"],
        verifier,
        "rotated-in-entra",
    ):
        assert secret not in caplog.text


def test_change_page_after_failure_shows_no_success(admin_client, signed_in):
    page = admin_client.get(admin_change_url(signed_in) + "?signin=" + "0" * 32)

    assert "Access token received" not in page.content.decode()
    assert change_form_data(signed_in)["name"] in page.content.decode()


@pytest.mark.parametrize(
    "issuer",
    ["https://evil.example/{tid}/v2.0", "{url}/00000000-0000-4000-8000-000000000000/v2.0", ""],
)
def test_an_answer_from_another_issuer_is_refused(admin_client, signed_in, fake_microsoft, issuer):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    fields["iss"] = issuer.format(tid=TENANT_ID, url=fake_microsoft.url)

    answer = admin_client.post(CALLBACK, fields)

    assertContains(answer, "another identity provider", status_code=400)
    assert_tokens_unchanged(signed_in)


def test_an_answer_naming_our_issuer_is_accepted(admin_client, signed_in, fake_microsoft):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    fields["iss"] = f"{fake_microsoft.url}/{TENANT_ID}/v2.0"

    assert admin_client.post(CALLBACK, fields).status_code == 303


def test_error_and_code_together_are_treated_as_an_error(admin_client, signed_in, fake_microsoft):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    fields["error"] = "access_denied"

    answer = admin_client.post(CALLBACK, fields)

    assert answer.status_code == 400
    assert_tokens_unchanged(signed_in)


def test_a_code_issued_to_another_client_is_refused(
    admin_client, signed_in, make_authentication, fake_microsoft, settings
):
    other_client = "0b6c7a52-3d5e-4c1f-9a8b-7e6d5c4b3a21"
    fake_microsoft.entra.register_app(
        other_client, "other-secret", settings.PUBLIC_BASE_URL + "/authentications/callback/"
    )
    other = make_authentication(client_id=other_client, client_secret="other-secret")
    mine = start(admin_client, signed_in)
    theirs = start(admin_client, other)
    _, my_fields = fake_microsoft.sign_in(mine["Location"])
    _, their_fields = fake_microsoft.sign_in(theirs["Location"])

    answer = admin_client.post(CALLBACK, {**my_fields, "code": their_fields["code"]})

    assert answer.status_code == 400
    assert_tokens_unchanged(signed_in)
    assert Authentication.objects.get(pk=other.pk).access_token == ""
    assert "AADSTS" in answer.content.decode()  # Entra refused the code for this client.


@pytest.mark.parametrize("stale", ["expired", "already_used", "unbound"])
def test_a_stale_admin_state_says_nothing_about_the_connection(
    admin_client, client, signed_in, fake_microsoft, stale
):
    response = start(admin_client, signed_in)
    _, fields = fake_microsoft.sign_in(response["Location"])
    if stale == "expired":
        AuthorizationRequest.objects.filter(state=fields["state"]).update(
            expires_at="2000-01-01T00:00:00Z"
        )
    elif stale == "already_used":
        assert admin_client.post(CALLBACK, fields).status_code == 303
        signed_in.refresh_from_db()

    # Anyone who saw the state (history, a proxy log) presents it without the binding cookie.
    answer = client.post(CALLBACK, fields)

    content = answer.content.decode()
    assert answer.status_code == 400
    assert signed_in.name not in content
    assert "/admin/" not in content
    assert_tokens_unchanged(signed_in)
