"""Small things on the authentication pages that made them feel unfinished: one message per
problem, thumbprints on one line, the Entra steps of the credential chosen."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.asserts import assertContains, assertNotContains

from authentications.certificates.models import Certificate
from tests.fakes.admin_consent import FABRIKAM_USER, consent_at_microsoft
from tests.helpers import admin_change_url, key_pair, use_certificate

pytestmark = pytest.mark.django_db


def text_of(response):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_administrator_role_explanation_is_said_once(admin_client, fabrikam, fake_microsoft):
    start = admin_client.post(admin_change_url(fabrikam).replace("change/", "admin-consent/"))
    path, params = consent_at_microsoft(fake_microsoft, start["Location"], username=FABRIKAM_USER)

    page = admin_client.get(path, params)

    text = text_of(page)
    assert text.count("may not consent for its organisation") == 1
    assert "requires admin permission" not in text  # Microsoft's words for the same thing.
    assert "AADSTS90094" in text


def upload_url(authentication):
    return admin_change_url(authentication).replace("change/", "certificates/upload/")


@pytest.mark.parametrize("field", ["pfx", "private_key"])
def test_an_empty_upload_gets_one_clear_message(admin_client, make_authentication, field):
    authentication = make_authentication()

    response = admin_client.post(
        upload_url(authentication), {field: SimpleUploadedFile("empty.file", b"")}
    )

    errors = re.findall(rb"<li>(.*?)</li>", response.content.split(b'id="content-main"')[1])
    assert len(errors) == 1, errors
    assertContains(response, "“empty.file” is empty")
    assert not Certificate.objects.filter(authentication=authentication).exists()


def test_thumbprints_stay_on_one_line(admin_client, make_authentication, fake_microsoft):
    authentication = make_authentication()
    use_certificate(fake_microsoft, authentication, key_pair())

    page = admin_client.get(admin_change_url(authentication))

    assertContains(page, '<div class="bc-scroll"><table class="bc-certificates">')
    assertContains(page, '<code class="bc-thumbprint">')
    from django.contrib.staticfiles import finders

    css = open(finders.find("authentications/admin.css")).read()
    rule = re.search(r"\.bc-thumbprint\s*\{([^}]*)\}", css).group(1)
    assert "white-space: nowrap" in rule
    assert "break-all" not in css


def test_a_certificate_connection_shows_the_certificate_steps_not_the_secret_one(
    admin_client, make_authentication, fake_microsoft
):
    authentication = make_authentication()
    use_certificate(fake_microsoft, authentication, key_pair())

    page = admin_client.get(admin_change_url(authentication))

    assertContains(page, '<li class="bc-when-secret" hidden>')
    assertContains(page, '<li class="bc-when-certificate">')
    assertContains(page, "Certificates &amp; secrets &gt; Certificates &gt; Upload certificate")


def test_a_secret_connection_shows_the_secret_step(admin_client, make_authentication):
    page = admin_client.get(admin_change_url(make_authentication()))

    assertContains(page, '<li class="bc-when-secret">')
    assertContains(page, '<li class="bc-when-certificate" hidden>')
    assertNotContains(page, '<li class="bc-when-secret" hidden>')


def test_the_page_script_hides_fields_that_do_not_apply():
    """The behaviour is proven in a browser (tests/e2e/test_admin_fields_in_a_browser.py);
    this checks the rules the script relies on are in the stylesheet."""
    from django.contrib.staticfiles import finders

    css = open(finders.find("authentications/admin.css")).read()
    assert ".bc-service-to-service .field-expected_user" in css
    assert ".bc-certificate .field-client_secret" in css
    assert ".bc-certificate .field-client_secret_expires_on" in css
