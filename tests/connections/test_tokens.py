"""Code asks for a token and gets a valid one; Microsoft is asked once per expiry."""

import logging
from datetime import timedelta

import msal
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import formats, timezone

from authentications.connections import oauth, policies, tokens
from authentications.connections.models import Authentication, Event
from authentications.connections.tokens import TokenError, get_access_token
from tests.fakes.entra import CLIENT_SECRET, error_body
from tests.helpers import expiring, fresh, sibling_acts_during_the_token_request

pytestmark = pytest.mark.django_db


def token_error(aadsts, error="invalid_grant", status=400):
    return ("error", error_body(error, aadsts, "Refused by the fake."), status)


# --- the happy paths -------------------------------------------------------------------


def test_a_fresh_token_is_returned_without_any_http_request(signed_in, fake_microsoft):
    before = (len(fake_microsoft.entra.token_requests), fake_microsoft.entra.discovery_requests)

    token = get_access_token(signed_in)

    assert token == signed_in.access_token
    after = (len(fake_microsoft.entra.token_requests), fake_microsoft.entra.discovery_requests)
    assert after == before


def test_a_fresh_token_costs_one_database_read(signed_in, django_assert_num_queries):
    with django_assert_num_queries(1):
        get_access_token(signed_in.pk)


def test_a_token_about_to_expire_is_refreshed_and_the_rotated_refresh_token_stored(
    signed_in, fake_microsoft
):
    old_access, old_refresh = signed_in.access_token, signed_in.refresh_token
    expiring(signed_in, seconds=60)  # Inside the 5-minute skew.

    token = get_access_token(signed_in)

    stored = fresh(signed_in)
    assert token == stored.access_token != old_access
    assert stored.refresh_token.startswith("fake-rt-")
    assert stored.refresh_token != old_refresh  # Entra rotated it; the new one is kept.
    assert stored.access_token_expires_at > timezone.now() + timedelta(minutes=50)
    assert stored.last_refreshed_at > timezone.now() - timedelta(seconds=10)
    assert stored.status == Authentication.Status.CONNECTED
    assert stored.lease_id == "" and stored.lease_until is None
    assert fake_microsoft.entra.count("refresh_token") == 1
    assert stored.events.filter(kind=Event.Kind.TOKEN_REFRESHED).count() == 1
    # The next refresh works with the stored (rotated) refresh token.
    expiring(signed_in, seconds=-1)
    assert get_access_token(signed_in) != token
    assert fake_microsoft.entra.refresh_token_reuse == 0


def test_tokens_written_by_the_fenced_update_are_encrypted_at_rest(signed_in):
    expiring(signed_in)
    get_access_token(signed_in)
    stored = fresh(signed_in)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM authentications_authentication WHERE id = %s",
            [signed_in.pk],
        )
        raw_access, raw_refresh = (bytes(value) for value in cursor.fetchone())
    assert stored.access_token.encode() not in raw_access
    assert stored.refresh_token.encode() not in raw_refresh
    assert raw_access.startswith(b"gAAAA")  # A Fernet token.


def test_the_old_refresh_token_is_kept_when_microsoft_returns_none(signed_in, fake_microsoft):
    old_refresh = signed_in.refresh_token
    expiring(signed_in)
    body = {"token_type": "Bearer", "expires_in": 3600, "access_token": "fake-at-without-rt"}
    fake_microsoft.entra.fail_next_token_request(("error", body, 200))

    assert get_access_token(signed_in) == "fake-at-without-rt"

    assert fresh(signed_in).refresh_token == old_refresh


def test_a_forced_refresh_after_a_401_refreshes_once_even_when_asked_twice(
    signed_in, fake_microsoft
):
    Authentication.objects.filter(pk=signed_in.pk).update(
        last_refreshed_at=timezone.now() - timedelta(minutes=5)
    )
    first = get_access_token(signed_in, force_refresh=True)
    second = get_access_token(signed_in, force_refresh=True)  # A peer's 401, a moment later.

    assert first == second != signed_in.access_token
    assert fake_microsoft.entra.count("refresh_token") == 1


