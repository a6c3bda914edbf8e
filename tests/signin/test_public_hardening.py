"""Public pages: no caching, no referrer, strict CSP, rate limits, scrubbed error reports."""

import logging
import secrets
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.http import HttpRequest
from django.test import Client, RequestFactory
from django.urls import include, path, resolve
from django.views.debug import ExceptionReporter

from authentications.connections import link_tokens
from authentications.kit.reporting import SecretScrubbingFilter, SecretScrubbingReporter

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


# --- what reaches logs and the ADMINS' error emails -----------------------------------------


class Collected(logging.Handler):
    """Every record a logger emits, formatted, plus what its `request` would reveal."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))
        request = getattr(record, "request", None)
        if isinstance(request, HttpRequest):
            self.lines += [
                request.path,
                request.path_info,
                request.get_full_path(),
                repr(request.META),
                repr(request.COOKIES),
            ]


@pytest.fixture
def collected():
    """A handler on every logger that sees requests (django.server does not propagate)."""
    handler = Collected()
    names = ("", "django.server")
    for name in names:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in names:
        logging.getLogger(name).removeHandler(handler)


def everything_reported(collected, caplog):
    emails = [
        "\n".join([m.subject, m.body, *(body for body, _ in m.alternatives)]) for m in mail.outbox
    ]
    return "\n".join([*collected.lines, caplog.text, *emails])


def landing_path(authentication):
    return urlsplit(link_tokens.authorization_url(authentication).url).path


def token_of(path):
    return path.rstrip("/").rsplit("/", 1)[1]


def test_the_link_token_reaches_no_log_line_and_no_admin_email(
    client, make_authentication, fake_microsoft, settings, caplog, collected
):
    settings.ADMINS = [("Ops", "ops@example.com")]
    caplog.set_level(logging.DEBUG)
    unknown_tenant = make_authentication(tenant_id="nosuchtenant.onmicrosoft.com")
    authentication = make_authentication()
    path, bad_tenant_path = landing_path(authentication), landing_path(unknown_tenant)
    tampered = path[:-5] + "xxxx/"

    statuses = [
        client.post(bad_tenant_path).status_code,  # Microsoft refuses: 400.
        client.get(tampered).status_code,  # 404.
        Client(enforce_csrf_checks=True).post(path).status_code,  # CSRF refusal: 403.
    ]
    settings.BC_AUTHORITY_HOST = "https://127.0.0.1:9"  # Microsoft unreachable: 503 ...
    statuses.append(client.post(path).status_code)  # ... which emails ADMINS.
    settings.BC_PUBLIC_RATE_LIMIT = "0/minute"
    statuses.append(client.post(path).status_code)  # 429.

    assert statuses == [400, 404, 403, 503, 429]
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    reported = everything_reported(collected, caplog)
    assert "/authentications/authorize/" in reported  # The paths are logged, without tokens.
    for secret in (token_of(path), token_of(bad_tenant_path), token_of(tampered)):
        assert secret not in reported


def test_the_development_server_log_hides_link_tokens_and_oauth_values(
    make_authentication, collected
):
    path = landing_path(make_authentication())
    server = logging.getLogger("django.server")

    # What runserver's request handler logs for each request it serves.
    server.warning('"%s" %s %s', f"POST {path} HTTP/1.1", "503", "2150")
    server.info(
        '"%s" %s %s', "GET /authentications/callback/?code=c0de&state=st8 HTTP/1.1", "400", "9"
    )

    text = "\n".join(collected.lines)
    assert "POST /authentications/authorize/" in text and "GET /authentications/callback/" in text
    for secret in (token_of(path), "c0de", "st8"):
        assert secret not in text


def failing_view(request):
    raise RuntimeError("boom")


urlpatterns = [
    path("authentications/callback/boom/", failing_view),
    path("", include("bcconnect.urls")),
]


@pytest.mark.urls(__name__)
def test_the_500_email_shows_no_cookie_of_ours(
    admin_user, make_authentication, fake_microsoft, settings, caplog, collected
):
    settings.ADMINS = [("Ops", "ops@example.com")]
    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    path = landing_path(make_authentication())
    browser.get(path)  # The landing page sets the CSRF cookie ...
    assert browser.post(path).status_code == 302  # ... and its button a binding cookie.
    cookies = {name: morsel.value for name, morsel in browser.cookies.items()}
    assert {"sessionid", "csrftoken"} <= set(cookies)
    assert any(name.startswith("bc_signin_") for name in cookies)

    assert browser.get("/authentications/callback/boom/").status_code == 500

    (email,) = mail.outbox
    assert "RuntimeError" in email.body and "COOKIES" in email.body
    reported = everything_reported(collected, caplog)
    for name, value in cookies.items():
        assert value not in reported, name


def test_error_report_html_shows_no_link_token_and_no_cookie(settings, make_authentication):
    settings.DEBUG = False
    path = landing_path(make_authentication())
    factory = RequestFactory()
    request = factory.post(path, HTTP_COOKIE="bc_signin_0123456789abcdef=binding-VALUE-123")
    request.resolver_match = resolve(path)
    try:
        view_that_fails(request)
    except RuntimeError as err:
        reporter = SecretScrubbingReporter(request, type(err), err, err.__traceback__.tb_next)
        text = reporter.get_traceback_text() + reporter.get_traceback_html()

    assert "/authentications/authorize/" in text
    assert token_of(path) not in text
    assert "binding-VALUE-123" not in text


def test_too_many_query_fields_are_a_400_even_when_admins_are_mailed(client, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    flood = "&".join(f"field{number}=x" for number in range(1100))

    response = client.get(f"{CALLBACK}?code=c0de&{flood}")

    assert response.status_code == 400
    (email,) = mail.outbox  # Django reports the suspicious request; the report works.
    assert "TooManyFieldsSent" in email.subject + email.body


def test_with_the_cache_unreachable_a_public_page_is_a_503_page(client, unreachable_cache):
    """The rate limit cannot count, so the page is not served (not a 500)."""
    response = client.post(CALLBACK, {"state": "x"})

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "Please try again in a minute" in response.content.decode()
    assert "default-src 'none'" in response["Content-Security-Policy"]
