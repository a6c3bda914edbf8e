"""Making, finding and revoking API keys: what the admin, the commands and the API share.

The key itself exists only in the return value of `create_key`; the database holds its
SHA-512 hash (djangorestframework-api-key's hasher: a key is 32 random characters, so a
fast hash is safe, and a check costs microseconds, not the 100 ms of a password hash).
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from authentications.api import key_reads
from authentications.api import scopes as api_scopes
from authentications.api.models import ApiKey

SCHEME = "Api-Key"
# The one answer for a missing, unknown, revoked or expired key: which one is not told.
KEY_REFUSED = "A valid API key is required: send Authorization: Api-Key <key>."


class KeyRefused(ValueError):
    """A key that cannot be made as asked; the message says why in one line."""


def create_key(
    *,
    name,
    owner=None,
    scopes,
    authentications=(),
    all_authentications=False,
    expires_in_days=None,
    rate_limit="",
):
    """Make a key; return it with its plaintext, which is never stored nor shown again."""
    scopes = api_scopes.parse(",".join(scopes))
    if not all_authentications and not authentications:
        raise KeyRefused("Give the authentications the key may use.")
    if expires_in_days is not None and expires_in_days < 1:
        raise KeyRefused("--expires-in-days must be 1 or more.")
    expiry = None
    if expires_in_days is not None:
        expiry = timezone.now() + timedelta(days=expires_in_days)
    with transaction.atomic():
        key, plaintext = ApiKey.objects.create_key(
            name=name,
            owner=owner,
            scopes=scopes,
            all_authentications=all_authentications,
            expiry_date=expiry,
            rate_limit=rate_limit,
        )
        key.authentications.set(authentications)
    return key, plaintext


def find_key(plaintext, *, authentication=None):
    """The usable key whose plaintext this is (not revoked, not expired), else None.

    One indexed read by prefix (the unique column), then the checks in Python: this runs
    on every call, so it stays the cheapest query there is. `authentication`: (pk, fields)
    of the authentication the call names, read in the same statement and kept on the key
    as `read_along` for `key_reads.usable_authentication`.
    """
    prefix, dot, _ = str(plaintext).partition(".")
    if not dot or not prefix or len(prefix) > 8:
        return None
    key, found = key_reads.read(prefix, authentication)
    if key is None or key.revoked or key.has_expired or not key.is_valid(plaintext):
        return None
    if authentication is not None:
        pk, fields = authentication
        key.read_along = ((pk, tuple(fields)), found)
    return key


def revoke(prefix):
    """Revoke the key named by `prefix`; LookupError when there is none."""
    updated = ApiKey.objects.filter(prefix=prefix).update(revoked=True)
    if not updated:
        raise LookupError(f"No API key with the prefix {prefix!r}.")
