"""Public pages: no caching, no referrer, strict CSP, rate limits, scrubbed error reports."""

import secrets

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from authentications.reporting import SecretScrubbingFilter, SecretScrubbingReporter

pytestmark = pytest.mark.django_db

CALLBACK = "/authentications/callback/"


def test_public_pages_send_strict_headers(client, settings):
    for response in (
        client.post(CALLBACK, {"state": "x"}),
        client.get("/authentications/granted/"),
    ):
        assert "no-store" in response["Cache-Control"]
        assert response["Referrer-Policy"] == "no-referrer"
        csp = response["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        assert "script-src" not in csp  # No script at all.
        assert f"form-action 'self' {settings.BC_AUTHORITY_HOST}" in csp
        assert response["X-Frame-Options"] == "DENY"


def test_public_pages_load_nothing_from_third_parties(client):
    page = client.get("/authentications/granted/").content.decode()

    assert "http://" not in page and "https://" not in page
    assert "<script" not in page


def test_the_callback_is_rate_limited_per_client_ip(client, settings):
    settings.BC_PUBLIC_RATE_LIMIT = "3/minute"

    statuses = [client.post(CALLBACK, {"state": "x"}).status_code for _ in range(5)]
    other_ip = client.post(CALLBACK, {"state": "x"}, REMOTE_ADDR="10.0.0.9")

    assert statuses == [400, 400, 400, 429, 429]
    assert other_ip.status_code == 400


def test_rate_limit_uses_the_proxy_header_when_configured(client, settings):
    settings.BC_PUBLIC_RATE_LIMIT = "1/minute"
    settings.BC_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"

    first = client.post(CALLBACK, {"state": "x"}, HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.5")
    second = client.post(CALLBACK, {"state": "x"}, HTTP_X_FORWARDED_FOR="203.0.113.6")

    assert first.status_code == 400 and second.status_code == 400


def view_that_fails(request):
    params = request.POST.dict()  # noqa: F841 - a frame variable holding the code
    query = request.GET  # noqa: F841
    raise RuntimeError("boom")


def test_error_reports_scrub_codes_states_and_tokens(settings):
    settings.DEBUG = False
    values = {
        name: secrets.token_hex(8)
        for name in ("get_code", "get_state", "post_code", "post_state", "secret", "frame")
    }
    request = RequestFactory().post(
        f"/authentications/callback/?code={values['get_code']}&state={values['get_state']}",
        {
            "code": values["post_code"],
            "state": values["post_state"],
            "client_secret": values["secret"],
        },
    )
    try:
        view_that_fails(request)
    except RuntimeError as err:
        # Report the view's frames only: this test's own locals hold the values.
        reporter = SecretScrubbingReporter(request, type(err), err, err.__traceback__.tb_next)
        reporter.filter = SecretScrubbingFilter()
        text = reporter.get_traceback_text() + reporter.get_traceback_html()

    for name, value in values.items():
        assert value not in text, name
    assert issubclass(SecretScrubbingReporter, ExceptionReporter)


def test_settings_point_at_the_scrubbing_reporter(settings):
    assert settings.DEFAULT_EXCEPTION_REPORTER.endswith("SecretScrubbingReporter")
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER.endswith("SecretScrubbingFilter")
