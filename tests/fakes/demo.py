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

from authentications.connections.models import Authentication  # noqa: E402
from authentications.endpoints.models import Endpoint  # noqa: E402
from authentications.kit.validators import LOOPBACK_HOSTS  # noqa: E402

from .admin_consent import FABRIKAM_ADMIN, FABRIKAM_TENANT_ID, FABRIKAM_USER  # noqa: E402
from .bc import FakeBusinessCentral  # noqa: E402
from .bc_entra_applications import PATH as ENTRA_APPLICATIONS_PATH  # noqa: E402
from .entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID  # noqa: E402
from .portal import PATH as PORTAL_PATH  # noqa: E402

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
DEMO_AUTHENTICATION = "Demo (fake Microsoft)"
DEMO_CONSENT_AUTHENTICATION = "Demo customer (admin consent)"
DEMO_CERTIFICATE_AUTHENTICATION = "Demo certificate (fake Microsoft)"
DEMO_ENDPOINT = "Demo customers"
# The other demo endpoints: one per entity set the fake BC serves (see bc_entities).
DEMO_ENDPOINTS = {
    DEMO_ENDPOINT: ("customers", "number,displayName,city,email"),
    "Demo vendors": ("vendors", "number,displayName,city,email,balance"),
    "Demo items": ("items", "number,displayName,inventory,unitPrice,unitCost"),
    "Demo sales orders": (
        "salesOrders",
        "number,orderDate,customerName,status,totalAmountIncludingTax",
    ),
    "Demo sales order lines": (
        "salesOrderLines",
        "documentId,sequence,lineObjectNumber,description,quantity,amountIncludingTax",
    ),
}


class DemoRefused(Exception):
    """The settings are not a demo's: nothing was created."""


def set_up_demo():
    """Migrate, then create (or reset) the demo user and authentication; returns the banner."""
    check_demo_settings()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    with transaction.atomic():
        create_demo_user()
        authentication = create_demo_authentication()
        customer = create_demo_consent_authentication()
        with_certificate = create_certificate_demo_authentication()
        create_demo_endpoints(authentication)
    return (
        welcome(authentication)
        + welcome_admin_consent(customer)
        + certificate_welcome(with_certificate)
    )


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
        f"  Then, under Endpoints, open “{DEMO_ENDPOINT}” and click “Test endpoint”; the",
        "  fake BC also serves vendors, items, salesOrders and salesOrderLines (one demo",
        "  endpoint each).",
        "",
        "  Change notifications: Business Central > Subscriptions > Add: this authentication,",
        "  company “CRONUS USA, Inc.”, entity “customers”, Save (the fake BC shakes hands",
        "  with this site). Then, in a second terminal, `make demo-change` changes a customer",
        "  in the fake BC and the notification arrives under Change notifications",
        f"  ({admin_url}authentications/changenotification/); `make demo-worker` delivers it.",
        "",
    ]
    return "\n".join(lines)


def welcome_admin_consent(customer):
    """How to onboard a customer's tenant with the Admin consent URL, against the fake."""
    change_url = (
        f"{settings.PUBLIC_BASE_URL}/admin/authentications/authentication/{customer.pk}/change/"
    )
    lines = [
        "Onboarding a customer's tenant (admin consent):",
        f"  Open “{customer.name}” ({change_url}):",
        "  service-to-service, its tenant left empty. Copy its Admin consent URL into a private",
        "  window, press “Grant admin consent with Microsoft” and sign in as",
        f"  {FABRIKAM_ADMIN} ({FABRIKAM_USER} is no administrator: try it too).",
        "  You see “Admin consent granted, access token received”; the tenant is stored.",
        "  “Test connection” then says the Microsoft Entra Applications card is missing: add",
        f"  tenant {FABRIKAM_TENANT_ID} and client ID {CLIENT_ID} at",
        f"  {settings.BC_API_HOST}{ENTRA_APPLICATIONS_PATH} and test again.",
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
    return reset_demo_authentication(
        DEMO_AUTHENTICATION,
        kind=Authentication.Kind.USER_IMPERSONATION,
        tenant_id=TENANT_ID,
        base_url=f"{settings.BC_API_HOST}/v2.0/{TENANT_ID}/Production/api/v2.0",
    )


def create_demo_consent_authentication():
    """A service-to-service connection for the fake's customer tenant, awaiting consent."""
    return reset_demo_authentication(
        DEMO_CONSENT_AUTHENTICATION,
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        tenant_id="",  # The consent is asked of "organizations"; it stores the tenant.
        base_url=f"{settings.BC_API_HOST}/v2.0/{FABRIKAM_TENANT_ID}/Production/api/v2.0",
    )


def reset_demo_authentication(name, **connection):
    """The authentication `name` with the fake's app registration, not connected."""
    authentication = Authentication.objects.filter(name=name).first() or Authentication(name=name)
    fields = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **connection,
        "access_token": "",
        "refresh_token": "",
        "access_token_expires_at": None,
        "status": Authentication.Status.NOT_CONNECTED,
        "last_error": "",
        "last_error_code": "",
    }
    for field, value in fields.items():
        setattr(authentication, field, value)
    authentication.full_clean()
    authentication.save()
    return authentication


def create_certificate_demo_authentication():
    """The same app registration, set to sign with a certificate that is yet to be made."""
    Authentication.objects.filter(name=DEMO_CERTIFICATE_AUTHENTICATION).delete()
    authentication = Authentication(
        name=DEMO_CERTIFICATE_AUTHENTICATION,
        kind=Authentication.Kind.USER_IMPERSONATION,
        credential_type=Authentication.Credential.CERTIFICATE,
        client_id=CLIENT_ID,
        tenant_id=TENANT_ID,
        base_url=f"{settings.BC_API_HOST}/v2.0/{TENANT_ID}/Production/api/v2.0",
    )
    authentication.full_clean()
    authentication.save()
    return authentication


def certificate_welcome(authentication):
    change_url = (
        f"{settings.PUBLIC_BASE_URL}/admin/authentications/authentication/"
        f"{authentication.pk}/change/"
    )
    lines = [
        f"Certificates instead of client secrets: open “{authentication.name}” ({change_url}),",
        "  click “Generate certificate”, then “.pem” to download it; open the fake Entra's",
        f"  Certificates & secrets page ({settings.BC_AUTHORITY_HOST}{PORTAL_PATH}), paste",
        "  the file's text and click Add; back on the connection click “Save” and Accept.",
        "",
    ]
    return "\n".join(lines)


def create_demo_endpoints(authentication):
    """GET endpoints over the fake's first company, one per entity set it serves, ready to
    test once signed in."""
    company = FakeBusinessCentral().company  # The fake's companies are the same every run.
    endpoints = []
    for name, (entity, fields) in DEMO_ENDPOINTS.items():
        endpoint, _ = Endpoint.objects.update_or_create(
            name=name,
            defaults={
                "authentication": authentication,
                "method": Endpoint.Method.GET,
                "path": f"api/v2.0/companies({{company}})/{entity}",
                "company_id": company.id,
                "company_name": company.name,
                "params": [["$select", fields], ["$top", "100"]],
            },
        )
        endpoints.append(endpoint)
    return endpoints


def make_a_change():
    """Create a customer in the fake BC through the demo authentication: BC then notifies."""
    from authentications.connections.tokens import TokenError, bc_client
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
