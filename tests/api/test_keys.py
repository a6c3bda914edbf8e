"""API keys: stored hashed, shown once, named by their prefix; the commands that make them."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from authentications.api import keys
from authentications.api.models import ApiKey
from tests.helpers import child_env, run_manage_py


def test_a_key_is_stored_only_as_its_hash(make_key, connected_row):
    key, plaintext = make_key(connected_row)

    prefix, _, secret = plaintext.partition(".")
    assert key.prefix == prefix and len(secret) == 32
    stored = ApiKey.objects.values().get(pk=key.pk)
    assert all(secret not in str(value) for value in stored.values())
    assert stored["hashed_key"].startswith("sha512$$")


def test_a_key_is_found_by_its_plaintext_and_refused_when_changed(make_key, connected_row):
    key, plaintext = make_key(connected_row)

    assert keys.find_key(plaintext) == key
    assert keys.find_key(plaintext[:-1] + ("x" if plaintext[-1] != "x" else "y")) is None
    assert keys.find_key(key.prefix) is None
    assert keys.find_key("") is None


def test_revoked_and_expired_keys_are_not_found(make_key, connected_row):
    revoked, revoked_plain = make_key(connected_row)
    expired, expired_plain = make_key(connected_row)
    keys.revoke(revoked.prefix)
    ApiKey.objects.filter(pk=expired.pk).update(expiry_date=timezone.now() - timedelta(seconds=1))

    assert keys.find_key(revoked_plain) is None
    assert keys.find_key(expired_plain) is None


def test_a_key_needs_authentications_unless_it_has_all(db):
    with pytest.raises(keys.KeyRefused):
        keys.create_key(name="No access", scopes=["tokens"])


# --- the commands ---------------------------------------------------------------------------


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def test_create_api_key_prints_the_key_alone_on_the_last_line(connected_row, make_authentication):
    other = make_authentication(name="BC sandbox")

    output = run(
        "create_api_key",
        "--name",
        "Storefront",
        "--scopes",
        "tokens,bc.read",
        "--authentications",
        f"{connected_row.name},{other.name}",
        "--expires-in-days",
        "30",
    )

    plaintext = output.rstrip("\n").splitlines()[-1]
    key = keys.find_key(plaintext)
    assert key.name == "Storefront"
    assert key.scopes == ["tokens", "bc.read"]
    assert set(key.authentications.all()) == {connected_row, other}
    assert timedelta(days=29) < key.expiry_date - timezone.now() <= timedelta(days=30)
    assert key.prefix in output.splitlines()[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scopes", "tokens", "--authentications", "BC production"], "--name is required"),
        (["--name", "x", "--scopes", "tokens,admin", "--authentications", "BC production"],
         "Unknown scope admin"),
        (["--name", "x", "--scopes", "", "--authentications", "BC production"],
         "at least one scope"),
        (["--name", "x", "--scopes", "tokens", "--authentications", "Nope"],
         "No authentication named 'Nope'"),
        (["--name", "x", "--scopes", "tokens"], "--authentications is required"),
        (["--name", "x", "--scopes", "tokens", "--authentications", "BC production",
          "--expires-in-days", "soon"], "--expires-in-days must be"),
        (["--name", "x", "--scopes", "tokens", "--authentications", "BC production",
          "--expires-in-days", "0"], "--expires-in-days must be"),
    ],
)  # fmt: skip
def test_create_api_key_refuses_bad_arguments_and_makes_nothing(connected_row, args, message):
    with pytest.raises(CommandError, match=message) as refused:
        run("create_api_key", *args)

    assert "\n" not in str(refused.value)
    assert not ApiKey.objects.exists()


def test_revoke_api_key_revokes_by_prefix(make_key, connected_row):
    key, plaintext = make_key(connected_row)

    output = run("revoke_api_key", key.prefix)

    assert key.prefix in output
    assert keys.find_key(plaintext) is None


@pytest.mark.parametrize("prefix", ["unknown1", ""])
def test_revoke_api_key_refuses_an_unknown_prefix(db, prefix):
    with pytest.raises(CommandError, match="prefix"):
        run("revoke_api_key", prefix)


def test_the_commands_exit_non_zero_with_one_line_from_the_shell(connected_row):
    result = run_manage_py("create_api_key", "--name", "x", "--scopes", "nope", env=child_env())

    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_the_audit_is_kept_as_long_as_the_events(make_key, connected_row, settings):
    from authentications.api.models import ApiCall

    settings.BC_EVENT_RETENTION_DAYS = 30
    key, _ = make_key(connected_row)
    now = timezone.now()
    for days in (31, 29):
        ApiCall.objects.create(
            at=now - timedelta(days=days), key=key, key_prefix=key.prefix, method="GET",
            path="/api/v1/authentications/", status=200, duration_ms=1,
        )  # fmt: skip

    output = run("purge_history")

    assert "1 API call of the audit" in output
    assert list(ApiCall.objects.values_list("at", flat=True)) == [now - timedelta(days=29)]
