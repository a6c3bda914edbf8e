"""Rotating FERNET_KEYS: prepend a new key, rotate, drop the old key, still decrypt."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from authentications.connections.models import Authentication
from authentications.connections.tokens import TokenError, get_access_token

pytestmark = pytest.mark.django_db

OLD, NEW = "old-fernet-key-for-tests", "new-fernet-key-for-tests"


def raw_secret(pk):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_secret FROM authentications_authentication WHERE id = %s", [pk]
        )
        return bytes(cursor.fetchone()[0])


@pytest.fixture
def stored(settings, make_authentication):
    settings.FERNET_KEYS = [OLD]
    return make_authentication(access_token="at-rotate-me", refresh_token="rt-rotate-me")


def test_after_rotation_the_old_key_can_be_removed(settings, stored, capsys):
    before = raw_secret(stored.pk)
    settings.FERNET_KEYS = [NEW, OLD]

    call_command("rotate_encryption_keys")
    settings.FERNET_KEYS = [NEW]

    output = capsys.readouterr().out
    assert "authentications.Authentication: 1 of 1 rows re-encrypted" in output
    assert raw_secret(stored.pk) != before
    reloaded = Authentication.objects.get(pk=stored.pk)
    assert reloaded.refresh_token == "rt-rotate-me"
    assert reloaded.client_secret == stored.client_secret


def test_rotation_is_safe_to_run_again(settings, stored, capsys):
    settings.FERNET_KEYS = [NEW, OLD]
    call_command("rotate_encryption_keys", batch_size=1)
    capsys.readouterr()

    call_command("rotate_encryption_keys", batch_size=1)

    assert "0 of 1 rows re-encrypted (1 already on the current key)" in capsys.readouterr().out


def test_a_missing_key_is_a_clear_error_naming_the_setting(settings, stored):
    settings.FERNET_KEYS = [NEW]  # The old key was dropped before rotating.

    reloaded = Authentication.objects.get(pk=stored.pk)  # Loading still works...
    with pytest.raises(TokenError) as caught:  # ...but nothing uses its secrets.
        get_access_token(reloaded)

    assert reloaded.cannot_decrypt
    message = caught.value.message
    assert "FERNET_KEYS" in message
    assert raw_secret(stored.pk).decode() not in message


def test_the_command_reports_a_missing_key_in_one_line(settings, stored):
    settings.FERNET_KEYS = [NEW]

    with pytest.raises(CommandError) as caught:
        call_command("rotate_encryption_keys")

    assert "FERNET_KEYS cannot decrypt" in str(caught.value)
    assert "\n" not in str(caught.value)
