from django.core.management.base import BaseCommand, CommandError

from authentications.kit.keys import rotate_encryption_keys


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
        counts = rotate_encryption_keys(batch_size=batch_size)
        for count in counts:
            current = count.rows - count.rotated - count.undecryptable
            lost = f", {count.undecryptable} cannot be decrypted" if count.undecryptable else ""
            self.stdout.write(
                f"{count.model}: {count.rotated} of {count.rows} rows re-encrypted "
                f"({current} already on the current key{lost})."
            )
        if lost := [count for count in counts if count.undecryptable]:
            raise CommandError(_undecryptable_message(lost))
        self.stdout.write(self.style.SUCCESS("Done: the older keys can now be removed."))


def _undecryptable_message(counts):
    total = sum(count.undecryptable for count in counts)
    where = ", ".join(f"{count.model}: {count.undecryptable}" for count in counts)
    return (
        f"FERNET_KEYS cannot decrypt {total} row(s) ({where}): the key that encrypted them "
        "is missing. "
        "They were left as they are; put that key back in FERNET_KEYS (after the current one) "
        "and run `manage.py rotate_encryption_keys` again before removing any key."
    )
