"""The Authorization URL itself: signed, expiring, revocable, shown only when it can work."""

import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission, User
from django.core import signing
from django.utils import formats, timezone
from pytest_django.asserts import assertNotContains

from authentications.connections import link_tokens
from authentications.connections.link_tokens import LinkError
from authentications.connections.models import Authentication, Event
from tests.helpers import admin_change_url, change_form_data

pytestmark = pytest.mark.django_db


def token_of(authentication):
    url, _ = link_tokens.authorization_url(authentication)
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def issued_days_ago(monkeypatch, authentication, days):
    stamp = signing.b62_encode(int(time.time()) - days * 86400)
    with monkeypatch.context() as patch:
        patch.setattr(signing.TimestampSigner, "timestamp", lambda self: stamp)
        return token_of(authentication)


def code_of(token):
    with pytest.raises(LinkError) as caught:
        link_tokens.authentication_for_link(token)
    return caught.value.code


def test_the_link_points_at_our_landing_page_and_names_the_authentication(
    make_authentication, settings
):
    authentication = make_authentication()

    url, expires_at = link_tokens.authorization_url(authentication)

    assert url.startswith(settings.PUBLIC_BASE_URL + "/authentications/authorize/")
    assert authentication.client_secret not in url
    assert abs(expires_at - (timezone.now() + timedelta(days=7))) < timedelta(seconds=5)
    opened = link_tokens.authentication_for_link(token_of(authentication))
    assert opened.authentication == authentication
    assert abs(opened.expires_at - expires_at) < timedelta(seconds=5)


def test_a_tampered_link_is_invalid(make_authentication):
    token = token_of(make_authentication())
    payload, stamp, signature = token.split(":")

    assert code_of(f"{payload}:{stamp}:{signature[:-2]}xx") == LinkError.INVALID
    assert code_of(f"{payload}x:{stamp}:{signature}") == LinkError.INVALID
    assert code_of("not-a-link") == LinkError.INVALID
    assert code_of("") == LinkError.INVALID


def test_a_link_signed_for_another_purpose_is_invalid(make_authentication):
    authentication = make_authentication()
    other = signing.TimestampSigner(salt="something-else").sign_object(
        {"a": authentication.pk, "n": authentication.link_nonce}
    )
    wrong_shape = signing.TimestampSigner(salt=link_tokens.SALT).sign_object(["a", "n"])
    missing = signing.TimestampSigner(salt=link_tokens.SALT).sign_object({"a": authentication.pk})

    assert code_of(other) == LinkError.INVALID
    assert code_of(wrong_shape) == LinkError.INVALID
    assert code_of(missing) == LinkError.INVALID


def test_a_link_expires_after_the_configured_days(make_authentication, monkeypatch, settings):
    authentication = make_authentication()
    token = issued_days_ago(monkeypatch, authentication, 8)

    assert code_of(token) == LinkError.EXPIRED
    settings.BC_LINK_MAX_AGE_DAYS = 30
    opened = link_tokens.authentication_for_link(token)
    assert opened.expires_at.date() == (timezone.now() + timedelta(days=22)).date()


def test_expired_and_revoked_are_gone_invalid_and_missing_are_not_found():
    assert LinkError("", code=LinkError.EXPIRED).status == 410
    assert LinkError("", code=LinkError.REVOKED).status == 410
    assert LinkError("", code=LinkError.INVALID).status == 404
    assert LinkError("", code=LinkError.NOT_FOUND).status == 404


def test_revoking_rotates_the_nonce_and_records_who_and_why(make_authentication):
    authentication = make_authentication()
    token = token_of(authentication)
    nonce = authentication.link_nonce

    link_tokens.revoke_links(authentication, actor="admin", reason="Testing")

    authentication.refresh_from_db()
    assert authentication.link_nonce != nonce
    assert code_of(token) == LinkError.REVOKED
    event = authentication.events.get(kind=Event.Kind.LINK_REVOKED)
    assert (event.actor, event.detail) == ("admin", "Testing")
    assert (
        link_tokens.authentication_for_link(token_of(authentication)).authentication
        == authentication
    )


def test_service_to_service_and_deleted_authentications_have_no_link(make_authentication):
    service = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    with pytest.raises(ValueError):
        link_tokens.authorization_url(service)
    user = make_authentication()
    token = token_of(user)
    user.kind = Authentication.Kind.SERVICE_TO_SERVICE
    user.save()

    assert code_of(token) == LinkError.NOT_FOUND
    user.delete()
    assert code_of(token) == LinkError.NOT_FOUND


