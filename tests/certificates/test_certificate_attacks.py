"""Certificates under attack: a hung or failing Entra during a switch, a private key no
key decrypts any more, oversized or malformed uploads, someone else's certificate."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from pytest_django.asserts import assertContains

from authentications.certificates import flows, keypairs
from authentications.certificates.models import Certificate
from authentications.connections import tokens
from authentications.connections.models import Authentication
from tests.helpers import (
    admin_change_url,
    fresh,
    key_pair,
    sibling_acts_during_the_token_request,
    use_certificate,
)

pytestmark = pytest.mark.django_db(transaction=True)


def rollover_ready(make_authentication, fake_microsoft, *, next_uploaded=True):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    use_certificate(fake_microsoft, authentication, key_pair())
    upcoming = use_certificate(fake_microsoft, authentication, key_pair(1), uploaded=next_uploaded)
    return authentication, upcoming


def test_a_failing_entra_during_the_switch_changes_nothing(make_authentication, fake_microsoft):
    authentication, upcoming = rollover_ready(make_authentication, fake_microsoft)
    fake_microsoft.entra.fail_next_token_request(("status", 503))

    with pytest.raises(flows.CertificateFlowError) as failed:
        flows.switch_to_next(authentication, actor="staff")

    assert "could not be tried" in failed.value.message
    assert "Nothing changed" in failed.value.message
    assert Certificate.objects.get(pk=upcoming.pk).role == Certificate.Role.NEXT


def test_a_switch_that_lost_a_race_changes_nothing(
    make_authentication, fake_microsoft, monkeypatch
):
    authentication, upcoming = rollover_ready(make_authentication, fake_microsoft)
    first = Certificate.objects.current_for(authentication)
    sibling_acts_during_the_token_request(
        fake_microsoft,
        monkeypatch,
        lambda: Certificate.objects.filter(pk=upcoming.pk).delete(),  # Another admin.
    )

    with pytest.raises(flows.CertificateFlowError, match="meanwhile"):
        flows.switch_to_next(authentication, actor="staff")

    assert Certificate.objects.get(pk=first.pk).role == Certificate.Role.CURRENT


def test_a_private_key_no_key_decrypts_stops_with_the_key_message(
    make_authentication, fake_microsoft, settings
):
    settings.FERNET_KEYS = ["key-dropped-too-early"]
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    use_certificate(fake_microsoft, authentication, key_pair())
    settings.FERNET_KEYS = ["key-in-use-now"]
    asked = len(fake_microsoft.entra.token_requests)

    with pytest.raises(tokens.TokenError) as refused:
        tokens.refresh(fresh(authentication), needed=lambda row: True, by_person=True)

    assert refused.value.code == "key_missing"
    assert len(fake_microsoft.entra.token_requests) == asked
    assert fresh(authentication).cannot_decrypt


def test_rotating_keys_re_encrypts_private_keys(make_authentication, settings):
    settings.FERNET_KEYS = ["old-key"]
    authentication = make_authentication()
    certificate = use_certificate(None, authentication, key_pair(), uploaded=False)
    settings.FERNET_KEYS = ["new-key", "old-key"]

    call_command("rotate_encryption_keys")
    settings.FERNET_KEYS = ["new-key"]

    assert Certificate.objects.get(pk=certificate.pk).private_key == key_pair().private_key_pem


def test_an_oversized_upload_is_refused(admin_client, make_authentication):
    authentication = make_authentication()
    big = SimpleUploadedFile("key.pem", b"A" * (keypairs.MAX_UPLOAD_BYTES + 1))

    response = admin_client.post(
        admin_change_url(authentication).replace("change/", "certificates/upload/"),
        {"private_key": big},
    )

    assertContains(response, "too large")
    assert not Certificate.objects.exists()


@pytest.mark.parametrize("view", ["certificates/99999/delete/", "certificates/switch/"])
def test_buttons_for_what_is_not_there_explain_and_change_nothing(
    admin_client, make_authentication, view
):
    authentication = make_authentication()

    response = admin_client.post(
        admin_change_url(authentication).replace("change/", view), follow=True
    )

    assert response.status_code == 200
    assert response.context["messages"]
    assert not Certificate.objects.exists()


def test_certificate_pages_of_an_unknown_authentication_are_404(admin_client):
    for view in ("certificates/generate/", "certificates/upload/", "certificates/1/download.pem"):
        url = f"/admin/authentications/authentication/424242/{view}"
        answer = admin_client.post(url) if "generate" in view else admin_client.get(url)
        assert answer.status_code == 404, view


def test_a_next_certificate_no_key_decrypts_is_not_tried(
    make_authentication, fake_microsoft, settings
):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    use_certificate(fake_microsoft, authentication, key_pair())
    settings.FERNET_KEYS = ["key-dropped-too-early"]
    use_certificate(fake_microsoft, authentication, key_pair(1))
    settings.FERNET_KEYS = ["key-in-use-now"]
    asked = len(fake_microsoft.entra.token_requests)

    with pytest.raises(flows.CertificateFlowError, match="FERNET_KEYS"):
        flows.switch_to_next(authentication, actor="staff")

    assert len(fake_microsoft.entra.token_requests) == asked
