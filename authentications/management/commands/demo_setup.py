"""Prepare the `make demo` site: a demo superuser and one authentication for the fake Microsoft.

Development only: it refuses to run with DEBUG off or against anything but a fake Microsoft
on this machine, so it can never plant known credentials in a real deployment.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from authentications.models import Authentication
from authentications.validators import LOOPBACK_HOSTS

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
DEMO_AUTHENTICATION = "Demo (fake Microsoft)"


class Command(BaseCommand):
    help = "Create the demo superuser and a demo authentication for the fake Microsoft."

    def handle(self, *args, **options):
        check_demo_settings()
        call_command("migrate", interactive=False, verbosity=0)
        with transaction.atomic():
            create_demo_user()
            authentication = create_demo_authentication()
        self.print_welcome(authentication)

    def print_welcome(self, authentication):
        admin_url = f"{settings.PUBLIC_BASE_URL}/admin/"
        change_url = f"{admin_url}authentications/authentication/{authentication.pk}/change/"
        lines = [
            "",
            "bcconnect demo, against the fake Microsoft at " + settings.BC_AUTHORITY_HOST,
            f"  Open:      {admin_url}",
            f"  Username:  {DEMO_USERNAME}",
            f"  Password:  {DEMO_PASSWORD}",
            f"  Then open “{authentication.name}” ({change_url})",
            "  and click “Sign in with Microsoft”. Your browser warns once about the fake's",
            f"  certificate ({settings.BC_AUTHORITY_HOST}): accept it, then click Accept.",
            "  You land back on the page with “Access token received”.",
            "",
        ]
        self.stdout.write("\n".join(lines))


def check_demo_settings():
    if not settings.DEBUG:
        raise CommandError(
            "The demo creates a superuser with a known password: it refuses to run with DEBUG off."
        )
    for name in ("BC_AUTHORITY_HOST", "BC_API_HOST"):
        host = urlsplit(getattr(settings, name)).hostname
        if host not in LOOPBACK_HOSTS:
            raise CommandError(
                f"The demo runs against the fake Microsoft on this machine, but {name} is "
                f"{getattr(settings, name)}. Use `make demo`."
            )


def create_demo_user():
    user, _ = get_user_model().objects.get_or_create(
        username=DEMO_USERNAME, defaults={"email": "demo@localhost"}
    )
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user


def create_demo_authentication():
    """The fake's app registration, not yet connected (each demo starts a fresh fake)."""
    from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID

    authentication = Authentication.objects.filter(
        name=DEMO_AUTHENTICATION
    ).first() or Authentication(name=DEMO_AUTHENTICATION)
    fields = {
        "kind": Authentication.Kind.USER_IMPERSONATION,
        "client_id": CLIENT_ID,
        "tenant_id": TENANT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": f"{settings.BC_API_HOST}/v2.0/{TENANT_ID}/Production/api/v2.0",
        "access_token": "",
        "refresh_token": "",
        "access_token_expires_at": None,
        "status": Authentication.Status.NOT_CONNECTED,
        "last_error": "",
        "last_error_code": "",
    }
    for name, value in fields.items():
        setattr(authentication, name, value)
    authentication.full_clean()
    authentication.save()
    return authentication
