"""A new user on a 1366x768 laptop opens every list of the admin: nothing scrolls sideways.

Each list gets a few realistic rows (long names, a long error) and must fit the window with
the columns people act on in view. With BCCONNECT_SCREENSHOTS set to a folder, each list is
saved there as <list>-list-<suffix>.png (suffix from BCCONNECT_SCREENSHOTS_SUFFIX, "after"
by default), which is how docs/screenshots/ was made.
"""

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from selenium.webdriver.common.by import By

from authentications.connections.models import Authentication
from authentications.endpoints.models import Endpoint
from authentications.webhooks.models import ChangeNotification, Subscription
from tests.e2e.pages import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1366, 768
COMPANY = "CRONUS International Ltd. (Deutschland Vertrieb und Service)"
LAST_ERROR = (
    "ConnectionError: HTTPSConnectionPool(host='warehouse.internal.contoso-pharma.example', "
    "port=443): Max retries exceeded with url: /api/v1/stock-movements/import?batch=2026-11-30 "
    "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] "
    "Connection refused'))"
)

# Each list of the app: its URL and the column headers that must be in view.
LISTS = {
    "authentications": (
        "authentication",
        ["Name", "Status", "Token expires", "Credential expires"],
    ),
    "endpoints": ("endpoint", ["Name", "Method", "Authentication", "Last test"]),
    "subscriptions": (
        "subscription",
        ["Subscription", "Status", "Expires at", "Consecutive failures"],
    ),
    "notifications": ("changenotification", ["Change", "Status", "Attempts", "Last error"]),
    "tasks": ("django_tasks_database/dbtaskresult", ["Task", "Status", "Finished", "Failed with"]),
}

# The page's width, the results table's box (Django lets it scroll inside `.results`) and
# the right edge of each column header, as the browser lays them out.
MEASURE = """
const headers = {};
for (const th of document.querySelectorAll("#result_list thead th")) {
  headers[th.textContent.trim()] = th.getBoundingClientRect().right;
}
const results = document.querySelector("#changelist .results");
return {
  innerWidth: window.innerWidth,
  scrollWidth: document.documentElement.scrollWidth,
  resultsRight: results.getBoundingClientRect().right,
  resultsScrollWidth: results.scrollWidth,
  resultsClientWidth: results.clientWidth,
  tableRight: document.querySelector("#result_list").getBoundingClientRect().right,
  headers: headers,
};
"""


@pytest.fixture
def realistic_rows(db):
    """A few rows of every model, with the long values real installations have."""
    now = timezone.now()
    authentications = [
        Authentication.objects.create(
            name=f"Contoso Pharmaceuticals Europe – BC {environment} (user impersonation)",
            client_id=str(uuid.uuid4()),
            tenant_id=str(uuid.uuid4()),
            client_secret="not-a-real-secret",
            client_secret_expires_on=(now + timedelta(days=200)).date(),
            base_url="https://api.businesscentral.dynamics.com/v2.0/"
            f"{uuid.uuid4()}/{environment}/api/v2.0",
            status=Authentication.Status.FAILING,
            consecutive_failures=3,
            access_token="eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.not-a-real-token",
            access_token_expires_at=now + timedelta(minutes=40),
            granted_by_name="Jane Doe-Montgomery",
            granted_by_upn="jane.doe-montgomery@contoso-pharma.example",
            granted_via=Authentication.GrantedVia.LINK,
            granted_at=now - timedelta(days=12),
            last_refreshed_at=now - timedelta(minutes=20),
            last_error=LAST_ERROR,
        )
        for environment in ("Production", "Sandbox-Germany-Test")
    ]
    for name in ("Open sales orders with shipment dates for the warehouse", "Vendors"):
        Endpoint.objects.create(
            name=name,
            authentication=authentications[0],
            path="api/v2.0/companies({company})/salesOrders",
            company_id=str(uuid.uuid4()),
            company_name=COMPANY,
            last_tested_at=now,
            last_test_status=200,
            last_test_ms=734,
            last_test_rows=1250,
        )
    subscription = Subscription.objects.create(
        authentication=authentications[0],
        company_id=str(uuid.uuid4()),
        company_name=COMPANY,
        entity="salesOrders",
        subscription_id=uuid.uuid4().hex,
        status=Subscription.Status.ACTIVE,
        expires_at=now + timedelta(days=3),
        last_notification_at=now,
        notifications_received=12840,
    )
    for _ in range(3):
        record_id = str(uuid.uuid4())
        ChangeNotification.objects.create(
            subscription=subscription,
            key=uuid.uuid4().hex,
            record_key=f"salesOrders({record_id})",
            entity="salesOrders",
            record_id=record_id,
            change_type="updated",
            changed_at=now,
            resource=f"api/v2.0/companies({subscription.company_id})/salesOrders({record_id})",
            status=ChangeNotification.Status.PARKED,
            attempts=8,
            last_error=LAST_ERROR,
        )
    for status in ("SUCCESSFUL", "FAILED"):
        DBTaskResult.objects.create(
            status=status,
            args_kwargs={"args": [list(range(40))], "kwargs": {}},
            task_path="authentications.webhooks.tasks.deliver_notifications",
            backend_name="default",
            run_after=now,
            started_at=now,
            finished_at=now,
            exception_class_path="builtins.RuntimeError" if status == "FAILED" else "",
            traceback=LAST_ERROR if status == "FAILED" else "",
        )


def save_screenshot(driver, name):
    folder = os.environ.get("BCCONNECT_SCREENSHOTS")
    if not folder:
        return
    suffix = os.environ.get("BCCONNECT_SCREENSHOTS_SUFFIX", "after")
    Path(folder).mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(Path(folder) / f"{name}-list-{suffix}.png"))


@pytest.fixture
def laptop(browser, live_server, staff, realistic_rows):
    browser.set_window_size(WIDTH, HEIGHT)
    log_in(browser, live_server.url, staff)
    return browser


@pytest.mark.parametrize("name", LISTS)
def test_list_fits_a_1366_pixel_window(laptop, live_server, name):
    path, key_columns = LISTS[name]
    if "/" not in path:
        path = f"authentications/{path}"
    laptop.get(f"{live_server.url}/admin/{path}/")
    assert laptop.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"), "rows are listed"
    layout = laptop.execute_script(MEASURE)
    save_screenshot(laptop, name)

    assert layout["innerWidth"] >= WIDTH - 20  # The laptop's width, less a scrollbar.
    assert layout["scrollWidth"] <= layout["innerWidth"], f"{name} scrolls sideways: {layout}"
    assert layout["resultsScrollWidth"] <= layout["resultsClientWidth"], f"{name}: {layout}"
    assert layout["tableRight"] <= layout["resultsRight"] <= layout["innerWidth"], layout
    for column in key_columns:
        assert column in layout["headers"], f"{column} is not a column of {name}: {layout}"
        assert layout["headers"][column] <= layout["resultsRight"], f"{column} is off-screen"
