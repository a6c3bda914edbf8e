"""Finished sign-ins and old audit events do not pile up: cron deletes them.

Every press of the landing page's button stores a pending sign-in (with its encrypted
PKCE verifier) and an event; without a purge a public link could fill the database.
"""

import io
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from authentications.connections import link_tokens
from authentications.connections.models import AuthorizationRequest, Event
from tests.helpers import admin_change_url

pytestmark = pytest.mark.django_db

CALLBACK = "/authentications/callback/"


def landing_path(authentication):
    return urlsplit(link_tokens.authorization_url(authentication).url).path


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def test_cron_deletes_abandoned_and_finished_sign_ins_but_not_one_in_flight(
    make_authentication, fake_microsoft, sign_in_at_microsoft
):
    authentication = make_authentication()
    person = Client()
    path = landing_path(authentication)
    for _ in range(3):  # Someone presses the button and never signs in.
        assert person.post(path).status_code == 302
    AuthorizationRequest.objects.update(expires_at=ago(minutes=1))
    sign_in_at_microsoft(authentication)  # A sign-in finished long ago ...
    AuthorizationRequest.objects.filter(used_at__isnull=False).update(used_at=ago(hours=1))
    in_flight = person.post(path)  # ... and one going on right now.

    run("refresh_tokens")

    (kept,) = AuthorizationRequest.objects.all()
    assert kept.used_at is None and kept.expires_at > timezone.now()
    _, fields = fake_microsoft.sign_in(in_flight["Location"])
    assert person.post(CALLBACK, fields).status_code == 303  # It still completes.


def test_a_sign_in_just_completed_still_shows_access_token_received(
    admin_client, make_authentication, sign_in
):
    authentication = make_authentication()
    answer = sign_in(
        admin_client,
        admin_client.post(admin_change_url(authentication).replace("change/", "sign-in/")),
    )

    run("purge_history")

    page = admin_client.get(answer["Location"])
    assert "Access token received" in page.content.decode()


def test_a_spent_link_still_says_it_was_used_after_a_purge(make_authentication, sign_in):
    authentication = make_authentication()
    person = Client()
    path = landing_path(authentication)
    sign_in(person, person.post(path))
    AuthorizationRequest.objects.update(used_at=ago(hours=1))

    run("purge_history")

    assert "already used to grant access" in person.get(path).content.decode()


def test_old_events_go_but_the_current_grant_and_its_credential_events_stay(
    make_authentication, settings
):
    settings.BC_EVENT_RETENTION_DAYS = 30
    authentication = make_authentication()
    other = make_authentication()

    def event(kind, days_ago, on=authentication):
        return Event.objects.create(authentication=on, kind=kind, created_at=ago(days=days_ago))

    gone = [
        event(Event.Kind.SIGN_IN_GRANTED, 100),  # An earlier connection ...
        event(Event.Kind.LINK_EMAILED, 95),  # ... and its links.
        event(Event.Kind.SIGN_IN_STARTED, 90),
        event(Event.Kind.SIGN_IN_FAILED, 90),
        event(Event.Kind.TOKEN_REFRESHED, 40),
        event(Event.Kind.REFRESH_FAILED, 31),
    ]
    kept = [
        event(Event.Kind.SIGN_IN_GRANTED, 80),  # The grant of the current connection ...
        event(Event.Kind.LINK_CREATED, 70),  # ... and credential and link events since.
        event(Event.Kind.LINK_REVOKED, 60),
        event(Event.Kind.SECRET_EXPIRY, 50),
        event(Event.Kind.TOKEN_REFRESHED, 29),  # Within the retention.
        event(Event.Kind.TOKEN_ACQUIRED, 400, on=other),  # Another connection's grant.
    ]

    output = run("purge_history")

    assert set(Event.objects.values_list("pk", flat=True)) == {e.pk for e in kept}
    assert f"{len(gone)} events older than 30 days" in output


def test_events_are_kept_180_days_by_default(make_authentication):
    authentication = make_authentication()
    young = authentication.record(Event.Kind.TOKEN_REFRESHED)
    old = authentication.record(Event.Kind.TOKEN_REFRESHED)
    Event.objects.filter(pk=young.pk).update(created_at=ago(days=179))
    Event.objects.filter(pk=old.pk).update(created_at=ago(days=181))

    run("purge_history")

    assert list(Event.objects.values_list("pk", flat=True)) == [young.pk]


def test_a_retention_of_zero_keeps_events_forever(make_authentication, settings):
    settings.BC_EVENT_RETENTION_DAYS = 0
    authentication = make_authentication()
    Event.objects.create(
        authentication=authentication, kind=Event.Kind.TOKEN_REFRESHED, created_at=ago(days=3650)
    )

    run("purge_history")

    assert Event.objects.count() == 1


def test_dry_runs_delete_nothing(make_authentication):
    authentication = make_authentication()
    person = Client()
    person.post(landing_path(authentication))
    AuthorizationRequest.objects.update(expires_at=ago(minutes=1))
    Event.objects.update(created_at=ago(days=365))

    output = run("purge_history", "--dry-run")
    run("refresh_tokens", "--dry-run")

    assert "Would delete 1 finished sign-in and 1 event older than 180 days" in output
    assert AuthorizationRequest.objects.count() == 1 and Event.objects.count() == 1
