"""What Save in the admin goes on to: a sign-in, an app-only token, or nothing.

`changes.after_save` decides it from the fields the save changed and what is stored.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from authentications.connections.changes import AfterSave, after_save
from authentications.connections.models import Authentication
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID

USER = Authentication.Kind.USER_IMPERSONATION
SERVICE = Authentication.Kind.SERVICE_TO_SERVICE


def stored(kind, *, token_minutes_left=None, client_secret=CLIENT_SECRET):
    """An authentication as Save stored it, with a token valid this much longer (or none)."""
    authentication = Authentication(
        name="BC",
        kind=kind,
        client_id=CLIENT_ID,
        tenant_id=TENANT_ID,
        client_secret=client_secret,
        base_url="https://api.businesscentral.dynamics.com/v2.0/t/Production/api/v2.0",
    )
    if token_minutes_left is not None:
        authentication.access_token = "at"
        authentication.access_token_expires_at = timezone.now() + timedelta(
            minutes=token_minutes_left
        )
    return authentication


def decide(authentication, changed=(), *, continue_editing=True, may_sign_in=True):
    return after_save(
        authentication,
        changed_fields=set(changed),
        continue_editing=continue_editing,
        may_sign_in=may_sign_in,
    )


@pytest.mark.parametrize("field", ["kind", "client_id", "tenant_id", "client_secret", "base_url"])
def test_a_changed_connection_is_signed_in_again_though_its_token_is_valid(field):
    assert decide(stored(USER, token_minutes_left=60), [field]) is AfterSave.SIGN_IN


def test_without_a_valid_token_save_signs_in():
    assert decide(stored(USER)) is AfterSave.SIGN_IN
    assert decide(stored(USER, token_minutes_left=-1)) is AfterSave.SIGN_IN


def test_a_valid_grant_for_the_same_connection_is_kept():
    assert decide(stored(USER, token_minutes_left=60), ["name", "expected_user"]) is (
        AfterSave.NOTHING
    )


def test_save_and_close_or_no_authorize_permission_starts_no_sign_in():
    changed = stored(USER, token_minutes_left=60)

    assert decide(changed, ["base_url"], continue_editing=False) is AfterSave.NOTHING
    assert decide(changed, ["base_url"], may_sign_in=False) is AfterSave.NOTHING


def test_service_to_service_acquires_a_token_when_changed_or_due_even_on_save_and_close():
    fresh = stored(SERVICE, token_minutes_left=60)

    assert decide(fresh, ["client_secret"], continue_editing=False) is AfterSave.ACQUIRE_TOKEN
    assert decide(stored(SERVICE, token_minutes_left=1), may_sign_in=False) is (
        AfterSave.ACQUIRE_TOKEN
    )
    assert decide(fresh, ["name"]) is AfterSave.NOTHING


def test_service_to_service_without_a_secret_acquires_nothing():
    assert decide(stored(SERVICE, client_secret=""), ["client_id"]) is AfterSave.NOTHING
