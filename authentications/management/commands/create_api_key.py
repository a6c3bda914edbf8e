"""Make an API key from a script: the key is printed alone on the last line of stdout.

Every argument is checked before anything is made, and a bad one stops the command with
one readable line and exit status 1 (no usage dump: scripts log stderr as it is).
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from authentications.api import keys
from authentications.api import scopes as api_scopes
from authentications.connections.models import Authentication


class Command(BaseCommand):
    help = (
        "Create an API key for another service and print it (shown once). Example: "
        'create_api_key --name Storefront --scopes tokens,bc.read --authentications "BC '
        'production" --expires-in-days 90'
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="", help="What the key is for.")
        parser.add_argument(
            "--scopes",
            default="",
            help=f"Comma-separated, from: {', '.join(api_scopes.Scope.values)}.",
        )
        parser.add_argument(
            "--authentications",
            default="",
            help="Comma-separated names of the authentications the key may use.",
        )
        parser.add_argument("--expires-in-days", default="", help="Days until the key expires.")
        parser.add_argument("--owner", default="", help="Username of the staff user it is for.")

    def handle(self, *args, **options):
        name = options["name"].strip()
        if not name:
            raise CommandError("--name is required: say what the key is for.")
        try:
            scopes = api_scopes.parse(options["scopes"])
        except ValueError as err:
            raise CommandError(str(err)) from None
        authentications = self._authentications(options["authentications"])
        try:
            key, plaintext = keys.create_key(
                name=name,
                owner=self._owner(options["owner"]),
                scopes=scopes,
                authentications=authentications,
                expires_in_days=self._days(options["expires_in_days"]),
            )
        except keys.KeyRefused as err:
            raise CommandError(str(err)) from None
        expiry = key.expiry_date.strftime("%Y-%m-%d %H:%M UTC") if key.expiry_date else "never"
        self.stdout.write(
            f"Created API key “{key.name}” (prefix {key.prefix}): scopes {', '.join(scopes)}; "
            f"authentications {', '.join(a.name for a in authentications)}; expires {expiry}. "
            "The key is shown once, below:"
        )
        self.stdout.write(plaintext)

    @staticmethod
    def _authentications(text):
        names = [part.strip() for part in text.split(",") if part.strip()]
        if not names:
            raise CommandError("--authentications is required: the names the key may use.")
        found = {a.name: a for a in Authentication.objects.filter(name__in=names)}
        missing = [name for name in names if name not in found]
        if missing:
            raise CommandError(f"No authentication named {', '.join(map(repr, missing))}.")
        return [found[name] for name in dict.fromkeys(names)]

    @staticmethod
    def _days(text):
        if not text:
            return None
        if not text.isdigit() or int(text) < 1:
            raise CommandError("--expires-in-days must be a whole number of days, 1 or more.")
        return int(text)

    @staticmethod
    def _owner(username):
        if not username:
            return None
        owner = get_user_model().objects.filter(username=username, is_staff=True).first()
        if owner is None:
            raise CommandError(f"No staff user named {username!r}.")
        return owner
