"""Staff connect Business Central in a real browser, through the fake Microsoft's pages."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import formats, timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from authentications.connections.models import Authentication
from tests.e2e.pages import log_in, wait
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def add_authentication_and_save(driver, site, fake):
    driver.get(f"{site}/admin/authentications/authentication/add/")
    fields = {
        "name": "BC production",
        "client_id": CLIENT_ID,
        "tenant_id": TENANT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": f"{fake.url}/v2.0/{TENANT_ID}/Production/api/v2.0",
    }
    for name, value in fields.items():
        driver.find_element(By.NAME, name).send_keys(value)
    Select(driver.find_element(By.NAME, "kind")).select_by_value("user_impersonation")
    driver.find_element(By.CSS_SELECTOR, "input[name=_continue]").click()
    wait(driver, ec.title_is("Sign in to your account"))
    assert driver.current_url.startswith(f"{fake.url}/{TENANT_ID}/oauth2/v2.0/authorize?")


def test_staff_add_an_authentication_save_accept_and_see_access_token_received(
    browser, site, fake_microsoft, staff, screenshot
):
    log_in(browser, site, staff)
    add_authentication_and_save(browser, site, fake_microsoft)

    browser.find_element(By.ID, "accept").click()

    wait(
        browser,
        ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, ".messagelist"), "Access token received"
        ),
    )
    authentication = Authentication.objects.get(name="BC production")
    assert browser.current_url.startswith(
        f"{site}/admin/authentications/authentication/{authentication.pk}/change/"
    )
    token_field = browser.find_element(By.CSS_SELECTOR, ".field-access_token_display .readonly")
    assert token_field.text == authentication.masked_access_token
    assert authentication.access_token not in browser.page_source
    assert authentication.refresh_token not in browser.page_source
    assert "Jane Doe (jane@contoso.com) via Admin" in browser.page_source
    assert authentication.status == Authentication.Status.CONNECTED
    screenshot(browser, "access-token-received")


def test_refresh_now_updates_the_expiry(browser, site, fake_microsoft, staff, screenshot):
    fake_microsoft.entra.access_token_lifetime = 600
    log_in(browser, site, staff)
    add_authentication_and_save(browser, site, fake_microsoft)
    browser.find_element(By.ID, "accept").click()
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist"), "Access"))
    before = browser.find_element(By.CSS_SELECTOR, ".field-token_expiry .readonly").text
    masked_before = browser.find_element(By.CSS_SELECTOR, ".field-access_token_display .readonly")
    masked_before = masked_before.text
    # A while later (Refresh now does nothing within seconds of a refresh), and Entra now
    # hands out tokens for an hour.
    Authentication.objects.update(last_refreshed_at=F("last_refreshed_at") - timedelta(minutes=1))
    fake_microsoft.entra.access_token_lifetime = 3600

    browser.find_element(By.XPATH, "//button[normalize-space()='Refresh now']").click()

    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist"), "Refreshed"))
    authentication = Authentication.objects.get(name="BC production")
    after = browser.find_element(By.CSS_SELECTOR, ".field-token_expiry .readonly").text
    expected = formats.date_format(  # As the admin writes dates.
        timezone.localtime(authentication.access_token_expires_at), "DATETIME_FORMAT"
    )
    assert after == expected != before
    assert (
        f"Refreshed, valid until {expected}"
        in browser.find_element(By.CLASS_NAME, "messagelist").text
    )
    masked_after = browser.find_element(By.CSS_SELECTOR, ".field-access_token_display .readonly")
    assert masked_after.text == authentication.masked_access_token != masked_before
    assert fake_microsoft.entra.count("refresh_token") == 1
    screenshot(browser, "refreshed")


def test_cancel_at_microsoft_shows_the_clear_error_page(
    browser, site, fake_microsoft, staff, screenshot
):
    log_in(browser, site, staff)
    add_authentication_and_save(browser, site, fake_microsoft)

    browser.find_element(By.ID, "cancel").click()

    wait(browser, ec.title_contains("Sign-in did not complete"))
    error = browser.find_element(By.CSS_SELECTOR, "p.error").text
    assert "The sign-in was cancelled or access was refused at Microsoft." in error
    assert "AADSTS65004" in browser.find_element(By.CSS_SELECTOR, "p.code").text
    back = browser.find_element(By.LINK_TEXT, "Back to BC production")
    authentication = Authentication.objects.get(name="BC production")
    assert authentication.access_token == ""
    assert authentication.status == Authentication.Status.NOT_CONNECTED
    screenshot(browser, "cancelled-error-page")
    back.click()
    wait(browser, ec.presence_of_element_located((By.ID, "authentication_form")))


def test_test_connection_lists_the_fake_companies(browser, site, fake_microsoft, staff, screenshot):
    log_in(browser, site, staff)
    add_authentication_and_save(browser, site, fake_microsoft)
    browser.find_element(By.ID, "accept").click()
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist"), "Access"))

    browser.find_element(By.XPATH, "//button[normalize-space()='Test connection']").click()

    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist"), "Connected"))
    message = browser.find_element(By.CSS_SELECTOR, ".messagelist .success").text
    assert message == (
        "“BC production”: Connected: 3 companies (CRONUS USA, Inc., CRONUS Canada, Inc., "
        "My Company)"
    )
    screenshot(browser, "test-connection")
