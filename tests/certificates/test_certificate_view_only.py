"""Whoever may only view an authentication sees its certificates but none of the buttons
(Generate, Upload, Switch, Delete) that would answer them 403, as the secret input is hidden."""

import pytest
from django.contrib.auth.models import Permission

from authentications.certificates import flows
from tests.helpers import admin_change_url

pytestmark = pytest.mark.django_db

BUTTONS = (
    "certificates/generate/",
    "certificates/upload/",
    "certificates/switch/",
    "/delete/",
    'id="bc-generate-certificate"',
    'id="bc-switch-certificate"',
)


@pytest.fixture
def with_next_certificate(make_authentication):
    authentication = make_authentication(name="Rolling over")
    current = flows.generate(authentication, actor="test")
    following = flows.generate(authentication, actor="test")
    return authentication, current, following


def test_a_view_only_user_sees_the_certificates_without_buttons(
    client, django_user_model, with_next_certificate
):
    authentication, current, following = with_next_certificate
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_authentication"))
    client.force_login(viewer)

    page = client.get(admin_change_url(authentication)).content.decode()

    assert current.thumbprint_sha1 in page and following.thumbprint_sha1 in page
    assert [button for button in BUTTONS if button in page] == []


def test_a_user_who_may_change_sees_every_certificate_button(admin_client, with_next_certificate):
    authentication, _, following = with_next_certificate

    page = admin_client.get(admin_change_url(authentication)).content.decode()

    assert 'id="bc-switch-certificate"' in page and "certificates/upload/" not in page
    assert f"certificates/{following.pk}/delete/" in page
