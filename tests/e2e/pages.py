"""What a person does in the admin, as browser steps shared by the scenarios."""

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

PASSWORD = "correct horse battery staple"


def wait(driver, condition, timeout=20):
    return WebDriverWait(driver, timeout).until(condition)


def log_in(driver, site, user):
    driver.get(f"{site}/admin/login/")
    driver.find_element(By.NAME, "username").send_keys(user.username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(driver, ec.presence_of_element_located((By.ID, "user-tools")))


def copy_link(driver, site, user, authentication, field_id):
    """Staff log in and copy a link from the change page; returns (change page URL, link)."""
    change_page = f"{site}/admin/authentications/authentication/{authentication.pk}/change/"
    log_in(driver, site, user)
    driver.get(change_page)
    return change_page, driver.find_element(By.ID, field_id).get_attribute("value")
