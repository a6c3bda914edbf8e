"""Staff email the Authorization URL to the person with a Business Central login."""

import html
import re
import socket
import threading
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.utils import timezone
from pytest_django.asserts import assertContains

from authentications.connections import link_tokens
from authentications.connections.models import Authentication, AuthorizationRequest, Event
from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import admin_change_url

pytestmark = pytest.mark.django_db


def email_url(authentication):
    return admin_change_url(authentication).replace("change/", "link/email/")


@pytest.fixture
def sender(client):
    user = User.objects.create_user(
        "ann", "ann@example.com", "pw", first_name="Ann", last_name="Lee", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                "view_authentication",
                "change_authentication",
                "authorize_authentication",
            ]
        )
    )
    client.force_login(user)
    return client


def test_the_change_page_offers_to_email_the_link(sender, make_authentication):
    authentication = make_authentication()

    page = sender.get(admin_change_url(authentication)).content.decode()

    assert email_url(authentication) in page
    form = sender.get(email_url(authentication))
    assertContains(form, 'name="recipients"')
    assertContains(form, "Production")


def test_the_email_explains_who_asks_what_and_until_when(sender, make_authentication, settings):
    settings.SITE_NAME = "Contoso Shop"
    settings.DEFAULT_FROM_EMAIL = "shop@contoso.example"
    authentication = make_authentication(name="BC production")

    response = sender.post(
        email_url(authentication),
        {"recipients": "acct@customer.example,\nIT@Customer.example", "message": "Hi <Bob> & co"},
    )

    assert response.status_code == 302
    assert response["Location"] == admin_change_url(authentication)
    (email,) = mail.outbox
    assert email.from_email == "shop@contoso.example"
    assert email.to == ["acct@customer.example", "IT@Customer.example"]
    ((html, mimetype),) = email.alternatives
    assert mimetype == "text/html"
    for part in (email.body, html):
        assert "Ann Lee (ann@example.com)" in part
        assert "Contoso Shop" in part
        assert "BC production" in part
        assert "Production" in part
        assert "your own Business Central permissions" in part
        assert "Sign in with Microsoft" in part
        assert "expires on" in part
        assert CLIENT_SECRET not in part
        assert "/admin" not in part
    assert "Hi <Bob> & co" in email.body
    assert "Hi &lt;Bob&gt; &amp; co" in html
    url = next(word for word in email.body.split() if "/authentications/authorize/" in word)
    assert url in html
    token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    opened = link_tokens.authentication_for_link(token)
    assert opened.authentication == authentication
    assert opened.expires_at.strftime("%-d %B %Y") in email.body
    event = authentication.events.get(kind=Event.Kind.LINK_EMAILED)
    assert event.actor == "ann"
    assert "acct@customer.example, IT@Customer.example" in event.detail


def test_the_emailed_link_opens_the_landing_page(sender, client, make_authentication):
    authentication = make_authentication()
    sender.post(email_url(authentication), {"recipients": "acct@customer.example"})
    url = next(w for w in mail.outbox[0].body.split() if "/authentications/authorize/" in w)
    sender.logout()

    page = client.get(urlsplit(url).path)

    assertContains(page, authentication.name)


