"""A write test's confirmation is used once, for the identity it named, then redirects.

The forms are posted as the browser posts them: every hidden field of the confirmation page
and its button, read from the page.
"""

import re
import threading

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from authentications.endpoints import runs
from authentications.endpoints.models import Endpoint, WriteConfirmation
from tests.helpers import endpoint_url, plant_tokens, rename_endpoint

pytestmark = pytest.mark.django_db(transaction=True)


def page_form(page):
    """What the confirmation page's form posts: its hidden fields and its submit button."""
    html = page.content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    fields.pop("csrfmiddlewaretoken", None)
    button = re.search(r'<input type="submit" class="default" name="(\w+)"', html)
    assert button, "no confirmation form on the page"
    return {**fields, button.group(1): "yes"}


@pytest.fixture
def create(make_endpoint, tokens_planted):
    return make_endpoint(
        tokens_planted,
        name="New customer",
        method=Endpoint.Method.POST,
        body={"displayName": "Created once"},
    )


def test_a_resubmitted_confirmation_creates_once(admin_client, create, fake_microsoft):
    shown = page_form(admin_client.get(endpoint_url(create, "test")))

    first = admin_client.post(endpoint_url(create, "test"), shown)
    again = admin_client.post(endpoint_url(create, "test"), shown, follow=True)

    assert first.status_code == 302  # Post/Redirect/Get: the result is a page of its own.
    assert fake_microsoft.bc.count("POST") == 1
    assert len(fake_microsoft.bc.company.created) == 1
    assertContains(again, "This confirmation was used already: the write was not sent again")
    assertContains(again, "HTTP 201")  # Its result, not a second create.


def test_reloading_the_result_page_does_not_send_again(admin_client, create, fake_microsoft):
    shown = page_form(admin_client.get(endpoint_url(create, "test")))
    result_url = admin_client.post(endpoint_url(create, "test"), shown)["Location"]

    for _ in range(3):
        page = admin_client.get(result_url)
        assertContains(page, "HTTP 201")
        assertContains(page, "Created once")

    assert fake_microsoft.bc.count("POST") == 1


def test_two_concurrent_posts_of_one_confirmation_send_once(admin_user, create, fake_microsoft):
    browsers = [Client(), Client()]
    for browser in browsers:
        browser.force_login(admin_user)
    shown = page_form(browsers[0].get(endpoint_url(create, "test")))
    fake_microsoft.bc.latency = 0.3  # The first post is still sending when the second comes.
    start = threading.Barrier(2)
    answers = []

    def post(browser):
        start.wait()
        answers.append(browser.post(endpoint_url(create, "test"), shown).status_code)

    threads = [threading.Thread(target=post, args=(b,)) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert fake_microsoft.bc.count("POST") == 1
    assert len(answers) == 2 and 500 not in answers


def test_a_confirmation_shown_to_someone_else_sends_nothing(
    admin_client, django_user_model, create, fake_microsoft
):
    other = Client()
    other.force_login(django_user_model.objects.create_superuser("other", "o@example.com", "x"))
    shown = page_form(other.get(endpoint_url(create, "test")))

    page = admin_client.post(endpoint_url(create, "test"), shown)

    assertContains(page, "nothing was sent")
    assert fake_microsoft.bc.count("POST") == 0


# --- the confirmation names the identity ---------------------------------------------------


def test_the_digest_changes_when_the_endpoint_moves_to_another_authentication(
    make_endpoint, make_authentication, tokens_planted, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    other = make_authentication(name="BC production (another user)")
    assert other.base_url == tokens_planted.base_url  # The same environment and URL.
    before = runs.request_fingerprint(endpoint)

    endpoint.authentication = other

    assert endpoint.url() == Endpoint.objects.get(pk=endpoint.pk).url()
    assert runs.request_fingerprint(endpoint) != before


def test_a_write_confirmed_for_one_identity_is_not_sent_under_another(
    admin_client, make_endpoint, make_authentication, tokens_planted, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)
    shown = page_form(admin_client.get(endpoint_url(endpoint, "test")))
    other = plant_tokens(fake_microsoft, make_authentication(name="BC production (another user)"))
    Endpoint.objects.filter(pk=endpoint.pk).update(authentication=other)

    page = admin_client.post(endpoint_url(endpoint, "test"), shown)

    assert page.status_code == 200
    assertContains(page, "nothing was sent")
    assertContains(page, "as “BC production (another user)”")  # Asked again, naming it.
    assert fake_microsoft.bc.count("PATCH") == 0
    assert WriteConfirmation.objects.filter(used_at__isnull=False).count() == 0


def test_the_confirmation_names_the_company_without_a_double_period(
    admin_client, make_endpoint, tokens_planted, fake_microsoft
):
    endpoint = rename_endpoint(make_endpoint, tokens_planted, fake_microsoft)

    page = admin_client.get(endpoint_url(endpoint, "test"))

    assertContains(page, "CRONUS USA, Inc.</strong>;")
    assertNotContains(page, "Inc.</strong>.")