def test_the_lease_holder_makes_no_call_when_a_peer_has_just_refreshed(signed_in, fake_microsoft):
    result = tokens.refresh(signed_in, needed=policies.before_use())

    assert result.refreshed is False
    assert fake_microsoft.entra.count("refresh_token") == 0


def test_a_crashed_winners_lease_expires_by_itself(signed_in, fake_microsoft, settings):
    settings.BC_LEASE_SECONDS = 1
    Authentication.objects.filter(pk=signed_in.pk).update(
        lease_until=timezone.now() + timedelta(seconds=0.5), lease_id="crashed-worker"
    )
    expiring(signed_in, seconds=-1)

    token = get_access_token(signed_in)

    assert token == fresh(signed_in).access_token != signed_in.access_token
    assert fake_microsoft.entra.count("refresh_token") == 1


def test_one_discovery_then_one_token_request_per_refresh(signed_in, fake_microsoft):
    oauth.clear_http_cache()
    fake_microsoft.entra.discovery_requests = 0
    for _ in range(3):
        expiring(signed_in, seconds=-1)
        get_access_token(signed_in)

    assert fake_microsoft.entra.count("refresh_token") == 3
    assert fake_microsoft.entra.discovery_requests == 1


def test_msal_keeps_no_token_between_refreshes(signed_in, fake_microsoft, monkeypatch):
    apps = []

    class Recording(msal.ConfidentialClientApplication):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            apps.append(self)

    monkeypatch.setattr(msal, "ConfidentialClientApplication", Recording)
    for _ in range(2):
        expiring(signed_in, seconds=-1)
        get_access_token(signed_in)

    assert len(apps) == 2
    assert apps[0].token_cache is not apps[1].token_cache  # A fresh cache per operation.
    # ... and the only token the second one ever saw is the one it was given, not the first's.
    refresh_tokens = list(apps[1].token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN))
    assert len(refresh_tokens) == 1
    assert fake_microsoft.entra.count("refresh_token") == 2


# --- transient failures: keep everything, say "failing" -------------------------------


TRANSIENT_FAULTS = {
    "503": ("status", 503),
    "500": ("status", 500),
    "429": ("status", 429, {"Content-Type": "text/html", "Retry-After": "1"}),
    "dropped connection": ("drop",),
    "temporarily_unavailable": (
        "error",
        error_body("temporarily_unavailable", 50196, "Busy."),
        503,
    ),
}


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS.values(), ids=TRANSIENT_FAULTS.keys())
def test_a_transient_failure_keeps_the_tokens_and_returns_the_unexpired_one(
    signed_in, fake_microsoft, fault, notify_list, mailoutbox
):
    expiring(signed_in, seconds=60)  # Due for refresh, but not yet expired.
    fake_microsoft.entra.fail_next_token_request(fault)

    token = get_access_token(signed_in)

    stored = fresh(signed_in)
    assert token == signed_in.access_token
    assert stored.access_token == signed_in.access_token
    assert stored.refresh_token == signed_in.refresh_token
    assert stored.status == Authentication.Status.FAILING
    assert stored.consecutive_failures == 1
    assert "try again" in stored.last_error
    assert stored.events.filter(kind=Event.Kind.REFRESH_FAILED).count() == 1
    assert mailoutbox == []


def test_a_timeout_is_transient(signed_in, fake_microsoft, settings):
    settings.BC_HTTP_TIMEOUT = (2, 0.3)
    expiring(signed_in, seconds=-1)
    fake_microsoft.entra.fail_next_token_request(("sleep", 1))

    with pytest.raises(TokenError) as caught:
        get_access_token(signed_in)

    assert caught.value.transient and not caught.value.needs_sign_in
    assert caught.value.code == "timeout"
    assert fresh(signed_in).refresh_token == signed_in.refresh_token


def test_an_expired_token_during_an_outage_is_a_transient_error_then_recovers(
    signed_in, fake_microsoft
):
    expiring(signed_in, seconds=-1)
    fake_microsoft.entra.fail_next_token_request(("status", 503), ("status", 503))

    for attempt in (1, 2):
        with pytest.raises(TokenError) as caught:
            get_access_token(signed_in)
        assert caught.value.transient
        assert fresh(signed_in).consecutive_failures == attempt
        oauth.clear_http_cache()  # MSAL remembers a 5xx for Retry-After seconds.

    token = get_access_token(signed_in)

    stored = fresh(signed_in)
    assert token == stored.access_token
    assert stored.status == Authentication.Status.CONNECTED
    assert stored.consecutive_failures == 0 and stored.last_error == ""


