"""A row encrypted with a key no longer in FERNET_KEYS stops nothing else.

It loads (its secrets as an empty, falsy marker), is reported in one line that names
FERNET_KEYS and `rotate_encryption_keys`, shows in the admin as "Cannot decrypt: key
missing", can be disconnected, and its ciphertext is never overwritten: put the key back
and it decrypts again.
"""

import os
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from pytest_django.asserts import assertContains

from authentications.connections import tokens
from authentications.connections.models import Authentication, Event
from authentications.kit import fields
from authentications.kit.fields import DecryptionError
from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import admin_change_url, change_form_data, database_url, run_manage_py

# Worker threads and child processes open their own connections: rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = "/admin/authentications/authentication/"
DROPPED, CURRENT, WRONG = "key-dropped-too-early", "key-in-use-now", "key-nobody-used"


@pytest.fixture
def lost_and_healthy(settings, make_authentication, sign_in_at_microsoft):
    """Row "Lost" was encrypted with a key since dropped from FERNET_KEYS, "Healthy" was not.
    Both are due for a refresh."""
    settings.FERNET_KEYS = [DROPPED]
    lost = sign_in_at_microsoft(make_authentication(name="Lost"))
    settings.FERNET_KEYS = [CURRENT]
    healthy = sign_in_at_microsoft(make_authentication(name="Healthy"))
    Authentication.objects.filter(pk__in=[lost.pk, healthy.pk]).update(
        access_token_expires_at=timezone.now() + timedelta(seconds=60)
    )
    return lost, healthy


def raw_columns(authentication):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_secret, access_token, refresh_token FROM "
            "authentications_authentication WHERE id = %s",
            [authentication.pk],
        )
        return tuple(bytes(value) for value in cursor.fetchone())


def assert_names_the_fix(text):
    assert "FERNET_KEYS" in text and "rotate_encryption_keys" in text
    assert "\n" not in text.strip()


def refresh_tokens(*args):
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("refresh_tokens", *args, stdout=out)
    return out.getvalue(), caught.value


# --- the model --------------------------------------------------------------------------


def test_a_row_under_a_dropped_key_loads_with_a_falsy_marker(lost_and_healthy):
    lost, healthy = lost_and_healthy

    rows = {row.name: row for row in Authentication.objects.all()}

    assert rows["Lost"].cannot_decrypt
    assert isinstance(rows["Lost"].client_secret, fields.Undecryptable)
    assert not rows["Lost"].client_secret and not rows["Lost"].refresh_token
    assert not rows["Healthy"].cannot_decrypt
    assert rows["Healthy"].refresh_token == healthy.refresh_token


def test_saving_a_loaded_row_keeps_the_ciphertext_so_the_key_can_come_back(
    lost_and_healthy, settings
):
    lost, _ = lost_and_healthy
    before = raw_columns(lost)
    row = Authentication.objects.get(pk=lost.pk)

    row.name = "Lost, renamed"
    row.save()

    assert raw_columns(lost) == before
    settings.FERNET_KEYS = [CURRENT, DROPPED]
    restored = Authentication.objects.get(pk=lost.pk)
    assert restored.name == "Lost, renamed"
    assert restored.client_secret == CLIENT_SECRET
    assert restored.refresh_token == lost.refresh_token


def test_the_marker_can_never_be_written(lost_and_healthy):
    lost, healthy = lost_and_healthy
    marker = Authentication.objects.get(pk=lost.pk).client_secret

    with pytest.raises(DecryptionError):
        Authentication.objects.filter(pk=healthy.pk).update(client_secret=marker)
    copy = Authentication.objects.get(pk=lost.pk)
    copy.pk, copy.name = None, "Copy"
    with pytest.raises(DecryptionError):
        copy.save()

    assert Authentication.objects.get(pk=healthy.pk).client_secret == CLIENT_SECRET
    assert not Authentication.objects.filter(name="Copy").exists()


# --- tokens and commands ----------------------------------------------------------------


