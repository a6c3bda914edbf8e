"""Real-browser fixtures: Debian's Chromium, driven by Selenium, against the live server.

Selenium is given both the browser and the driver path, so Selenium Manager never runs and
nothing is downloaded. Without Chromium the tests are skipped with a reason, unless
BCCONNECT_REQUIRE_E2E=1 (set by .ci/run), where a missing browser is a failure.
"""

import os
import re
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from authentications.connections import oauth
from tests.e2e.pages import PASSWORD
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--ignore-certificate-errors",  # The fake Microsoft's own certificate authority.
    "--window-size=1280,1000",
]
_screenshots = []


def browser_missing():
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    return ", ".join(missing)


def pytest_collection_modifyitems(config, items):
    missing = browser_missing()
    if not missing or os.environ.get("BCCONNECT_REQUIRE_E2E") == "1":
        return
    reason = (
        f"browser tests skipped: {missing} not found (apt-get install chromium chromium-driver)"
    )
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter):
    if _screenshots:
        terminalreporter.section("browser screenshots")
        for path in _screenshots:
            terminalreporter.write_line(str(path))


@pytest.fixture
def new_browser():
    """Factory for headless Chromium windows, each with its own profile (no shared cookies)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = browser_missing()
    if missing:
        pytest.fail(f"browser tests required but {missing} not found")
    drivers, profiles = [], []

    def start():
        profile = tempfile.TemporaryDirectory(prefix="bcconnect-chromium-")
        profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile.name}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()
    for profile in profiles:
        profile.cleanup()


@pytest.fixture
def browser(new_browser):
    return new_browser()


@pytest.fixture
def site(live_server, settings, fake_microsoft):
    """The live site, its PUBLIC_BASE_URL its own address, registered at the fake Microsoft."""
    settings.PUBLIC_BASE_URL = live_server.url
    fake_microsoft.entra.register_app(CLIENT_ID, CLIENT_SECRET, oauth.redirect_uri())
    return live_server.url


@pytest.fixture
def screenshot(request):
    """Save the browser's page as artifacts/screenshots/<test>-<name>.png; list it at the end."""

    def save(driver, name):
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        test = re.sub(r"[^\w.-]+", "_", request.node.name)
        path = SCREENSHOT_DIR / f"{test}-{name}.png"
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(max(height, 600), 4000))  # The whole page.
        driver.save_screenshot(str(path))
        _screenshots.append(path)
        return path

    return save


@pytest.fixture
def staff(transactional_db):
    return get_user_model().objects.create_superuser("staff", "staff@example.com", PASSWORD)
