"""When Entra refuses the certificate in use, the status names the certificate, not a client
secret the connection does not use: in the list, on the change page and in the email."""

from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections import credentials, tokens
from authentications.connections.models import Authentication
from tests.helpers import admin_change_url, fresh, key_pair, use_certificate

pytestmark = pytest.mark.django_db(transaction=True)  # refresh_tokens runs in threads.

LIST_URL = "/admin/authentications/authentication/"
SECRET_LABEL = Authentication.Status.SECRET_INVALID.label


@pytest.fixture
def refused_certificate(make_authentication, fake_microsoft, notify_list):
    authentication = make_authentication(
        name="Refused", kind=Authentication.Kind.SERVICE_TO_SERVICE
    )
    use_certificate(fake_microsoft, authentication, key_pair(), uploaded=False)
    with pytest.raises(tokens.TokenError):
        tokens.refresh(authentication, needed=lambda row: True)
    return fresh(authentication)


def test_the_list_and_change_page_say_the_certificate_was_refused(
    admin_client, refused_certificate
):
    for page in (LIST_URL, admin_change_url(refused_certificate)):
        response = admin_client.get(page)
        assertContains(response, credentials.CERTIFICATE_REFUSED)
        assertNotContains(response, SECRET_LABEL)


def test_the_email_says_the_certificate_was_refused(refused_certificate):
    [email] = mail.outbox

    assert credentials.CERTIFICATE_REFUSED.lower() in email.subject
    assert credentials.CERTIFICATE_REFUSED.lower() in email.body
    assert SECRET_LABEL.lower() not in email.subject + email.body


def test_refresh_tokens_says_the_certificate_was_refused(refused_certificate):
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("refresh_tokens", "--name", "Refused", stdout=out, stderr=StringIO())

    assert "Refused: FAILED AADSTS700027: Entra refused the certificate" in out.getvalue()
    assert "client secret" not in out.getvalue().lower()


def test_a_refused_secret_still_reads_as_a_secret(admin_client, make_authentication):
    authentication = make_authentication(
        name="Old secret", status=Authentication.Status.SECRET_INVALID
    )

    listing = admin_client.get(LIST_URL)

    assertContains(listing, f'<span class="bc-badge secret_invalid">{SECRET_LABEL}</span>')
    assertContains(admin_client.get(LIST_URL + "?status__exact=secret_invalid"), "Old secret")
    assert credentials.status_label(authentication) == SECRET_LABEL
