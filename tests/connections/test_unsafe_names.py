"""Names with line breaks or other control characters: refused on input, harmless in email.

A newline in a name used to reach email subjects, where Django raises BadHeaderError: the
callback answered 500 after storing a grant, and cron runs crashed.
"""

from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from authentications import mail
from authentications.connections import link_tokens
from authentications.connections.models import Authentication
from tests.helpers import add_form_data

# refresh_tokens refreshes on worker threads, which must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = "/admin/authentications/authentication/add/"
UNSAFE_NAMES = [
    "BC\nproduction",
    "BC\r\nBcc: x@example.com",
    "BC\tproduction",
    "BC\x07production",
    "BC\u2028production",
]


@pytest.fixture
def legacy(make_authentication):
    """An authentication whose name got a newline before names were validated."""

    def make(**fields):
        authentication = make_authentication(**fields)
        Authentication.objects.filter(pk=authentication.pk).update(name="BC\nproduction")
        return Authentication.objects.get(pk=authentication.pk)

    return make


def assert_one_line_subjects(outbox):
    assert outbox
    for email in outbox:
        assert "BC production" in email.subject
        assert not any(char in email.subject for char in "\r\n\t")
        email.message()  # Builds the headers: raises BadHeaderError on a line break.


@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=repr)
def test_the_admin_refuses_a_name_with_control_characters(admin_client, fake_microsoft, name):
    response = admin_client.post(ADD_URL, add_form_data(fake_microsoft, name=name, button="_save"))

    assert response.status_code == 200
    assert "The name must not contain line breaks or other control characters." in (
        response.content.decode()
    )
    assert not Authentication.objects.exists()


@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=repr)
def test_the_model_refuses_a_name_with_control_characters(make_authentication, name):
    authentication = make_authentication()
    authentication.name = name

    with pytest.raises(ValidationError) as caught:
        authentication.full_clean()

    assert "name" in caught.value.message_dict


def test_ordinary_names_are_accepted(make_authentication):
    authentication = make_authentication(name="Contoso — BC «Production» (EU) #2")

    authentication.full_clean()


def test_every_subject_is_one_clean_line():
    assert mail.subject_line("“BC\r\nproduction”:\x00 needs\tsign-in ") == (
        "“BC production”: needs sign-in"
    )
    assert mail.subject_line("A\u2028B\x85C") == "A B C"


def test_the_callback_after_a_link_grant_emails_and_answers(
    legacy, sign_in, notify_list, mailoutbox
):
    authentication = legacy()
    person = Client()
    path = urlsplit(link_tokens.authorization_url(authentication).url).path

    answer = sign_in(person, person.post(path))

    assert answer.status_code == 303
    assert Authentication.objects.get(pk=authentication.pk).status == "connected"
    assert_one_line_subjects(mailoutbox)


def test_refresh_tokens_emails_a_broken_connection(
    legacy, sign_in_at_microsoft, notify_list, mailoutbox
):
    authentication = sign_in_at_microsoft(legacy())
    Authentication.objects.filter(pk=authentication.pk).update(
        refresh_token="fake-rt-unknown",
        access_token_expires_at=timezone.now() + timedelta(seconds=60),
    )

    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("refresh_tokens", stdout=out)

    assert caught.value.returncode == 1
    assert "production: FAILED AADSTS70008" in out.getvalue()
    stored = Authentication.objects.get(pk=authentication.pk)
    assert stored.status == Authentication.Status.NEEDS_SIGN_IN
    assert_one_line_subjects(mailoutbox)


def test_the_secret_reminder_is_delivered(legacy, notify_list, mailoutbox):
    authentication = legacy(client_secret_expires_on=timezone.localdate() + timedelta(days=5))

    out = StringIO()
    call_command("refresh_tokens", stdout=out)

    assert "warned (5 days left" in out.getvalue()
    assert_one_line_subjects(mailoutbox)
    assert Authentication.objects.get(pk=authentication.pk).secret_expiry_notified_days == 7
