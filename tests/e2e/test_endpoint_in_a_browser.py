"""Staff add an endpoint in the admin, choose its company, test it and download the CSV."""

import csv
import io
import os
import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from authentications.connections.models import Authentication
from authentications.endpoints.models import Endpoint
from tests.e2e.pages import log_in, wait
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID
from tests.helpers import plant_tokens

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Fetch a link with the browser's own session, as clicking it would, and hand back the text.
FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: "same-origin"})
  .then(r => r.text().then(t => done([r.status, r.headers.get("content-disposition"), t])))
  .catch(e => done([0, "", String(e)]));
"""


def test_staff_add_test_and_export_an_endpoint(browser, site, fake_microsoft, staff, screenshot):
    fake_microsoft.bc.company.generated = 120
    authentication = plant_tokens(
        fake_microsoft,
        Authentication.objects.create(
            name="BC production",
            client_id=CLIENT_ID,
            tenant_id=TENANT_ID,
            client_secret=CLIENT_SECRET,
            base_url=f"{fake_microsoft.url}/v2.0/{TENANT_ID}/Production/api/v2.0",
        ),
    )
    log_in(browser, site, staff)

    browser.get(f"{site}/admin/authentications/endpoint/add/")
    browser.find_element(By.NAME, "name").send_keys("Customers")
    Select(browser.find_element(By.NAME, "authentication")).select_by_visible_text(
        str(authentication)
    )
    browser.find_element(By.NAME, "path").send_keys("api/v2.0/companies({company})/customers")
    browser.find_element(By.NAME, "params-key-0").send_keys("$select")
    browser.find_element(By.NAME, "params-value-0").send_keys("number,displayName,city")
    browser.find_element(By.NAME, "_continue").click()
    wait(browser, ec.presence_of_element_located((By.LINK_TEXT, "Choose company")))
    endpoint = Endpoint.objects.get(name="Customers")

    browser.find_element(By.LINK_TEXT, "Choose company").click()
    browser.find_element(By.CSS_SELECTOR, f"button[value='{fake_microsoft.bc.company.id}']").click()
    wait(browser, ec.presence_of_element_located((By.LINK_TEXT, "Test endpoint")))
    assert (
        "CRONUS USA, Inc." in browser.find_element(By.CSS_SELECTOR, ".field-company_display").text
    )
    whole_url = browser.find_element(By.CSS_SELECTOR, ".field-full_url .readonly").text
    assert whole_url.endswith(
        f"companies({fake_microsoft.bc.company.id})/customers?$select=number,displayName,city"
    )

    screenshot(browser, "endpoint-change-page")
    browser.find_element(By.LINK_TEXT, "Test endpoint").click()
    table = wait(browser, ec.presence_of_element_located((By.ID, "bc-rows")))
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers == ["@odata.etag", "number", "displayName", "city"]
    assert len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == 50
    assert browser.find_element(By.ID, "bc-row-count").text == "120 rows; no more pages"
    screenshot(browser, "endpoint-test")

    href = browser.find_element(By.LINK_TEXT, "Download raw CSV (for programs)").get_attribute(
        "href"
    )
    status, disposition, text = browser.execute_async_script(FETCH, href)

    assert status == 200
    assert re.fullmatch(r'attachment; filename="customers-\d{8}T\d{6}Z-raw\.csv"', disposition)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["@odata.etag", "number", "displayName", "city", "_extra"]
    assert len(rows) == 121 and rows[120][1] == "C000120"
    endpoint.refresh_from_db()
    assert endpoint.last_test_status == 200 and endpoint.last_test_rows == 120
    assert authentication.access_token not in browser.page_source


def _saved_for_review(browser, name):
    """Save a 1366x768 PNG in $BCCONNECT_SCREENSHOTS (when set) as <name>-<suffix>.png."""
    folder = os.environ.get("BCCONNECT_SCREENSHOTS")
    if not folder:
        return None
    suffix = os.environ.get("BCCONNECT_SCREENSHOTS_SUFFIX", "after")
    path = Path(folder) / f"{name}-{suffix}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(path))
    return path


def test_a_single_record_is_shown_as_a_key_value_list(browser, site, fake_microsoft, staff):
    """A GET of one customer by key is one record: a list of its fields, not a wide table."""
    browser.set_window_size(1366, 768)
    bc = fake_microsoft.bc
    authentication = plant_tokens(
        fake_microsoft,
        Authentication.objects.create(
            name="BC production",
            client_id=CLIENT_ID,
            tenant_id=TENANT_ID,
            client_secret=CLIENT_SECRET,
            base_url=f"{fake_microsoft.url}/v2.0/{TENANT_ID}/Production/api/v2.0",
        ),
    )
    customer_id = bc.company.customer_id(0)
    endpoint = Endpoint.objects.create(
        name="One customer",
        authentication=authentication,
        path=f"api/v2.0/companies({{company}})/customers({customer_id})",
        company_id=bc.company.id,
        company_name=bc.company.name,
    )
    log_in(browser, site, staff)

    browser.get(f"{site}/admin/authentications/endpoint/{endpoint.pk}/test/")
    wait(browser, ec.presence_of_element_located((By.ID, "bc-row-count")))
    try:
        record = browser.find_elements(By.ID, "bc-record")
        assert record, "no key/value list of the record on the page"
        fields = dict(
            (row.find_element(By.TAG_NAME, "th").text, row.find_element(By.TAG_NAME, "td").text)
            for row in record[0].find_elements(By.CSS_SELECTOR, "tr")
        )
        assert fields["number"] == "C000001" and fields["city"] == "Atlanta"
        assert fields["displayName"] == "Customer 1"
        assert browser.find_element(By.ID, "bc-row-count").text == "1 record"
        assert not browser.find_elements(By.ID, "bc-rows")  # No one-row table.
        assert customer_id in browser.find_element(By.ID, "bc-raw").text
    finally:
        _saved_for_review(browser, "endpoint-single-record")
    assert authentication.access_token not in browser.page_source