# --- definitive failures: someone must sign in ----------------------------------------


DEFINITIVE = {
    "invalid_grant 70008": token_error(70008),
    "invalid_grant 700082": token_error(700082),
    "interaction_required": token_error(50076, "interaction_required"),
    "consent_required": token_error(65001, "consent_required"),
    "AADSTS50173 revoked": token_error(50173),
    "AADSTS65001 consent missing": token_error(65001, "invalid_grant"),
    "AADSTS50076 MFA": token_error(50076, "invalid_grant"),
    "AADSTS50079 MFA registration": token_error(50079, "invalid_grant"),
}


@pytest.mark.parametrize("fault", DEFINITIVE.values(), ids=DEFINITIVE.keys())
def test_a_definitive_failure_needs_a_sign_in_and_emails_once(
    signed_in, fake_microsoft, fault, notify_list, mailoutbox
):
    expiring(signed_in, seconds=-1)
    fake_microsoft.entra.fail_next_token_request(fault)

    with pytest.raises(TokenError) as caught:
        get_access_token(signed_in)

    error = caught.value
    assert error.needs_sign_in and not error.transient
    assert error.code == f"AADSTS{fault[1]['error_codes'][0]}"
    stored = fresh(signed_in)
    assert stored.status == Authentication.Status.NEEDS_SIGN_IN
    assert stored.refresh_token == ""
    assert stored.last_error_code == error.code
    assert stored.events.filter(kind=Event.Kind.NEEDS_SIGN_IN).count() == 1
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == notify_list
    assert signed_in.name in email.subject and signed_in.name in email.body
    assert f"/admin/authentications/authentication/{signed_in.pk}/change/" in email.body
    assert error.code in email.body and "sign in again" in email.body
    assert signed_in.refresh_token not in email.body
    assert "/authentications/authorize/" in email.body  # The Authorization URL to forward.

    # Asking again: no call to Microsoft, no second email.
    requests_before = len(fake_microsoft.entra.token_requests)
    with pytest.raises(TokenError) as again:
        get_access_token(signed_in)
    assert again.value.needs_sign_in
    assert len(fake_microsoft.entra.token_requests) == requests_before
    assert len(mailoutbox) == 1


def test_a_password_change_revokes_the_grant(signed_in, fake_microsoft, mailoutbox, notify_list):
    fake_microsoft.entra.revoke_user("jane@contoso.com")
    expiring(signed_in, seconds=-1)

    with pytest.raises(TokenError) as caught:
        get_access_token(signed_in)

    assert caught.value.code == "AADSTS50173"
    assert fresh(signed_in).status == Authentication.Status.NEEDS_SIGN_IN
    assert len(mailoutbox) == 1


def test_an_expired_client_secret_says_what_to_do_in_entra(
    signed_in, fake_microsoft, mailoutbox, notify_list
):
    fake_microsoft.entra.apps[signed_in.client_id].secret_expired = True
    expiring(signed_in, seconds=-1)

    with pytest.raises(TokenError) as caught:
        get_access_token(signed_in)

    assert caught.value.code == "AADSTS7000222" and caught.value.needs_sign_in
    stored = fresh(signed_in)
    assert stored.status == Authentication.Status.SECRET_INVALID
    assert "Certificates & secrets" in stored.last_error
    # The refresh token still works with a new secret of the same app: keep it.
    assert stored.refresh_token == signed_in.refresh_token
    assert len(mailoutbox) == 1
    assert "New client secret" in mailoutbox[0].body or "new client secret" in mailoutbox[0].body
    oauth.clear_http_cache()
    with pytest.raises(TokenError):
        get_access_token(signed_in)
    assert len(mailoutbox) == 1  # One email per transition, not per attempt.


def test_a_connection_without_a_sign_in_needs_one_without_calling_microsoft(
    make_authentication, fake_microsoft
):
    authentication = make_authentication()

    with pytest.raises(TokenError) as caught:
        get_access_token(authentication)

    assert caught.value.code == "not_connected" and caught.value.needs_sign_in
    assert fake_microsoft.entra.token_requests == []


