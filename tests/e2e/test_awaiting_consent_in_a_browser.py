"""Staff press "Refresh now" on a customer's connection whose tenant has not consented yet."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from authentications.models import Authentication
from tests.e2e.pages import copy_link, wait
from tests.fakes.admin_consent import FABRIKAM_TENANT_ID
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_refresh_now_without_consent_points_to_the_admin_consent_url(
    new_browser, site, fake_microsoft, staff, screenshot
):
    customer = Authentication.objects.create(
        name="Fabrikam",
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        client_id=CLIENT_ID,
        tenant_id=FABRIKAM_TENANT_ID,
        client_secret=CLIENT_SECRET,
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
    browser = new_browser()
    _, link = copy_link(browser, site, staff, customer, "bc-admin-consent-url")

    browser.find_element(By.XPATH, "//button[normalize-space()='Refresh now']").click()
    error = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .error")))

    assert "Admin consent has not been granted yet" in error.text
    assert "send the Admin consent URL" in error.text
    assert browser.find_element(By.ID, "bc-admin-consent-url").get_attribute("value") == link
    screenshot(browser, "awaiting-consent")
    assert Authentication.objects.get(pk=customer.pk).status == Authentication.Status.APP_MISSING