# --- the admin ----------------------------------------------------------------------------


def staff(*, authorize):
    user = User.objects.create_user("staffer", "staffer@example.com", "pw", is_staff=True)
    codenames = ["view_authentication", "change_authentication"]
    if authorize:
        codenames.append("authorize_authentication")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_the_change_page_shows_the_link_with_a_copy_button_and_its_expiry(
    admin_client, make_authentication
):
    authentication = make_authentication()

    page = admin_client.get(admin_change_url(authentication)).content.decode()

    assert "Authorization URL" in page
    assert 'id="bc-authorization-url"' in page
    assert 'data-copy-target="bc-authorization-url"' in page
    assert "/authentications/authorize/" in page
    expires = timezone.localtime(timezone.now() + timedelta(days=7))
    assert formats.date_format(expires, "DATE_FORMAT") in page  # As the admin writes dates.
    assert "Regenerate link" in page and "Email Authorization URL" in page
    assert authentication.client_secret not in page


@pytest.mark.parametrize(
    "fields",
    # Service-to-service has an Admin consent URL instead (tests/signin/test_admin_consent.py),
    # once its secret is there.
    [{"kind": Authentication.Kind.SERVICE_TO_SERVICE, "client_secret": ""}, {"client_secret": ""}],
    ids=["service-to-service", "no-secret"],
)
def test_no_link_until_the_authentication_can_use_one(admin_client, make_authentication, fields):
    authentication = make_authentication(**fields)

    page = admin_client.get(admin_change_url(authentication)).content.decode()

    assert "bc-authorization-url" not in page
    assert "/authentications/authorize/" not in page
    assert "Regenerate link" not in page


def test_staff_without_the_authorize_permission_see_no_link(client, make_authentication):
    authentication = make_authentication()
    client.force_login(staff(authorize=False))

    page = client.get(admin_change_url(authentication))

    assertNotContains(page, "/authentications/authorize/")
    assertNotContains(page, "Regenerate link")


def regenerate_url(authentication):
    return admin_change_url(authentication).replace("change/", "link/regenerate/")


def test_regenerate_link_revokes_every_earlier_link(admin_client, make_authentication):
    authentication = make_authentication()
    token = token_of(authentication)

    response = admin_client.post(regenerate_url(authentication), follow=True)

    assert response.redirect_chain[-1][0] == admin_change_url(authentication)
    assert "every earlier link no longer works" in response.content.decode()
    assert code_of(token) == LinkError.REVOKED
    assert authentication.events.filter(kind=Event.Kind.LINK_REVOKED).count() == 1


def test_regenerate_link_refuses_get_and_staff_without_permission(client, make_authentication):
    authentication = make_authentication()
    nonce = authentication.link_nonce
    client.force_login(staff(authorize=False))

    assert client.get(regenerate_url(authentication)).status_code == 405
    assert client.post(regenerate_url(authentication)).status_code == 403
    authentication.refresh_from_db()
    assert authentication.link_nonce == nonce
    assert not authentication.events.exists()


def test_regenerate_link_for_service_to_service_is_a_message(admin_client, make_authentication):
    authentication = make_authentication(
        kind=Authentication.Kind.SERVICE_TO_SERVICE, client_secret=""
    )
    nonce = authentication.link_nonce

    response = admin_client.post(regenerate_url(authentication), follow=True)

    assert "Only a user-impersonation authentication" in response.content.decode()
    authentication.refresh_from_db()
    assert authentication.link_nonce == nonce


@pytest.mark.parametrize(
    "change",
    [
        {"client_secret": "another-secret-value"},
        {"client_id": "11111111-2222-3333-4444-555555555555"},
        {"tenant_id": "contoso.onmicrosoft.com"},
    ],
    ids=["secret", "client-id", "tenant"],
)
def test_changing_the_credentials_revokes_links(admin_client, make_authentication, change):
    authentication = make_authentication()
    token = token_of(authentication)

    response = admin_client.post(
        admin_change_url(authentication), change_form_data(authentication, **change, _save="1")
    )

    assert response.status_code == 302
    assert code_of(token) == LinkError.REVOKED
    assert authentication.events.filter(kind=Event.Kind.LINK_REVOKED).exists()


def test_renaming_keeps_links_working(admin_client, make_authentication):
    authentication = make_authentication()
    token = token_of(authentication)

    admin_client.post(
        admin_change_url(authentication),
        change_form_data(authentication, name="Renamed", _save="1"),
    )

    assert link_tokens.authentication_for_link(token).authentication.name == "Renamed"
