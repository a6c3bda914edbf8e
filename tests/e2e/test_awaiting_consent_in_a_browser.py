"""Staff press "Refresh now" on a customer's connection whose tenant has not consented yet."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from authentications.connections.models import Authentication
from tests.e2e.pages import copy_link, wait

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_refresh_now_without_consent_points_to_the_admin_consent_url(
    new_browser, site, fabrikam, staff, screenshot
):
    browser = new_browser()
    _, link = copy_link(browser, site, staff, fabrikam, "bc-admin-consent-url")

    browser.find_element(By.XPATH, "//button[normalize-space()='Refresh now']").click()
    error = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .error")))

    assert "Admin consent has not been granted yet" in error.text
    assert "send the Admin consent URL" in error.text
    shown = browser.find_element(By.ID, "bc-admin-consent-url").get_attribute("value")
    # The same link (its payload); the timestamp signed into it is each page's own.
    assert shown.rsplit(":", 2)[0] == link.rsplit(":", 2)[0]
    screenshot(browser, "awaiting-consent")
    assert Authentication.objects.get(pk=fabrikam.pk).status == Authentication.Status.APP_MISSING
