"""An Entra administrator of a customer's tenant onboards it through the Admin consent URL."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from authentications.connections.models import Authentication
from tests.e2e.pages import copy_link, wait
from tests.fakes.admin_consent import FABRIKAM_ADMIN, FABRIKAM_TENANT_ID
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_customer_administrator_grants_admin_consent_through_the_link(
    new_browser, site, fake_microsoft, staff, screenshot
):
    customer = Authentication.objects.create(
        name="Fabrikam",
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        client_id=CLIENT_ID,
        tenant_id="",  # Unknown yet: the consent is asked of "organizations".
        client_secret=CLIENT_SECRET,
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
    staff_browser = new_browser()
    change_page, link = copy_link(staff_browser, site, staff, customer, "bc-admin-consent-url")
    assert link.startswith(f"{site}/authentications/authorize/")

    administrator = new_browser()  # Another profile: no Django session, no cookies at all.
    administrator.get(link)
    assert "admin consent" in administrator.find_element(By.TAG_NAME, "h1").text
    assert "API.ReadWrite.All" in administrator.page_source
    screenshot(administrator, "admin-consent-landing")
    administrator.find_element(By.CSS_SELECTOR, "form.start button").click()
    wait(administrator, ec.title_is("Permissions requested"))
    assert "/organizations/v2.0/adminconsent" in administrator.current_url
    username = administrator.find_element(By.ID, "username")
    username.clear()
    username.send_keys(FABRIKAM_ADMIN)
    administrator.find_element(By.ID, "accept").click()

    wait(administrator, ec.title_contains("Admin consent granted"))
    heading = administrator.find_element(By.TAG_NAME, "h1").text
    assert heading == "Admin consent granted, access token received"
    assert "Microsoft Entra Applications" in administrator.page_source
    screenshot(administrator, "admin-consent-granted")
    customer.refresh_from_db()
    assert customer.tenant_id == FABRIKAM_TENANT_ID
    assert customer.status == Authentication.Status.CONNECTED

    staff_browser.get(change_page)
    staff_browser.find_element(By.XPATH, "//button[text()='Test connection']").click()
    error = wait(
        staff_browser, ec.presence_of_element_located((By.CSS_SELECTOR, ".messagelist .error"))
    )
    assert "Microsoft Entra Applications card" in error.text
    screenshot(staff_browser, "bc-card-missing")
