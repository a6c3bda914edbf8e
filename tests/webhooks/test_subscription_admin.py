"""Staff add and delete subscriptions in the admin, and see their state and notifications."""

import json

import pytest
import responses
from django.contrib.auth.models import Permission, User

from authentications.webhooks.models import ChangeNotification, Subscription
from tests.webhooks.helpers import (
    COMPANY_ID,
    FakeSubscriptionsAtBC,
    make_subscription,
    notification_item,
    post_notifications,
)

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/authentications/subscription/add/"


@pytest.fixture
def bc(tokens_planted):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield FakeSubscriptionsAtBC(mocked, tokens_planted.base_url)


def test_adding_a_subscription_creates_it_at_bc(
    admin_client, bc, tokens_planted, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            ADD_URL,
            {
                "authentication": tokens_planted.pk,
                "company": "CRONUS USA, Inc.",
                "api_path": "api/v2.0",
                "entity": "customers",
            },
        )
    response = admin_client.get(response["Location"])

    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert (subscription.company_id, subscription.subscription_id) == (COMPANY_ID, "sub-1")
    assert subscription.status == Subscription.Status.ACTIVE
    assert json.loads(bc.requests[0].body)["resource"].endswith("/customers")
    # The success message itself is checked where the transaction really commits
    # (test_demo_notifications): here the callbacks run after the response.


def test_an_entity_bc_does_not_notify_about_is_a_form_error(admin_client, bc, tokens_planted):
    response = admin_client.post(
        ADD_URL,
        {
            "authentication": tokens_planted.pk,
            "company": COMPANY_ID,
            "api_path": "api/v2.0",
            "entity": "salesInvoiceLines",
        },
    )

    assert response.status_code == 200
    assert "sends no notifications for “v2.0/salesInvoiceLines”" in response.content.decode()
    assert Subscription.objects.count() == 0
    assert bc.requests == []


@pytest.mark.parametrize(
    "field, value", [("company", "No such company"), ("entity", "../x"), ("api_path", "x/../y")]
)
def test_bad_input_is_a_form_error_and_changes_nothing(
    admin_client, bc, tokens_planted, field, value
):
    data = {
        "authentication": tokens_planted.pk,
        "company": COMPANY_ID,
        "api_path": "api/v2.0",
        "entity": "customers",
        field: value,
    }

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    assert b"errornote" in response.content
    assert Subscription.objects.count() == 0


def test_the_change_page_shows_status_expiry_and_latest_notifications(
    admin_client, client, tokens_planted
):
    subscription = make_subscription(tokens_planted)
    post_notifications(client, [notification_item(subscription, "cust-42", change_type="created")])

    page = admin_client.get(f"/admin/authentications/subscription/{subscription.pk}/change/")

    text = page.content.decode()
    assert "Active" in text and "cust-42" in text and "created" in text
    assert str(subscription.client_state) not in text


def test_deleting_a_subscription_deletes_it_at_bc(admin_client, bc, tokens_planted):
    subscription = make_subscription(tokens_planted, subscription_id="sub-9", etag='W/"3"')

    admin_client.post(
        f"/admin/authentications/subscription/{subscription.pk}/delete/", {"post": "yes"}
    )

    assert [(request.method, request.headers["If-Match"]) for request in bc.requests] == [
        ("DELETE", 'W/"3"')
    ]
    assert Subscription.objects.count() == 0
    assert ChangeNotification.objects.count() == 0


def test_staff_who_may_only_view_notifications_cannot_retry_them(client, tokens_planted):
    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_changenotification"))
    subscription = make_subscription(tokens_planted)
    post_notifications(client, [notification_item(subscription, "c-1")])
    ChangeNotification.objects.update(status=ChangeNotification.Status.PARKED)
    client.force_login(staff)

    listing = client.get("/admin/authentications/changenotification/")
    client.post(
        "/admin/authentications/changenotification/",
        {"action": "retry", "_selected_action": [ChangeNotification.objects.get().pk]},
    )

    assert listing.status_code == 200
    assert b'value="retry"' not in listing.content
    assert ChangeNotification.objects.get().status == ChangeNotification.Status.PARKED
