"""No secret leaks along the admin consent: pages, emails, events and logs are searched.

Logging is at DEBUG while staff set up a customer's tenant, email the Admin consent URL,
an administrator refuses then grants it, and staff test the connection. Then the client
secret, every access token the fake Entra issued and the binding cookies are looked for in
everything produced (the OAuth state travels in URLs by design, and the test's own
browser logs them). The Admin consent URL is shown
to staff and emailed on purpose: its token is looked for in the logs and the history.
"""

import logging
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client

from authentications.connections import link_tokens
from authentications.connections.models import Authentication, Event
from tests.fakes.admin_consent import FABRIKAM_TENANT_ID, FABRIKAM_USER, consent_at_microsoft
from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import add_form_data, admin_change_url, email_parts, operator_text

pytestmark = pytest.mark.django_db

LOGGERS = ("authentications", "bcconnect", "msal", "requests", "urllib3", "django", "")


def test_no_secret_leaks_along_the_admin_consent(
    admin_client, fake_microsoft, caplog, notify_list, log_lines
):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    pages, cookies = [], set()
    add = admin_client.post(
        "/admin/authentications/authentication/add/",
        add_form_data(
            fake_microsoft,
            name="Fabrikam",
            kind="service_to_service",
            tenant_id="",
            base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
        ),
        follow=True,
    )
    pages.append(add)
    customer = Authentication.objects.get(name="Fabrikam")
    change = admin_change_url(customer)
    pages.append(
        admin_client.post(
            change.replace("change/", "link/email/"), {"recipients": "it@fabrikam.com"}, follow=True
        )
    )
    link_path = urlsplit(link_tokens.admin_consent_url(customer).url).path

    administrator = Client()
    pages.append(administrator.get(link_path))
    for how in ({"username": FABRIKAM_USER}, {}):  # Refused first, then granted.
        pressed = administrator.post(link_path)
        cookies |= {morsel.value for morsel in administrator.cookies.values() if morsel.value}
        path, params = consent_at_microsoft(fake_microsoft, pressed["Location"], **how)
        pages.append(administrator.get(path, params, follow=True))
    pages.append(admin_client.post(change.replace("change/", "test-connection/"), follow=True))
    pages.append(admin_client.get(change))

    for page in pages:
        assert page.status_code < 500
    customer.refresh_from_db()
    assert customer.tenant_id == FABRIKAM_TENANT_ID and customer.access_token
    produced = "\n".join(
        [
            *(page.content.decode() for page in pages),
            *(part for message in mail.outbox for part in email_parts(message)),
            operator_text(caplog, logs=log_lines(caplog)),
        ]
    )
    secrets = {CLIENT_SECRET, *fake_microsoft.entra.access_tokens, *cookies}
    assert len(cookies) >= 2 and len(fake_microsoft.entra.access_tokens) >= 1
    leaked = [secret[:12] for secret in secrets if secret in produced]
    assert not leaked
    link_token = link_path.rstrip("/").rsplit("/", 1)[1]
    assert link_token not in operator_text(caplog, logs=log_lines(caplog))
    assert Event.objects.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).exists()
