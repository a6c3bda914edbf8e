from django.core.management.base import BaseCommand, CommandError

from authentications.fields import DecryptionError
from authentications.keys import rotate_encryption_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret and token with the first key in FERNET_KEYS. "
        "Safe to interrupt and to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            counts = rotate_encryption_keys(batch_size=batch_size)
        except DecryptionError as err:
            raise CommandError(str(err)) from None
        for count in counts:
            self.stdout.write(
                f"{count.model}: {count.rotated} of {count.rows} rows re-encrypted "
                f"({count.rows - count.rotated} already on the current key)."
            )
        self.stdout.write(self.style.SUCCESS("Done: the older keys can now be removed."))