# --- races: the fenced write and the re-read before believing invalid_grant -------------


@pytest.mark.django_db(transaction=True)
def test_invalid_grant_is_not_believed_when_a_sibling_rotated_the_refresh_token(
    signed_in, fake_microsoft, monkeypatch, mailoutbox, notify_list
):
    expiring(signed_in, seconds=-1)
    fake_microsoft.entra.fail_next_token_request(token_error(70008))
    sibling_acts_during_the_token_request(
        fake_microsoft,
        monkeypatch,
        lambda: Authentication.objects.filter(pk=signed_in.pk).update(
            refresh_token="sibling-rotated-refresh-token"
        ),
    )

    with pytest.raises(TokenError) as caught:
        get_access_token(signed_in)

    assert caught.value.code == "superseded" and caught.value.transient
    stored = fresh(signed_in)
    assert stored.status == Authentication.Status.CONNECTED
    assert stored.refresh_token == "sibling-rotated-refresh-token"
    assert mailoutbox == []


@pytest.mark.django_db(transaction=True)
def test_a_winner_that_lost_its_lease_cannot_overwrite_a_newer_refresh_token(
    signed_in, fake_microsoft, monkeypatch
):
    expiring(signed_in, seconds=-1)
    sibling_acts_during_the_token_request(
        fake_microsoft,
        monkeypatch,
        lambda: Authentication.objects.filter(pk=signed_in.pk).update(
            lease_id="a-sibling-took-over", refresh_token="sibling-refresh-token"
        ),
    )

    with pytest.raises(TokenError) as caught:
        tokens.refresh(signed_in, needed=policies.before_use())

    assert caught.value.code == "lease_lost"
    assert fresh(signed_in).refresh_token == "sibling-refresh-token"


# --- secrets stay secret --------------------------------------------------------------


def test_no_secret_reaches_the_logs_events_or_errors(
    signed_in, fake_microsoft, caplog, notify_list, mailoutbox
):
    caplog.set_level(logging.DEBUG)
    secrets_seen = {CLIENT_SECRET, signed_in.refresh_token, signed_in.access_token}
    expiring(signed_in, seconds=-1)
    get_access_token(signed_in)
    refreshed = fresh(signed_in)
    secrets_seen |= {refreshed.access_token, refreshed.refresh_token}
    expiring(signed_in, seconds=-1)
    fake_microsoft.entra.fail_next_token_request(("status", 503))
    with pytest.raises(TokenError) as transient:
        get_access_token(signed_in)
    oauth.clear_http_cache()
    fake_microsoft.entra.fail_next_token_request(token_error(70008))
    with pytest.raises(TokenError) as definitive:
        get_access_token(signed_in)

    texts = [caplog.text, str(transient.value), str(definitive.value)]
    texts += [event.detail for event in Event.objects.all()]
    texts += [fresh(signed_in).last_error]
    texts += [message.body for message in mailoutbox]
    for secret in secrets_seen:
        assert secret
        assert not any(secret in text for text in texts)


# --- health in the admin, and Refresh now -----------------------------------------------


def refresh_url(authentication):
    return f"/admin/authentications/authentication/{authentication.pk}/refresh/"


def test_the_change_page_shows_health_and_a_refresh_now_button(admin_client, signed_in):
    Authentication.objects.filter(pk=signed_in.pk).update(
        consecutive_failures=3, last_error="Microsoft did not answer in time; try again shortly."
    )

    content = admin_client.get(f"/admin/authentications/authentication/{signed_in.pk}/change/")
    content = content.content.decode()

    assert "Last successful refresh" in content
    assert localized(signed_in.last_refreshed_at) in content  # As the admin writes dates.
    until = localized(signed_in.sign_in_valid_until)
    assert "Sign-in valid until" in content and until in content
    assert "Consecutive failures" in content
    assert "Microsoft did not answer in time" in content
    assert f'formaction="{refresh_url(signed_in)}"' in content
    assert signed_in.access_token not in content and signed_in.refresh_token not in content


