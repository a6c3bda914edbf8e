"""Encrypted columns: `fernet_fields`, and rows whose key is missing that still load.

Keys come from FERNET_KEYS (the first encrypts, all decrypt). A value encrypted with a key
that is no longer listed cannot be read. Raising while the row is loaded would break every
queryset that contains it (the admin list, the cron run), so such a value loads as the
`Undecryptable` marker instead: empty, so nothing can use it as a secret, and never written
back, so the ciphertext still decrypts once the key is put back.
"""

from cryptography.fernet import InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db.models import F
from django.dispatch import receiver
from fernet_fields import EncryptedTextField as _FernetTextField

_KEY_CACHES = ("keys", "fernet_keys", "fernet")

KEY_MISSING = (
    "This authentication's stored secrets cannot be decrypted: the key that encrypted them "
    "is not in FERNET_KEYS. Put that key back in FERNET_KEYS (after the current one) and run "
    "`manage.py rotate_encryption_keys`, or disconnect it and enter the client secret again."
)


class DecryptionError(ImproperlyConfigured):
    """A stored secret cannot be decrypted with any key in FERNET_KEYS."""


class Undecryptable(str):
    """The value of an encrypted column that no key in FERNET_KEYS decrypts.

    An empty, falsy string, so code that checks "is a secret stored?" says no; saving it
    keeps the stored ciphertext (see `EncryptedTextField.pre_save`).
    """

    def __new__(cls, *args):
        return super().__new__(cls, "")

    def __repr__(self):
        return "<undecryptable>"

    def __reduce__(self):
        return (Undecryptable, ())


class EncryptedTextField(_FernetTextField):
    def from_db_value(self, value, expression, connection, *args):
        try:
            return super().from_db_value(value, expression, connection, *args)
        except InvalidToken:
            return Undecryptable()

    def pre_save(self, model_instance, add):
        """Leave an undecryptable column as it is stored: the old key may come back."""
        value = super().pre_save(model_instance, add)
        if isinstance(value, Undecryptable) and not add:
            return F(self.attname)
        return value

    def get_db_prep_save(self, value, connection):
        if hasattr(value, "as_sql"):
            return value  # An expression (the column itself, from pre_save): nothing to encrypt.
        if isinstance(value, Undecryptable):
            # Reached by QuerySet.update() or an insert: nothing to keep, refuse.
            raise DecryptionError(
                f"Refusing to write {self.model._meta.label}.{self.name}: it could not be "
                "decrypted with FERNET_KEYS when it was loaded."
            )
        return super().get_db_prep_save(value, connection)

    def decrypts(self, ciphertext):
        """Whether any key in FERNET_KEYS decrypts `ciphertext`."""
        try:
            self.fernet.decrypt(bytes(ciphertext))
        except InvalidToken:
            return False
        return True

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


def undecryptable_fields(instance):
    """Names of `instance`'s loaded encrypted columns that no key in FERNET_KEYS decrypts."""
    return [
        field.name
        for field in instance._meta.concrete_fields
        if isinstance(instance.__dict__.get(field.attname), Undecryptable)
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
