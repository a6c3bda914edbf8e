"""Prepare the `make demo` site: a demo superuser and one authentication for the fake Microsoft.

    python -m tests.fakes.demo     (what `make demo` runs, with the demo's settings in the env)
    python -m tests.fakes.demo change     (`make demo-change`: a change in the fake BC)

It lives beside the fake Microsoft, not in the product: it plants the fake's app registration,
and the product runs without `tests/`. Development only: it refuses to run with DEBUG off or
against anything but a fake Microsoft on this machine, so it can never plant known
credentials in a real deployment.
"""

import os
import sys
from urllib.parse import urlsplit

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcconnect.settings")
django.setup()

from django.conf import settings  # noqa: E402 - Django is set up first
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from authentications.models import Authentication  # noqa: E402
from authentications.validators import LOOPBACK_HOSTS  # noqa: E402

from .entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID  # noqa: E402

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
DEMO_AUTHENTICATION = "Demo (fake Microsoft)"


class DemoRefused(Exception):
    """The settings are not a demo's: nothing was created."""


def set_up_demo():
    """Migrate, then create (or reset) the demo user and authentication; returns the banner."""
    check_demo_settings()
    call_command("migrate", interactive=False, verbosity=0)
    with transaction.atomic():
        create_demo_user()
        authentication = create_demo_authentication()
    return welcome(authentication)


def welcome(authentication):
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
        "  Change notifications: Business Central > Subscriptions > Add: this authentication,",
        "  company “CRONUS USA, Inc.”, entity “customers”, Save (the fake BC shakes hands",
        "  with this site). Then, in a second terminal, `make demo-change` changes a customer",
        "  in the fake BC and the notification arrives under Change notifications",
        f"  ({admin_url}authentications/changenotification/); `make demo-worker` delivers it.",
        "",
    ]
    return "\n".join(lines)


def check_demo_settings():
    if not settings.DEBUG:
        raise DemoRefused(
            "The demo creates a superuser with a known password: it refuses to run with DEBUG off."
        )
    for name in ("BC_AUTHORITY_HOST", "BC_API_HOST"):
        host = urlsplit(getattr(settings, name)).hostname
        if host not in LOOPBACK_HOSTS:
            raise DemoRefused(
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


def make_a_change():
    """Create a customer in the fake BC through the demo authentication: BC then notifies."""
    from authentications.tokens import TokenError, bc_client
    from bcconnect.client import BusinessCentralError

    check_demo_settings()
    authentication = Authentication.objects.filter(name=DEMO_AUTHENTICATION).first()
    if authentication is None:
        raise DemoRefused("Run `make demo` first.")
    client = bc_client(authentication)
    try:
        company = client.companies()[0]
        customer = client.company(company["id"]).post("customers", {"displayName": "Demo change"})
    except (TokenError, BusinessCentralError) as err:
        raise DemoRefused(f"{err.message} (sign in on the authentication's page first)") from err
    return (
        f"Created customer {customer['number']} “Demo change” in {company['name']}; the fake "
        f"BC notifies subscribers shortly. See {settings.PUBLIC_BASE_URL}/admin/"
        "authentications/changenotification/"
    )


def main():
    try:
        print(make_a_change() if sys.argv[1:] == ["change"] else set_up_demo())
    except DemoRefused as err:
        sys.exit(f"make demo: {err}")


if __name__ == "__main__":
    main()
