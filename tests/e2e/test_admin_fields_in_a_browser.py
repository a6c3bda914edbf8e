"""In a browser, the authentication form shows only the fields of the type and credential
chosen: no Expected user for service-to-service, no client secret (or its expiry, or the
"New client secret" step) while Certificate is chosen."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.e2e.pages import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def shown(browser, selector):
    return [element.is_displayed() for element in browser.find_elements(By.CSS_SELECTOR, selector)]


def test_fields_follow_the_type_and_credential_chosen(browser, site, staff):
    log_in(browser, site, staff)
    browser.get(f"{site}/admin/authentications/authentication/add/")
    assert shown(browser, ".field-expected_user") == [True]
    assert shown(browser, ".field-client_secret") == [True]

    Select(browser.find_element(By.ID, "id_kind")).select_by_value("service_to_service")
    assert shown(browser, ".field-expected_user") == [False]

    browser.find_element(By.CSS_SELECTOR, "input[name=credential_type][value=certificate]").click()
    assert shown(browser, ".field-client_secret") == [False]
    assert shown(browser, ".field-client_secret_expires_on") == [False]
    assert shown(browser, ".bc-when-secret") == [False]
    assert shown(browser, ".bc-when-certificate") == [True]

    browser.find_element(By.CSS_SELECTOR, "input[name=credential_type][value=secret]").click()
    Select(browser.find_element(By.ID, "id_kind")).select_by_value("user_impersonation")
    assert shown(browser, ".field-expected_user") == [True]
    assert shown(browser, ".field-client_secret") == [True]
    assert shown(browser, ".bc-when-certificate") == [False]
