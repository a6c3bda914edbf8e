"""Production deployment: gunicorn with DEBUG off behind an HTTPS proxy, as README describes.

Each test starts real processes (manage.py, gunicorn) with production settings in their
environment, so what is checked is what an operator gets.
"""

import os
import re
import secrets
import subprocess

import pytest
import requests
from cryptography.fernet import Fernet

from tests.helpers import GUNICORN, ROOT, gunicorn_serving, run_manage_py

# They start gunicorn or the whole demo: kept out of the parallel run (`make test`).
pytestmark = pytest.mark.serial
PUBLIC_HOST = "bc.example.test"


@pytest.fixture(scope="module")
def production_env(tmp_path_factory):
    """The environment of a production host: DEBUG off, real secrets, HTTPS behind a proxy."""
    tmp = tmp_path_factory.mktemp("production")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_", "BC_")) and key != "REQUESTS_CA_BUNDLE"
    }
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS=Fernet.generate_key().decode(),
        PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}",
        SECURE_PROXY_SSL_HEADER="true",
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        STATIC_ROOT=str(tmp / "static"),
    )
    return env


def test_check_deploy_reports_nothing_with_production_settings(production_env):
    result = run_manage_py("check", "--deploy", "--fail-level", "WARNING", env=production_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("name", ["SECRET_KEY", "FERNET_KEYS"])
def test_a_missing_secret_stops_start_up_with_one_line(production_env, name):
    env = {**production_env, name: ""}  # Empty also hides any value in .env.

    result = run_manage_py("check", env=env)

    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"bcconnect: {name} is not set; it is required when DEBUG is off."
    )


def test_gunicorn_stops_with_the_same_line_when_a_secret_is_missing(production_env):
    env = {**production_env, "SECRET_KEY": ""}

    result = subprocess.run(
        [str(GUNICORN), "--bind", "127.0.0.1:0", "--no-control-socket"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "bcconnect: SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def gunicorn(production_env, tmp_path_factory):
    """gunicorn serving bcconnect.wsgi after collectstatic and migrate, like `make serve`."""
    for command in (["collectstatic", "--noinput"], ["migrate", "--noinput"], ["createcachetable"]):
        result = run_manage_py(*command, env=production_env, timeout=120)
        assert result.returncode == 0, result.stderr
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with gunicorn_serving(production_env, log_path, "--workers", "2") as url:
        yield url


def get(url, *, https=True, **kwargs):
    """A request as the TLS-terminating proxy forwards it."""
    headers = {"Host": PUBLIC_HOST}
    if https:
        headers["X-Forwarded-Proto"] = "https"
    return requests.get(url, headers=headers, allow_redirects=False, timeout=10, **kwargs)


def test_admin_login_page_and_its_css_load(gunicorn):
    page = get(f"{gunicorn}/admin/login/")

    assert page.status_code == 200
    stylesheets = re.findall(r'<link rel="stylesheet" href="(/static/[^"]+\.css)"', page.text)
    assert any(re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css", s) for s in stylesheets)
    for stylesheet in stylesheets:
        css = get(gunicorn + stylesheet)
        assert css.status_code == 200, stylesheet
        assert css.headers["Content-Type"].startswith("text/css")
        assert "max-age=315360000" in css.headers["Cache-Control"]  # Hashed: cached forever.


def test_admin_javascript_is_served(gunicorn):
    script = get(f"{gunicorn}/static/admin/js/core.js")

    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]


def test_plain_http_is_redirected_to_https(gunicorn):
    response = get(f"{gunicorn}/admin/login/", https=False)

    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{PUBLIC_HOST}/admin/login/"


def test_security_headers_and_cookies_over_https(gunicorn):
    response = get(f"{gunicorn}/admin/login/")

    assert response.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csrf_cookie = response.headers["Set-Cookie"]
    assert csrf_cookie.startswith("csrftoken=")
    assert "Secure" in csrf_cookie and "HttpOnly" in csrf_cookie


def test_session_cookie_is_secure_and_http_only_after_login(gunicorn, production_env):
    username, password = "ops", secrets.token_urlsafe(16)
    created = run_manage_py(
        "createsuperuser",
        "--noinput",
        "--username",
        username,
        "--email",
        "ops@example.test",
        env={**production_env, "DJANGO_SUPERUSER_PASSWORD": password},
    )
    assert created.returncode == 0, created.stderr
    login_url = f"{gunicorn}/admin/login/"
    page = get(login_url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    csrf_cookie = page.cookies["csrftoken"]  # Secure: requests will not resend it over http.

    answer = requests.post(
        login_url,
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        headers={
            "Host": PUBLIC_HOST,
            "X-Forwarded-Proto": "https",
            "Origin": f"https://{PUBLIC_HOST}",
            "Cookie": f"csrftoken={csrf_cookie}",
        },
        allow_redirects=False,
        timeout=10,
    )

    assert answer.status_code == 302, answer.text[:500]
    session_cookie = next(
        c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("sessionid=")
    )
    assert "; Secure" in session_cookie
    assert "; HttpOnly" in session_cookie
    assert "; SameSite=Lax" in session_cookie
