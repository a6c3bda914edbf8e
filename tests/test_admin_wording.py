"""The small things a new user notices in an afternoon: one date format, one empty dash, one
period, one History, and no "edit below" on a page that cannot be edited."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import formats, timezone
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections import link_tokens
from authentications.connections.models import Authentication, Event
from authentications.webhooks.models import Subscription
from tests.helpers import admin_change_url, key_pair, moves_shown, plant_tokens, use_certificate
from tests.webhooks.helpers import make_subscription

pytestmark = pytest.mark.django_db

ISO_MINUTE = re.compile(r"\b20\d\d-\d\d-\d\d \d\d:\d\d\b")
ISO_DAY = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def localized(moment):
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


# --- one date format ------------------------------------------------------------------------


def test_the_change_page_writes_dates_as_the_admin_does(admin_client, tokens_planted):
    refreshed = timezone.now() - timedelta(minutes=5)
    Authentication.objects.filter(pk=tokens_planted.pk).update(last_refreshed_at=refreshed)
    tokens_planted.record(Event.Kind.TOKEN_REFRESHED, actor="cron")

    page = admin_client.get(admin_change_url(tokens_planted)).content.decode()

    assert localized(refreshed) in page
    assert localized(tokens_planted.access_token_expires_at) in page
    assert ISO_MINUTE.findall(page) == []


def test_the_public_landing_page_writes_its_expiry_as_the_admin_does(client, make_authentication):
    authentication = make_authentication()
    link = link_tokens.authorization_url(authentication)

    page = client.get(urlsplit(link.url).path)

    assertContains(page, localized(link.expires_at))
    assert ISO_MINUTE.findall(page.content.decode()) == []
    assertNotContains(page, link.expires_at.strftime("%d %B %Y"))


def test_certificates_and_their_history_write_dates_as_the_admin_does(
    admin_client, make_authentication, fake_microsoft
):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    certificate = use_certificate(fake_microsoft, authentication, key_pair())

    page = admin_client.get(admin_change_url(authentication)).content.decode()
    (event,) = authentication.events.values_list("detail", flat=True)

    day = formats.date_format(timezone.localtime(certificate.not_after), "DATE_FORMAT")
    assert day in page and day in event
    assert ISO_DAY.findall(page) == [] and ISO_DAY.findall(event) == []


# --- one empty value ------------------------------------------------------------------------


def test_empty_values_are_one_dash_in_django_columns_and_ours(admin_client, make_authentication):
    make_authentication()  # Never signed in: granted by, token expiry, refresh are empty.
    make_subscription(make_authentication(), last_notification_at=None)

    authentications = admin_client.get("/admin/authentications/authentication/")
    subscriptions = admin_client.get("/admin/authentications/subscription/")

    for page in (authentications, subscriptions):
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", page.content.decode())
        assert "-" not in cells, "Django's own empty value"
    assertContains(authentications, '<td class="field-granted_by">—</td>', html=False)
    assertContains(
        subscriptions, '<td class="field-last_notification_at nowrap">—</td>', html=False
    )


# --- one period -----------------------------------------------------------------------------


def test_a_company_name_ending_in_a_period_gets_no_second_one(
    admin_client, tokens_planted, make_endpoint, make_authentication, fake_microsoft
):
    staging = plant_tokens(
        fake_microsoft,
        make_authentication(name="BC staging", base_url=fake_microsoft.bc.base_url("Sandbox")),
    )
    endpoint = make_endpoint(tokens_planted, name="Customers")
    chosen = {
        "action": "point_at_another_authentication",
        "_selected_action": [endpoint.pk],
        "authentication": staging.pk,
    }
    review = admin_client.post(
        "/admin/authentications/endpoint/", {**chosen, "bc_move_step": "review"}
    )

    admin_client.post(
        "/admin/authentications/endpoint/",
        {**chosen, "bc_move_step": "confirm", "bc_seen": moves_shown(review)},
    )

    detail = staging.events.get(kind=Event.Kind.ENDPOINT_MOVED).detail
    assert detail.endswith("Company: CRONUS USA, Inc. → CRONUS USA, Inc.")
    assert ".." not in detail


def test_a_time_ending_in_a_m_gets_no_second_period(admin_client, signed_in, settings):
    settings.TIME_ZONE = "UTC"
    Authentication.objects.filter(pk=signed_in.pk).update(
        last_refreshed_at=timezone.now() - timedelta(hours=1)
    )

    response = admin_client.post(
        f"/admin/authentications/authentication/{signed_in.pk}/refresh/", follow=True
    )

    assertContains(response, "Refreshed, valid until")
    messages = [str(message) for message in response.context["messages"]]
    assert messages and all(not message.endswith("..") for message in messages)


# --- one History ----------------------------------------------------------------------------


def test_the_authentication_page_has_one_history(admin_client, tokens_planted):
    page = admin_client.get(admin_change_url(tokens_planted)).content.decode()

    assert re.findall(r">\s*History\s*<", page) == [">History<"]
    assert "historylink" not in page
    assert 'class="form-row field-event_history"' in page


# --- no "edit below" on a page that cannot be edited ----------------------------------------


def test_a_subscription_page_offers_no_editing(admin_client, tokens_planted):
    subscription = make_subscription(tokens_planted)

    page = admin_client.get(f"/admin/authentications/subscription/{subscription.pk}/change/")

    assert page.status_code == 200
    assertNotContains(page, 'name="_continue"')
    assertNotContains(page, 'name="_save"')
    assertContains(page, "/delete/")  # Deleting (at BC too) is still offered.


def test_adding_a_subscription_never_says_edit_it_below(admin_client, tokens_planted):
    # Creating it at BC runs once the transaction commits: test_subscription_admin covers it.
    form = admin_client.get("/admin/authentications/subscription/add/")
    assertNotContains(form, 'name="_continue"')

    response = admin_client.post(
        "/admin/authentications/subscription/add/",
        {
            "authentication": tokens_planted.pk,
            "company": "CRONUS USA, Inc.",
            "api_path": "api/v2.0",
            "entity": "customers",
            "_continue": "Save and continue editing",
        },
        follow=True,
    )

    assert Subscription.objects.count() == 1
    assertNotContains(response, "below")
