"""The demo's change-notification path: a subscription added in the admin, a change in the
fake BC (`make demo-change`), and the notification in the admin's list."""

import pytest

from authentications.connections import oauth
from authentications.connections.models import Authentication
from authentications.webhooks.models import ChangeNotification, Subscription
from tests.fakes.demo import DEMO_AUTHENTICATION, DemoRefused, make_a_change, set_up_demo
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo_site(live_server, settings, fake_microsoft):
    settings.DEBUG = True
    settings.PUBLIC_BASE_URL = live_server.url
    fake_microsoft.entra.register_app(CLIENT_ID, CLIENT_SECRET, oauth.redirect_uri())
    set_up_demo()
    return Authentication.objects.get(name=DEMO_AUTHENTICATION)


def test_demo_change_before_sign_in_says_what_to_do(demo_site):
    with pytest.raises(DemoRefused, match="sign in"):
        make_a_change()


def test_a_change_in_the_fake_bc_shows_up_in_the_admin(
    demo_site, sign_in_at_microsoft, admin_client, fake_microsoft
):
    sign_in_at_microsoft(demo_site)
    added = admin_client.post(
        "/admin/authentications/subscription/add/",
        {
            "authentication": demo_site.pk,
            "company": "CRONUS USA, Inc.",
            "api_path": "api/v2.0",
            "entity": "customers",
        },
        follow=True,
    )
    assert b"Created at Business Central" in added.content
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE

    printed = make_a_change()
    assert fake_microsoft.webhooks.wait_idle(10)

    notification = ChangeNotification.objects.get()
    assert notification.change_type == "created"
    assert "changenotification" in printed
    listing = admin_client.get("/admin/authentications/changenotification/")
    assert notification.record_id in listing.content.decode()