@pytest.mark.parametrize(
    ("recipients", "error"),
    [
        ("", "This field is required."),
        ("not-an-address", "Not valid email address(es): not-an-address."),
        ("a@example.com, b@@example.com", "Not valid email address(es): b@@example.com."),
        ("a@example.com\r\nBcc: evil@example.com", "Not valid email address(es)"),
        (", ".join(f"p{n}@example.com" for n in range(11)), "Send to at most 10 people"),
    ],
    ids=["empty", "no-at", "double-at", "header-injection", "too-many"],
)
def test_bad_addresses_are_form_errors_and_nothing_is_sent(
    sender, make_authentication, recipients, error
):
    authentication = make_authentication()

    response = sender.post(email_url(authentication), {"recipients": recipients})

    assertContains(response, error)
    assert not mail.outbox
    assert not authentication.events.exists()


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def refusing_smtp_server():
    """An SMTP server on 127.0.0.1 that refuses service at the greeting (554)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(5)

    def serve():
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with connection:
            connection.sendall(b"554 5.3.2 Service not available\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    thread.join(5)


def use_smtp(settings, port):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False


@pytest.mark.parametrize("server", ["unreachable", "refusing"])
def test_a_mail_server_failure_is_a_clear_message_and_nothing_is_recorded(
    sender, make_authentication, settings, request, server
):
    port = (
        closed_port()
        if server == "unreachable"
        else request.getfixturevalue("refusing_smtp_server")
    )
    use_smtp(settings, port)
    authentication = make_authentication()

    response = sender.post(email_url(authentication), {"recipients": "acct@customer.example"})

    assertContains(response, "The email could not be sent")
    assertContains(response, "Nothing was sent")
    assert not authentication.events.filter(kind=Event.Kind.LINK_EMAILED).exists()


def test_staff_without_the_authorize_permission_cannot_email_the_link(client, make_authentication):
    user = User.objects.create_user("bob", "bob@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_authentication", "change_authentication"])
    )
    client.force_login(user)
    authentication = make_authentication()

    assert client.get(email_url(authentication)).status_code == 403
    assert (
        client.post(email_url(authentication), {"recipients": "a@example.com"}).status_code == 403
    )
    assert (
        "Email Authorization URL"
        not in client.get(admin_change_url(authentication)).content.decode()
    )
    assert not mail.outbox


def test_anonymous_visitors_are_sent_to_the_admin_login(client, make_authentication):
    authentication = make_authentication()

    response = client.post(email_url(authentication), {"recipients": "a@example.com"})

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert not mail.outbox


def test_service_to_service_has_no_link_to_email(sender, make_authentication):
    # Without a secret: with one, its link is the Admin consent URL (test_admin_consent.py).
    authentication = make_authentication(
        kind=Authentication.Kind.SERVICE_TO_SERVICE, client_secret=""
    )

    response = sender.post(email_url(authentication), {"recipients": "a@example.com"}, follow=True)

    assert "Only a user-impersonation authentication" in response.content.decode()
    assert not mail.outbox


# --- the email carries the page's link, and says it is one link ---------------------------

EMAILED_LINK = re.compile(r'id="bc-emailed-link" type="text" readonly value="([^"]+)"')


def shown_link(response):
    return html.unescape(EMAILED_LINK.search(response.content.decode())[1])


def test_the_email_carries_exactly_the_link_the_email_page_shows(sender, make_authentication):
    authentication = make_authentication()
    page = sender.get(email_url(authentication))
    link = shown_link(page)

    sender.post(email_url(authentication), {"recipients": "acct@customer.example", "link": link})

    (email,) = mail.outbox
    assert f"Open this link: {link}\n" in email.body
    assertContains(page, "The email carries exactly this link")


def test_the_page_and_the_email_say_that_copies_are_one_link(sender, make_authentication):
    authentication = make_authentication()
    change_page = sender.get(admin_change_url(authentication))
    link = shown_link(sender.get(email_url(authentication)))

    sender.post(email_url(authentication), {"recipients": "acct@customer.example", "link": link})

    assertContains(change_page, "sends this same link, not another one")
    ((html_body, _),) = mail.outbox[0].alternatives
    for part in (mail.outbox[0].body, html_body):
        assert "This is the same link Ann Lee (ann@example.com) has in" in part
        assert "for whoever grants access with it first" in part


def test_a_link_revoked_after_the_email_page_opened_is_not_sent(sender, make_authentication):
    authentication = make_authentication()
    link = shown_link(sender.get(email_url(authentication)))
    link_tokens.revoke_links(authentication, actor="bob", reason="Link regenerated")

    response = sender.post(
        email_url(authentication), {"recipients": "acct@customer.example", "link": link}
    )

    assertContains(response, "The link shown on this page no longer works")
    assert shown_link(response) != link  # The current link, to send on the next try.
    assert mail.outbox == []
    assert not authentication.events.filter(kind=Event.Kind.LINK_EMAILED).exists()


@pytest.mark.parametrize(
    "forge",
    [
        lambda link, other: other,  # Another authentication's link.
        lambda link, other: link[:-3] + "AAA/",  # A broken signature.
        lambda link, other: "https://evil.example/authentications/authorize/x/",
        lambda link, other: link + "../../admin/",
    ],
)
def test_a_link_the_page_did_not_show_is_not_sent(sender, make_authentication, forge):
    authentication, other = make_authentication(), make_authentication()
    link = shown_link(sender.get(email_url(authentication)))
    other_link = link_tokens.authorization_url(other).url

    response = sender.post(
        email_url(authentication),
        {"recipients": "acct@customer.example", "link": forge(link, other_link)},
    )

    assert response.status_code == 200
    assertContains(response, "The link shown on this page no longer works")
    assert mail.outbox == []


def test_using_the_emailed_link_spends_the_copy_on_the_page_as_the_page_says(
    sender, client, make_authentication
):
    authentication = make_authentication()
    link = shown_link(sender.get(email_url(authentication)))
    sender.post(email_url(authentication), {"recipients": "acct@customer.example", "link": link})
    token = urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]
    AuthorizationRequest.objects.create(
        state="s",
        authentication=authentication,
        link_nonce=authentication.link_nonce,
        started_via=AuthorizationRequest.Via.LINK,
        outcome=AuthorizationRequest.Outcome.GRANTED,
        expires_at=timezone.now(),
    )
    link_tokens.revoke_links(authentication, actor="", reason="Granted through a link")

    with pytest.raises(link_tokens.LinkError, match="already used to grant access"):
        link_tokens.authentication_for_link(token)
