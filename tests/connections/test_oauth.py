"""How bcconnect uses MSAL: shared discovery, no kept tokens, timeouts, error shapes."""

import logging

import pytest
import responses

from authentications.connections import oauth
from authentications.connections.oauth import ConsentError, TokenRefreshError

pytestmark = pytest.mark.django_db


def test_discovery_is_fetched_once_per_process(make_authentication, fake_microsoft):
    authentication = make_authentication()

    for _ in range(3):
        oauth.start_auth_code_flow(authentication)

    assert fake_microsoft.entra.discovery_requests == 1


def test_msal_keeps_no_token_between_client_credentials_requests(
    make_authentication, fake_microsoft, monkeypatch
):
    authentication = make_authentication()
    caches = []
    real_application = oauth._application

    def spy(authentication, error_class, **options):
        app = real_application(authentication, error_class, **options)
        caches.append(app.token_cache)
        return app

    monkeypatch.setattr(oauth, "_application", spy)
    tokens = oauth.acquire_for_client(authentication)
    again = oauth.acquire_for_client(authentication)

    assert tokens.access_token != again.access_token  # Nothing came from a cache.
    assert caches[0] is not caches[1]
    assert fake_microsoft.entra.count("client_credentials") == 2


def test_instance_discovery_is_off_for_a_non_microsoft_authority(settings):
    settings.BC_AUTHORITY_HOST = "https://login.example.test"
    assert oauth._is_microsoft_authority() is False
    settings.BC_AUTHORITY_HOST = "https://login.microsoftonline.com"
    assert oauth._is_microsoft_authority() is True


def test_every_call_to_microsoft_has_a_timeout(settings):
    settings.BC_HTTP_TIMEOUT = (3.0, 7.0)
    with responses.RequestsMock() as mocked:
        mocked.get("https://login.example.test/x", json={})
        oauth.http_session().get("https://login.example.test/x")
        assert mocked.calls[0].request.req_kwargs["timeout"] == (3.0, 7.0)


def test_the_session_keeps_requests_ca_bundle_handling(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    settings = oauth.http_session().merge_environment_settings(
        "https://login.example.test", {}, None, True, None
    )

    assert settings["verify"] == str(bundle)


def test_msal_logger_stays_at_info():
    logger = logging.getLogger("msal")
    assert logger.getEffectiveLevel() == logging.INFO


def test_error_shape_from_the_token_endpoint_is_understood(make_authentication, fake_microsoft):
    authentication = make_authentication(client_secret="s3cr3t-typo-value")

    with pytest.raises(TokenRefreshError) as caught:
        oauth.acquire_for_client(authentication)

    assert caught.value.code == "invalid_client"
    assert caught.value.aadsts == 7000215
    assert caught.value.secret_invalid
    assert not caught.value.transient
    assert "s3cr3t-typo-value" not in str(caught.value)


def test_refresh_errors_are_classified(make_authentication, fake_microsoft):
    authentication = make_authentication()

    with pytest.raises(TokenRefreshError) as caught:
        oauth.redeem_refresh_token(authentication, "fake-rt-never-issued")

    assert caught.value.code == "invalid_grant"
    assert caught.value.aadsts == 70008
    assert caught.value.needs_sign_in


def test_an_unreachable_authority_is_transient(make_authentication, settings):
    authentication = make_authentication()
    settings.BC_AUTHORITY_HOST = "https://127.0.0.1:9"  # Nothing listens on the discard port.

    with pytest.raises(ConsentError) as caught:
        oauth.start_auth_code_flow(authentication)

    assert caught.value.transient


def test_a_malformed_tenant_is_a_clear_error(make_authentication):
    authentication = make_authentication()
    authentication.tenant_id = "#"

    with pytest.raises(ConsentError) as caught:
        oauth.start_auth_code_flow(authentication)

    assert caught.value.code == "invalid_tenant"


def test_explain_reads_the_aadsts_code_from_the_description():
    err = oauth.explain(
        {"error": "invalid_request", "error_description": "AADSTS50011: The redirect URI..."},
        ConsentError,
    )
    assert err.aadsts == 50011
    assert "redirect URI is not registered" in err.message


def test_token_results_do_not_show_tokens_in_repr(make_authentication, fake_microsoft):
    tokens = oauth.acquire_for_client(make_authentication())
    assert tokens.access_token not in repr(tokens)


@pytest.mark.parametrize("description", ["\r", "   ", "\n\n", None, ""])
def test_explain_survives_a_blank_description(description):
    # Found by hypothesis: error_description="\r" once crashed the callback with a 500.
    err = oauth.explain({"error": "0", "error_description": description}, ConsentError)

    assert err.code == "0"
    assert err.message == "Microsoft refused the request."


def test_a_token_endpoint_echoing_the_refresh_request_puts_no_secret_in_the_log(
    make_authentication, fake_microsoft, sign_in_at_microsoft, caplog
):
    for name in ("msal", "urllib3", "requests", None):
        caplog.set_level(logging.DEBUG, logger=name)
    authentication = sign_in_at_microsoft(make_authentication())
    fake_microsoft.entra.fail_next_token_request(("echo",))

    with pytest.raises(TokenRefreshError) as caught:
        oauth.redeem_refresh_token(authentication, authentication.refresh_token)

    assert caught.value.code == "bad_response"
    assert "Token response is not in json format" in caplog.text  # MSAL logged the page ...
    assert "grant_type=refresh_token" in caplog.text  # ... with the request body in it.
    for secret in (authentication.client_secret, authentication.refresh_token):
        assert secret not in caplog.text


def test_a_token_endpoint_echoing_the_code_request_puts_no_secret_in_the_log(
    make_authentication, fake_microsoft, caplog
):
    for name in ("msal", "urllib3", "requests", None):
        caplog.set_level(logging.DEBUG, logger=name)
    authentication = make_authentication()
    flow = oauth.start_auth_code_flow(authentication)
    _, answer = fake_microsoft.sign_in(flow["auth_uri"])
    fake_microsoft.entra.fail_next_token_request(("echo",))

    with pytest.raises(ConsentError):
        oauth.finish_auth_code_flow(authentication, flow, answer)

    assert "grant_type=authorization_code" in caplog.text
    for secret in (authentication.client_secret, answer["code"], flow["code_verifier"]):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    "text",
    [
        "grant_type=refresh_token&refresh_token=SECRET&client_secret=SECRET&scope=x",
        "code=SECRET&code_verifier=SECRET&client_assertion=SECRET",
        '{"access_token": "SECRET", "refresh_token":"SECRET", "token_type": "Bearer"}',
        "{'access_token': 'SECRET', 'code': 'SECRET'}",
        "&quot;refresh_token&quot;: &quot;SECRET&quot;, code=SECRET&amp;state=kept",
    ],
)
def test_token_fields_are_redacted_in_every_shape_a_log_may_show(text):
    redacted = oauth.redact_token_fields(text)

    assert "SECRET" not in redacted
    assert "refresh_token" in redacted or "access_token" in redacted or "code" in redacted