def test_a_refresh_is_refused_with_a_message_naming_the_fix(lost_and_healthy, fake_microsoft):
    lost, _ = lost_and_healthy
    requests_before = len(fake_microsoft.entra.token_requests)

    with pytest.raises(tokens.TokenError) as caught:
        tokens.get_access_token(lost.pk)

    assert caught.value.code == "key_missing"
    assert_names_the_fix(caught.value.message)
    assert len(fake_microsoft.entra.token_requests) == requests_before


def test_refresh_tokens_refreshes_the_others_and_reports_the_row_in_one_line(
    lost_and_healthy, fake_microsoft
):
    lost, healthy = lost_and_healthy
    before = raw_columns(lost)

    output, error = refresh_tokens()

    assert error.returncode == 1
    assert "Healthy: refreshed" in output
    assert Authentication.objects.get(pk=healthy.pk).access_token != healthy.access_token
    (line,) = [line for line in output.splitlines() if line.startswith("Lost")]
    assert line.startswith("Lost: FAILED key_missing: ")
    assert_names_the_fix(line)
    assert "1 refreshed, 0 already fresh, 1 failed." in output
    assert raw_columns(lost) == before


def test_a_dry_run_reports_the_row_and_exits_1(lost_and_healthy, fake_microsoft):
    output, error = refresh_tokens("--dry-run")

    assert error.returncode == 1
    assert "Healthy: due" in output
    (line,) = [line for line in output.splitlines() if line.startswith("Lost")]
    assert_names_the_fix(line)
    assert fake_microsoft.entra.count("refresh_token") == 0


def test_bc_reports_the_row_in_one_line(lost_and_healthy):
    with pytest.raises(CommandError) as caught:
        call_command("bc", "Lost", "GET", "companies", stdout=StringIO())

    assert_names_the_fix(str(caught.value))


def test_rotation_skips_the_row_it_cannot_decrypt_and_says_so(lost_and_healthy, settings):
    lost, _ = lost_and_healthy
    before = raw_columns(lost)

    with pytest.raises(CommandError) as caught:
        call_command("rotate_encryption_keys", stdout=StringIO())

    assert_names_the_fix(str(caught.value))
    assert raw_columns(lost) == before
    settings.FERNET_KEYS = [CURRENT, DROPPED]
    call_command("rotate_encryption_keys", stdout=StringIO())
    settings.FERNET_KEYS = [CURRENT]
    assert Authentication.objects.get(pk=lost.pk).client_secret == CLIENT_SECRET


