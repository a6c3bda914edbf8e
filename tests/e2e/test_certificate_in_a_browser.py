"""Staff move a connection to a certificate and roll it over, in a real browser: generate,
download, upload at the (fake) Entra's Certificates & secrets page, save, switch."""

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from authentications.certificates.models import Certificate
from authentications.connections.models import Authentication
from tests.e2e.pages import log_in, wait
from tests.fakes.portal import PATH as PORTAL_PATH

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def message_says(browser, text):
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist"), text))


def download_pem(browser, site):
    """What "Download certificate (.pem)" saves, fetched with the browser's session."""
    link = browser.find_elements(By.PARTIAL_LINK_TEXT, ".pem")[-1].get_attribute("href")
    cookies = {cookie["name"]: cookie["value"] for cookie in browser.get_cookies()}
    answer = requests.get(link, cookies=cookies, timeout=10)
    assert answer.status_code == 200 and "attachment" in answer.headers["Content-Disposition"]
    return answer.text


def upload_at_entra(browser, fake, pem):
    browser.get(f"{fake.url}{PORTAL_PATH}")
    browser.find_element(By.ID, "certificate").send_keys(pem)
    browser.find_element(By.ID, "upload").click()
    wait(browser, ec.text_to_be_present_in_element((By.ID, "message"), "uploaded"))


def test_staff_generate_upload_use_and_roll_over_a_certificate(
    browser, site, fake_microsoft, staff, make_authentication, screenshot
):
    authentication = make_authentication(
        name="BC service", kind=Authentication.Kind.SERVICE_TO_SERVICE, client_secret=""
    )
    change = f"{site}/admin/authentications/authentication/{authentication.pk}/change/"
    log_in(browser, site, staff)
    browser.get(change)

    browser.find_element(By.ID, "bc-generate-certificate").click()
    message_says(browser, "added as the current one")
    browser.get(change)
    pem = download_pem(browser, site)
    upload_at_entra(browser, fake_microsoft, pem)
    browser.get(change)
    browser.find_element(By.CSS_SELECTOR, "input[name=credential_type][value=certificate]").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=_continue]").click()
    message_says(browser, "Access token received")

    browser.find_element(By.ID, "bc-generate-certificate").click()
    message_says(browser, "added as the next one")
    browser.find_element(By.ID, "bc-switch-certificate").click()
    message_says(browser, "Entra does not accept the next certificate yet")
    browser.get(change)
    upload_at_entra(browser, fake_microsoft, download_pem(browser, site))
    browser.get(change)
    browser.find_element(By.ID, "bc-switch-certificate").click()
    message_says(browser, "Entra accepted certificate")

    current = Certificate.objects.current_for(authentication)
    assert current.thumbprint_sha1 in browser.page_source
    assert "PRIVATE KEY" not in browser.page_source
    assert Authentication.objects.get(pk=authentication.pk).status == "connected"
    screenshot(browser, "certificate-switched")
