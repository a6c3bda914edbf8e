"""When only a person can fix a connection, nobody hammers Entra and people hear once.

An invalid client secret or a deleted or disabled app registration is not retried by code or
cron until the credentials change or a person asks (Refresh now, the admin Save of a
service-to-service authentication, `refresh_tokens --name`); each real breakage emails once.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from authentications.connections import oauth
from authentications.connections.models import Authentication, Event
from authentications.connections.tokens import TokenError, get_access_token
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, error_body
from tests.helpers import admin_change_url, change_form_data

# refresh_tokens refreshes on worker threads: they must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

NEW_SECRET = "fake-client-secret-Value~the-new-one-0987654321"


@pytest.fixture
def notify_list(settings):
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]


@pytest.fixture
def connected(make_authentication, sign_in_at_microsoft):
    return sign_in_at_microsoft(make_authentication(name="Orders"))


@pytest.fixture
def service(make_authentication):
    authentication = make_authentication(
        name="Service", kind=Authentication.Kind.SERVICE_TO_SERVICE
    )
    get_access_token(authentication)
    return fresh(authentication)


def fresh(authentication):
    return Authentication.objects.get(pk=authentication.pk)


def expire(authentication):
    Authentication.objects.filter(pk=authentication.pk).update(
        access_token_expires_at=timezone.now() - timedelta(seconds=1),
        last_refreshed_at=timezone.now() - timedelta(hours=1),
    )


def token_requests(fake_microsoft):
    return len(fake_microsoft.entra.token_requests)


def refused(authentication):
    with pytest.raises(TokenError) as caught:
        get_access_token(authentication)
    return caught.value


def run(*args):
    out = StringIO()
    try:
        call_command("refresh_tokens", *args, stdout=out)
    except CommandError:
        pass
    return out.getvalue()


def refresh_now(admin_client, authentication):
    url = f"/admin/authentications/authentication/{authentication.pk}/refresh/"
    return admin_client.post(url, follow=True).content.decode()


def delete_app_registration(fake_microsoft):
    return fake_microsoft.entra.apps.pop(CLIENT_ID)


# --- an invalid client secret ---------------------------------------------------------


def test_a_refused_secret_is_not_sent_to_entra_again_by_code_or_cron(
    connected, fake_microsoft, notify_list, mailoutbox
):
    fake_microsoft.entra.apps[CLIENT_ID].secret_expired = True
    expire(connected)
    first = refused(connected)
    asked = token_requests(fake_microsoft)

    again = refused(connected)
    output = run()
    run("--all")

    assert token_requests(fake_microsoft) == asked  # Entra was asked once, and only once.
    assert first.code == again.code == "AADSTS7000222" and again.needs_sign_in
    assert "Certificates & secrets" in again.message
    assert "Orders: FAILED AADSTS7000222: The client secret is wrong or expired" in output
    assert fresh(connected).status == Authentication.Status.SECRET_INVALID
    assert len(mailoutbox) == 1


def test_a_refused_secret_of_a_service_connection_is_not_retried_by_code(
    service, fake_microsoft, notify_list, mailoutbox
):
    fake_microsoft.entra.apps[CLIENT_ID].secret_expired = True
    expire(service)
    refused(service)
    asked = token_requests(fake_microsoft)

    for _ in range(3):
        assert refused(service).code == "AADSTS7000222"

    assert token_requests(fake_microsoft) == asked
    assert len(mailoutbox) == 1


def test_a_new_secret_is_tried_without_anyone_asking(connected, fake_microsoft, notify_list):
    fake_microsoft.entra.apps[CLIENT_ID].secret_expired = True
    expire(connected)
    refused(connected)
    # Someone pastes a new secret (admin "Save", not "Save and continue": no sign-in).
    fake_microsoft.entra.register_app(CLIENT_ID, NEW_SECRET).secret_expired = False
    stored = fresh(connected)
    stored.client_secret = NEW_SECRET
    stored.save(update_fields=["client_secret"])

    token = get_access_token(connected)

    assert token == fresh(connected).access_token
    assert fresh(connected).status == Authentication.Status.CONNECTED


def test_a_person_asking_tries_entra_again(
    connected, fake_microsoft, admin_client, notify_list, mailoutbox
):
    fake_microsoft.entra.apps[CLIENT_ID].secret_expired = True
    expire(connected)
    refused(connected)

    asked = token_requests(fake_microsoft)
    page = refresh_now(admin_client, connected)
    assert token_requests(fake_microsoft) == asked + 1
    assert "The client secret is wrong or expired" in page

    oauth.clear_http_cache()  # MSAL remembers a 400 for a minute.
    output = run("--name", "Orders")
    assert token_requests(fake_microsoft) == asked + 2
    assert "Orders: FAILED AADSTS7000222" in output

    fake_microsoft.entra.apps[CLIENT_ID].secret_expired = False  # Fixed in Entra.
    assert "Refreshed, valid until" in refresh_now(admin_client, connected)
    assert fresh(connected).status == Authentication.Status.CONNECTED
    assert len(mailoutbox) == 1  # One breakage, one email.


def test_a_transient_failure_in_between_does_not_email_twice(
    connected, fake_microsoft, admin_client, notify_list, mailoutbox
):
    fake_microsoft.entra.apps[CLIENT_ID].secret_expired = True
    expire(connected)
    refused(connected)
    fake_microsoft.entra.fail_next_token_request(("status", 503))

    page = refresh_now(admin_client, connected)  # Microsoft is down at that moment.

    assert "try again" in page
    stored = fresh(connected)
    assert stored.status == Authentication.Status.SECRET_INVALID  # Still what needs fixing.
    assert stored.last_error_code == "AADSTS7000222"
    assert stored.events.filter(kind=Event.Kind.REFRESH_FAILED).count() == 1
    assert refused(connected).code == "AADSTS7000222"  # Still backing off.
    oauth.clear_http_cache()
    refresh_now(admin_client, connected)  # The secret is still expired.
    assert fresh(connected).status == Authentication.Status.SECRET_INVALID
    assert len(mailoutbox) == 1


def test_saving_a_service_connection_with_a_new_secret_acquires_a_token(
    service, fake_microsoft, admin_client, notify_list
):
    fake_microsoft.entra.apps[CLIENT_ID].secret_expired = True
    expire(service)
    refused(service)
    fake_microsoft.entra.register_app(CLIENT_ID, NEW_SECRET).secret_expired = False

    response = admin_client.post(
        admin_change_url(service),
        {**change_form_data(service, client_secret=NEW_SECRET), "_continue": "1"},
        follow=True,
    )

    assert "Access token received" in response.content.decode()
    assert fresh(service).status == Authentication.Status.CONNECTED


# --- a deleted or disabled app registration -------------------------------------------


def test_a_deleted_app_registration_needs_a_person_and_emails_once(
    connected, fake_microsoft, notify_list, mailoutbox
):
    delete_app_registration(fake_microsoft)
    expire(connected)

    error = refused(connected)
    asked = token_requests(fake_microsoft)

    assert error.code == "AADSTS700016" and error.needs_sign_in and not error.transient
    stored = fresh(connected)
    assert stored.status == Authentication.Status.APP_MISSING
    assert stored.get_status_display() == "App registration missing or disabled"
    assert "App registrations" in stored.last_error
    assert stored.refresh_token == connected.refresh_token  # Good again once it is restored.
    assert stored.events.filter(kind=Event.Kind.NEEDS_SIGN_IN).count() == 1
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert "app registration missing or disabled" in email.subject
    assert "AADSTS700016" in email.body and "App registrations" in email.body
    assert "Refresh now" in email.body
    assert connected.refresh_token not in email.body and CLIENT_SECRET not in email.body

    assert refused(connected).code == "AADSTS700016"
    assert "Orders: FAILED AADSTS700016" in run()
    assert token_requests(fake_microsoft) == asked
    assert len(mailoutbox) == 1


def test_a_disabled_app_registration_needs_a_person(
    connected, fake_microsoft, notify_list, mailoutbox
):
    disabled = error_body("unauthorized_client", 7000112, "Application is disabled.")
    fake_microsoft.entra.fail_next_token_request(("error", disabled, 400))
    expire(connected)

    error = refused(connected)

    assert error.code == "AADSTS7000112" and error.needs_sign_in
    assert fresh(connected).status == Authentication.Status.APP_MISSING
    assert "disabled" in fresh(connected).last_error
    assert len(mailoutbox) == 1


def test_a_restored_app_registration_works_again_when_a_person_asks(
    connected, fake_microsoft, admin_client, notify_list
):
    app = delete_app_registration(fake_microsoft)
    expire(connected)
    refused(connected)
    fake_microsoft.entra.apps[CLIENT_ID] = app  # Restored from "Deleted applications".
    oauth.clear_http_cache()

    assert "Refreshed, valid until" in refresh_now(admin_client, connected)
    assert fresh(connected).status == Authentication.Status.CONNECTED


def test_a_service_connection_whose_app_was_deleted_needs_a_person(
    service, fake_microsoft, notify_list, mailoutbox
):
    delete_app_registration(fake_microsoft)
    expire(service)

    assert refused(service).code == "AADSTS700016"
    asked = token_requests(fake_microsoft)
    assert refused(service).code == "AADSTS700016"

    assert token_requests(fake_microsoft) == asked
    assert fresh(service).status == Authentication.Status.APP_MISSING
    assert len(mailoutbox) == 1
