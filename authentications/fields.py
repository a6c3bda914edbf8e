"""Encrypted columns: `fernet_fields`, plus a readable error when a key is missing.

Keys come from FERNET_KEYS (the first encrypts, all decrypt). A row encrypted with a key
that is no longer listed cannot be read; say so by naming the setting, instead of a bare
`InvalidToken` whose traceback would show the ciphertext.
"""

from cryptography.fernet import InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from fernet_fields import EncryptedTextField as _FernetTextField

_KEY_CACHES = ("keys", "fernet_keys", "fernet")


class DecryptionError(ImproperlyConfigured):
    """A stored secret cannot be decrypted with any key in FERNET_KEYS."""


class EncryptedTextField(_FernetTextField):
    def from_db_value(self, value, expression, connection, *args):
        try:
            return super().from_db_value(value, expression, connection, *args)
        except InvalidToken:
            raise DecryptionError(
                f"FERNET_KEYS cannot decrypt {self.model._meta.label}.{self.name}: the key that "
                "encrypted it is not in FERNET_KEYS. Put the old key back (after the new one) "
                "and run `manage.py rotate_encryption_keys` before removing it."
            ) from None

    def is_current(self, ciphertext):
        """Whether `ciphertext` was encrypted with the first key (no rotation needed)."""
        first = self.fernet._fernets[0] if hasattr(self.fernet, "_fernets") else self.fernet
        try:
            first.decrypt(bytes(ciphertext))
        except InvalidToken:
            return False
        return True


def encrypted_fields():
    from django.apps import apps

    return [
        field
        for model in apps.get_app_config("authentications").get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, _FernetTextField)
    ]


def reset_key_caches():
    """Forget the keys each field cached, so a new FERNET_KEYS takes effect."""
    for field in encrypted_fields():
        for name in _KEY_CACHES:
            field.__dict__.pop(name, None)


@receiver(setting_changed)
def _fernet_keys_changed(*, setting, **kwargs):
    if setting in ("FERNET_KEYS", "SECRET_KEY", "FERNET_USE_HKDF"):
        reset_key_caches()