def manage(fake, *args, fernet_keys):
    """Run manage.py in a child process, as cron or a person at a shell would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BC_"))}
    env.update(
        DATABASE_URL=database_url(),
        SECRET_KEY=django_settings.SECRET_KEY,
        FERNET_KEYS=fernet_keys,
        PUBLIC_BASE_URL=django_settings.PUBLIC_BASE_URL,
        BC_AUTHORITY_HOST=fake.url,
        BC_API_HOST=fake.url,
        REQUESTS_CA_BUNDLE=str(fake.ca_path),
        EMAIL_URL="dummymail://",
        LOG_LEVEL="WARNING",
    )
    return run_manage_py(*args, env=env, timeout=120)


def test_refresh_tokens_in_a_real_process_prints_no_traceback(lost_and_healthy, fake_microsoft):
    _, healthy = lost_and_healthy

    result = manage(fake_microsoft, "refresh_tokens", fernet_keys=CURRENT)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == "CommandError: 1 of 2 refreshes failed."
    assert "Healthy: refreshed" in result.stdout
    assert_names_the_fix(next(line for line in result.stdout.splitlines() if "Lost" in line))


@pytest.mark.parametrize(
    "command",
    [
        ["refresh_tokens"],
        ["refresh_tokens", "--dry-run"],
        ["refresh_tokens", "--all", "--json"],
        ["bc", "Healthy", "GET", "companies"],
        ["rotate_encryption_keys"],
    ],
    ids=" ".join,
)
def test_a_wholly_wrong_key_is_one_line_and_a_non_zero_exit(
    lost_and_healthy, fake_microsoft, command
):
    result = manage(fake_microsoft, *command, fernet_keys=WRONG)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fake_microsoft.entra.count("refresh_token") == 0


# --- the admin --------------------------------------------------------------------------


def test_the_admin_list_and_change_page_show_the_row(admin_client, lost_and_healthy):
    lost, _ = lost_and_healthy

    listing = admin_client.get(LIST_URL)
    page = admin_client.get(admin_change_url(lost))

    assertContains(listing, "Cannot decrypt: key missing")
    assertContains(listing, "Healthy")
    assertContains(page, "Cannot decrypt: key missing")


def test_staff_can_disconnect_the_row_and_the_secret_stays(
    admin_client, lost_and_healthy, settings
):
    lost, _ = lost_and_healthy
    secret_before = raw_columns(lost)[0]

    response = admin_client.post(
        LIST_URL, {"action": "disconnect", "_selected_action": [lost.pk]}, follow=True
    )

    assert response.status_code == 200
    stored = Authentication.objects.get(pk=lost.pk)
    assert stored.access_token == "" and stored.refresh_token == ""
    assert stored.status == Authentication.Status.NOT_CONNECTED
    assert stored.events.filter(kind=Event.Kind.DISCONNECTED).exists()
    assert raw_columns(lost)[0] == secret_before
    settings.FERNET_KEYS = [CURRENT, DROPPED]
    assert Authentication.objects.get(pk=lost.pk).client_secret == CLIENT_SECRET


def test_saving_the_change_form_with_a_blank_secret_keeps_the_ciphertext(
    admin_client, lost_and_healthy, settings
):
    lost, _ = lost_and_healthy
    before = raw_columns(lost)

    response = admin_client.post(
        admin_change_url(lost), change_form_data(lost, name="Lost, renamed", _save="Save")
    )

    assert response.status_code == 302
    assert raw_columns(lost) == before
    settings.FERNET_KEYS = [CURRENT, DROPPED]
    restored = Authentication.objects.get(pk=lost.pk)
    assert restored.name == "Lost, renamed"
    assert restored.client_secret == CLIENT_SECRET


def test_changing_the_bc_url_with_a_blank_secret_keeps_the_ciphertext(
    admin_client, lost_and_healthy, settings
):
    lost, _ = lost_and_healthy
    secret_before = raw_columns(lost)[0]
    new_url = lost.base_url.replace("/Production/", "/Sandbox/")

    response = admin_client.post(
        admin_change_url(lost), change_form_data(lost, base_url=new_url, _save="Save")
    )

    assert response.status_code == 302
    assert raw_columns(lost)[0] == secret_before
    settings.FERNET_KEYS = [CURRENT, DROPPED]
    restored = Authentication.objects.get(pk=lost.pk)
    assert restored.base_url == new_url
    assert restored.client_secret == CLIENT_SECRET


def test_typing_a_new_secret_replaces_the_undecryptable_one(admin_client, lost_and_healthy):
    lost, _ = lost_and_healthy

    response = admin_client.post(
        admin_change_url(lost), change_form_data(lost, client_secret="typed-again", _save="Save")
    )

    assert response.status_code == 302
    assert Authentication.objects.get(pk=lost.pk).client_secret == "typed-again"


# --- a sign-in in flight when the key went -----------------------------------------------


def test_a_sign_in_started_under_a_dropped_key_ends_on_a_clear_page(
    admin_client, make_authentication, sign_in, settings
):
    settings.FERNET_KEYS = [DROPPED]
    authentication = make_authentication(name="Lost")
    started = admin_client.post(admin_change_url(authentication).replace("change/", "sign-in/"))
    before = raw_columns(authentication)
    settings.FERNET_KEYS = [CURRENT]

    answer = sign_in(admin_client, started)

    assertContains(answer, "Start the sign-in again", status_code=400)
    assert raw_columns(authentication) == before
    assert Authentication.objects.get(pk=authentication.pk).status == "not_connected"
