"""A BC user who has no Django account grants access through the emailed Authorization URL."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from authentications.connections.models import Authentication
from tests.e2e.pages import copy_link, wait
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_bc_user_without_a_session_grants_access_through_the_authorization_url(
    new_browser, site, fake_microsoft, staff, screenshot
):
    authentication = Authentication.objects.create(
        name="BC production",
        client_id=CLIENT_ID,
        tenant_id=TENANT_ID,
        client_secret=CLIENT_SECRET,
        base_url=f"{fake_microsoft.url}/v2.0/{TENANT_ID}/Production/api/v2.0",
    )
    staff_browser = new_browser()
    change_page, link = copy_link(
        staff_browser, site, staff, authentication, "bc-authorization-url"
    )
    assert link.startswith(f"{site}/authentications/authorize/")

    bc_user = new_browser()  # Another profile: no Django session, no cookies at all.
    bc_user.get(link)
    assert "Grant" in bc_user.find_element(By.TAG_NAME, "h1").text
    assert "sessionid" not in {cookie["name"] for cookie in bc_user.get_cookies()}
    bc_user.find_element(By.CSS_SELECTOR, "form.start button").click()
    wait(bc_user, ec.title_is("Sign in to your account"))
    username = bc_user.find_element(By.ID, "username")
    username.clear()
    username.send_keys("john@contoso.com")
    bc_user.find_element(By.ID, "accept").click()

    wait(bc_user, ec.title_contains("Access granted"))
    assert "you can close this window" in bc_user.find_element(By.TAG_NAME, "h1").text
    screenshot(bc_user, "access-granted")
    staff_browser.get(change_page)
    granted_by = staff_browser.find_element(By.CSS_SELECTOR, ".field-granted_by .readonly").text
    assert granted_by.startswith("John Smith (john@contoso.com) via Authorization URL")
    authentication.refresh_from_db()
    assert authentication.status == Authentication.Status.CONNECTED
    assert authentication.masked_access_token in staff_browser.page_source
    screenshot(staff_browser, "staff-sees-who-granted")