def test_refresh_now_refreshes_and_says_so(admin_client, signed_in, fake_microsoft):
    Authentication.objects.filter(pk=signed_in.pk).update(
        last_refreshed_at=timezone.now() - timedelta(hours=1)
    )

    response = admin_client.post(refresh_url(signed_in), follow=True)

    stored = fresh(signed_in)
    assert stored.access_token != signed_in.access_token
    assert "Refreshed, valid until" in response.content.decode()
    assert fake_microsoft.entra.count("refresh_token") == 1
    assert stored.events.get(kind=Event.Kind.TOKEN_REFRESHED).actor == "admin"


def test_refresh_now_shows_why_it_failed(admin_client, signed_in, fake_microsoft):
    Authentication.objects.filter(pk=signed_in.pk).update(
        last_refreshed_at=timezone.now() - timedelta(hours=1)
    )
    fake_microsoft.entra.fail_next_token_request(token_error(50173))

    response = admin_client.post(refresh_url(signed_in), follow=True)

    content = response.content.decode()
    assert "someone must sign in again" in content
    assert fresh(signed_in).status == Authentication.Status.NEEDS_SIGN_IN


def test_refresh_now_refuses_get_and_staff_who_may_not_change(
    client, admin_client, signed_in, django_user_model
):
    assert admin_client.get(refresh_url(signed_in)).status_code == 405
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_authentication"))
    client.force_login(viewer)

    assert client.post(refresh_url(signed_in)).status_code == 403
    assert fresh(signed_in).access_token == signed_in.access_token


def test_the_list_action_refreshes_the_selected(
    admin_client, make_authentication, sign_in_at_microsoft
):
    one, two = (
        sign_in_at_microsoft(make_authentication()),
        sign_in_at_microsoft(make_authentication()),
    )
    Authentication.objects.update(last_refreshed_at=timezone.now() - timedelta(hours=1))

    response = admin_client.post(
        "/admin/authentications/authentication/",
        {"action": "refresh_now", "_selected_action": [one.pk, two.pk]},
        follow=True,
    )

    assert response.content.decode().count("Refreshed, valid until") == 2
    assert fresh(one).access_token != one.access_token
    assert fresh(two).access_token != two.access_token


def test_the_list_shows_health_and_secret_days_left(admin_client, signed_in, make_authentication):
    make_authentication(
        name="Old secret", client_secret_expires_on=timezone.localdate() + timedelta(days=12)
    )
    Authentication.objects.filter(pk=signed_in.pk).update(
        status=Authentication.Status.NEEDS_SIGN_IN, consecutive_failures=2
    )

    content = admin_client.get("/admin/authentications/authentication/").content.decode()
    filtered = admin_client.get(
        "/admin/authentications/authentication/?status__exact=needs_sign_in"
    )

    assert "12 days left" in content
    assert "Last successful refresh" in content and "Consecutive failures" in content
    assert signed_in.name in filtered.content.decode()
    assert "Old secret" not in filtered.content.decode()


def test_a_mail_server_that_is_down_does_not_hide_the_token_error(signed_in, settings, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    settings.BC_NOTIFY_EMAILS = ["ops@example.com"]
    Authentication.objects.filter(pk=signed_in.pk).update(refresh_token="fake-rt-not-known")
    expiring(signed_in, seconds=-1)

    with pytest.raises(TokenError) as caught:
        get_access_token(signed_in)

    assert caught.value.needs_sign_in
    assert fresh(signed_in).status == Authentication.Status.NEEDS_SIGN_IN
    assert "Could not send" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_completed_during_a_refresh_is_not_overwritten(
    signed_in, fake_microsoft, monkeypatch
):
    expiring(signed_in, seconds=-1)
    signed_in_at = timezone.now()
    sibling_acts_during_the_token_request(
        fake_microsoft,
        monkeypatch,
        lambda: Authentication.objects.filter(pk=signed_in.pk).update(
            granted_at=signed_in_at, refresh_token="fake-rt-of-the-new-sign-in"
        ),
    )

    with pytest.raises(TokenError) as caught:
        tokens.refresh(signed_in, needed=policies.before_use())

    assert caught.value.code == "lease_lost" and caught.value.transient
    stored = fresh(signed_in)
    assert stored.refresh_token == "fake-rt-of-the-new-sign-in"
    assert stored.lease_id == ""


def localized(moment):
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
