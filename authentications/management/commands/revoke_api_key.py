"""Revoke an API key by its prefix: the next request made with it is refused (401)."""

from django.core.management.base import BaseCommand, CommandError

from authentications.api import keys


class Command(BaseCommand):
    help = "Revoke the API key with this prefix (the part of the key before the dot)."

    def add_arguments(self, parser):
        parser.add_argument(
            "prefix", nargs="?", default="", help="The key's prefix, as the admin lists it."
        )

    def handle(self, *args, prefix, **options):
        if not prefix.strip():
            raise CommandError("Give the prefix of the key to revoke (the part before the dot).")
        try:
            keys.revoke(prefix.strip())
        except LookupError as err:
            raise CommandError(str(err)) from None
        self.stdout.write(f"Revoked the API key {prefix.strip()}: it is refused from now on.")
