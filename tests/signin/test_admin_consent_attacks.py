"""A hostile look at the admin consent: replays, other organisations, odd tenants, races.

Each test is an attack on the Admin consent URL or on Microsoft's answer to it; nothing may
be stored, no other tenant may be switched to silently, and no refusal may show a secret.

Decision (documented in the README): the tenant a connection uses is its stored Directory
(tenant) ID, or, while that is empty, the tenant its BC URL names. A consent from another
organisation is refused then; to move a connection to another tenant, staff edit it (which
revokes its links and fences out every consent under way).
"""

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from authentications.connections import link_tokens
from authentications.connections.models import Authentication, AuthorizationRequest, Event
from authentications.kit.validators import is_guid
from authentications.signin import flows
from tests.fakes.admin_consent import (
    CONTOSO_ADMIN,
    FABRIKAM_TENANT_ID,
    FABRIKAM_USER,
    consent_at_microsoft,
)
from tests.fakes.entra import CLIENT_ID, CLIENT_SECRET, TENANT_ID
from tests.helpers import (
    admin_change_url,
    change_form_data,
    email_parts,
    fresh,
    operator_text,
    sibling_acts_during_the_token_request,
)

pytestmark = pytest.mark.django_db

SERVICE = Authentication.Kind.SERVICE_TO_SERVICE
GRANTED = f"/authentications/granted/consent/?client_id={CLIENT_ID}"
CALLBACK = "/authentications/callback/"


@pytest.fixture
def open_customer(undecided_customer, fake_microsoft):
    """Tenant left empty ("organizations") and a BC URL that names no tenant GUID either."""
    base_url = fake_microsoft.bc.base_url(tenant="customer.example.com")
    Authentication.objects.filter(pk=undecided_customer.pk).update(base_url=base_url)
    return fresh(undecided_customer)


def link_path(authentication):
    return urlsplit(link_tokens.admin_consent_url(authentication).url).path


def press_grant(browser, authentication):
    response = browser.post(link_path(authentication))
    assert response.status_code == 302, response
    return response


def state_in(response):
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def nothing_stored(authentication, *, tenant):
    stored = fresh(authentication)
    assert stored.tenant_id == tenant
    assert not stored.access_token
    assert stored.status == Authentication.Status.NOT_CONNECTED
    assert not stored.events.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).exists()


# --- replays ----------------------------------------------------------------------------------


def test_a_consent_answer_replayed_in_a_second_browser_names_nothing(fabrikam, fake_microsoft):
    first = Client()
    path, params = consent_at_microsoft(fake_microsoft, press_grant(first, fabrikam)["Location"])
    assert first.get(path, params)["Location"] == GRANTED

    replayed = Client().get(path, params)

    assertContains(replayed, "already completed", status_code=400)
    assertNotContains(replayed, "Fabrikam", status_code=400)
    assertNotContains(replayed, "/admin/", status_code=400)
    assert fresh(fabrikam).events.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).count() == 1


def test_a_sign_in_answer_to_a_consent_state_stores_nothing(fabrikam, fake_microsoft):
    administrator = Client()
    state = state_in(press_grant(administrator, fabrikam))

    page = administrator.post(CALLBACK, {"code": "0.AXEA-a-sign-in-code", "state": state})

    assertContains(page, "invalid_response", status_code=400)
    assert (
        "does not say that consent was granted" in AuthorizationRequest.objects.get().error_message
    )
    assert fake_microsoft.entra.count("client_credentials") == 0
    assert fake_microsoft.entra.count("authorization_code") == 0
    nothing_stored(fabrikam, tenant=FABRIKAM_TENANT_ID)


# --- another organisation ---------------------------------------------------------------------


def test_a_domain_tenant_does_not_take_another_organisation_s_answer(
    make_authentication, fake_microsoft
):
    contoso = make_authentication(kind=SERVICE, tenant_id="contoso.onmicrosoft.com")
    administrator = Client()
    state = state_in(press_grant(administrator, contoso))

    page = administrator.get(
        CALLBACK, {"admin_consent": "True", "tenant": FABRIKAM_TENANT_ID, "state": state}
    )

    assertContains(page, "Wrong organisation", status_code=400)
    nothing_stored(contoso, tenant="contoso.onmicrosoft.com")


def test_an_empty_tenant_does_not_take_an_organisation_the_bc_url_does_not_name(
    make_authentication, fake_microsoft
):
    """The BC URL names Fabrikam: Contoso's administrator consenting must not switch it."""
    customer = make_authentication(
        kind=SERVICE,
        tenant_id="",
        base_url=fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID),
    )
    administrator = Client()
    response = press_grant(administrator, customer)
    path, params = consent_at_microsoft(
        fake_microsoft, response["Location"], username=CONTOSO_ADMIN
    )

    page = administrator.get(path, params)

    assertContains(page, "Wrong organisation", status_code=400)
    assert fake_microsoft.entra.count("client_credentials") == 0
    nothing_stored(customer, tenant="")
    assert TENANT_ID in AuthorizationRequest.objects.get().error_message
    # The link is not spent: Fabrikam's administrator can still use it.
    again = press_grant(administrator, customer)
    path, params = consent_at_microsoft(fake_microsoft, again["Location"])
    assert administrator.get(path, params)["Location"] == GRANTED
    assert fresh(customer).tenant_id == FABRIKAM_TENANT_ID


@pytest.mark.django_db(transaction=True)
def test_a_second_organisation_consenting_at_once_does_not_switch_the_tenant(
    open_customer, fake_microsoft, monkeypatch
):
    """Two administrators were sent the link at once (or staff started one from the admin):
    while Fabrikam's consent is being proven, Contoso's is stored. Fabrikam's must not
    overwrite the tenant the connection now uses."""

    def contoso_consent_lands():
        Authentication.objects.filter(pk=open_customer.pk).update(tenant_id=TENANT_ID)

    administrator = Client()
    response = press_grant(administrator, open_customer)
    path, params = consent_at_microsoft(fake_microsoft, response["Location"])
    sibling_acts_during_the_token_request(fake_microsoft, monkeypatch, contoso_consent_lands)

    page = administrator.get(path, params)

    assertContains(page, "Wrong organisation", status_code=400)
    stored = fresh(open_customer)
    assert stored.tenant_id == TENANT_ID
    assert not stored.access_token
    assert not stored.events.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).exists()
    assert "tenant " + TENANT_ID in AuthorizationRequest.objects.get().error_message


@pytest.mark.django_db(transaction=True)
def test_the_same_organisation_consenting_twice_at_once_is_no_conflict(
    open_customer, fake_microsoft, monkeypatch
):
    def the_other_consent_lands():
        Authentication.objects.filter(pk=open_customer.pk).update(tenant_id=FABRIKAM_TENANT_ID)

    administrator = Client()
    path, params = consent_at_microsoft(
        fake_microsoft, press_grant(administrator, open_customer)["Location"]
    )
    sibling_acts_during_the_token_request(fake_microsoft, monkeypatch, the_other_consent_lands)

    assert administrator.get(path, params)["Location"] == GRANTED
    assert fresh(open_customer).tenant_id == FABRIKAM_TENANT_ID


# --- odd tenant values: nothing but a canonical GUID reaches a URL ---------------------------

FABRIKAM_HEX = FABRIKAM_TENANT_ID.replace("-", "")


@pytest.mark.parametrize(
    "tenant",
    [
        f"urn:{FABRIKAM_HEX}",
        f"{{{FABRIKAM_HEX}}}--",
        f"{FABRIKAM_HEX}----",
        f"../{FABRIKAM_TENANT_ID}",
        f"..%2f{FABRIKAM_TENANT_ID}",
        f"{FABRIKAM_TENANT_ID}/../common",
        f"{FABRIKAM_TENANT_ID[:8]} {FABRIKAM_TENANT_ID[9:]}",
        FABRIKAM_TENANT_ID * 200,
        "organizations",
    ],
    ids=[
        "urn",
        "braces",
        "hyphens-moved",
        "dot-dot",
        "encoded-slash",
        "path-after",
        "space",
        "very-long",
        "organizations",
    ],
)
def test_an_odd_tenant_in_the_answer_is_refused_before_any_request(
    open_customer, fake_microsoft, tenant
):
    administrator = Client()
    state = state_in(press_grant(administrator, open_customer))
    requests_before = len(fake_microsoft.entra.token_requests)

    page = administrator.get(CALLBACK, {"admin_consent": "True", "tenant": tenant, "state": state})

    assertContains(page, "invalid_response", status_code=400)
    refused = AuthorizationRequest.objects.get().error_message
    assert "does not name the organisation that consented" in refused
    assert len(fake_microsoft.entra.token_requests) == requests_before
    nothing_stored(open_customer, tenant="")


def test_only_the_canonical_guid_form_is_a_guid():
    assert is_guid(FABRIKAM_TENANT_ID) and is_guid(FABRIKAM_TENANT_ID.upper())
    for odd in (f"urn:{FABRIKAM_HEX}", f"{{{FABRIKAM_HEX}}}--", f"{FABRIKAM_HEX}----", ""):
        assert not is_guid(odd), odd


# --- the connection changed while the administrator was at Microsoft -------------------------


def test_a_consent_under_way_when_the_connection_became_user_impersonation_stores_nothing(
    admin_client, fabrikam, fake_microsoft
):
    administrator = Client()
    link = link_path(fabrikam)
    response = administrator.post(link)
    data = change_form_data(fabrikam, kind=Authentication.Kind.USER_IMPERSONATION, _save="Save")
    assert admin_client.post(admin_change_url(fabrikam), data).status_code == 302
    path, params = consent_at_microsoft(fake_microsoft, response["Location"])

    page = administrator.get(path, params)

    assert page.status_code == 400
    assert fake_microsoft.entra.count("client_credentials") == 0
    stored = fresh(fabrikam)
    assert stored.kind == Authentication.Kind.USER_IMPERSONATION and not stored.access_token
    assert administrator.get(link).status_code == 404


def test_a_consent_under_way_when_the_secret_changed_stores_nothing(
    admin_client, fabrikam, fake_microsoft
):
    administrator = Client()
    response = press_grant(administrator, fabrikam)
    data = change_form_data(fabrikam, client_secret="a-rotated-secret-value", _save="Save")
    assert admin_client.post(admin_change_url(fabrikam), data).status_code == 302
    path, params = consent_at_microsoft(fake_microsoft, response["Location"])

    page = administrator.get(path, params)

    assertContains(page, "This link no longer works", status_code=400)
    assertNotContains(page, "a-rotated-secret-value", status_code=400)
    stored = fresh(fabrikam)
    assert not stored.access_token and stored.client_secret == "a-rotated-secret-value"
    assert not stored.events.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).exists()


def test_a_consent_from_the_admin_under_way_when_the_secret_changed_stores_nothing(
    admin_client, fabrikam, fake_microsoft
):
    """No link nonce to spend here: the generation alone fences it."""
    admin_user = User.objects.get(username="admin")
    start = flows.start_admin_consent(fabrikam, via=AuthorizationRequest.Via.ADMIN, user=admin_user)
    data = change_form_data(fabrikam, client_secret="a-rotated-secret-value", _save="Save")
    assert admin_client.post(admin_change_url(fabrikam), data).status_code == 302
    path, params = consent_at_microsoft(fake_microsoft, start.authorize_url)
    admin_client.cookies[start.cookie_name] = start.cookie_value

    page = admin_client.get(path, params)

    assertContains(page, "connection was changed", status_code=400)
    assert not fresh(fabrikam).access_token


@pytest.mark.django_db(transaction=True)
def test_two_consents_from_one_link_at_the_same_moment_grant_once(
    fabrikam, fake_microsoft, monkeypatch
):
    """While the first consent is being proven, the second one's grant spends the link."""
    first, second = Client(), Client()
    first_answer = consent_at_microsoft(fake_microsoft, press_grant(first, fabrikam)["Location"])
    second_answer = consent_at_microsoft(fake_microsoft, press_grant(second, fabrikam)["Location"])
    outcome = {}

    def second_consent_lands():
        if not outcome:
            outcome["second"] = second.get(*second_answer)

    sibling_acts_during_the_token_request(fake_microsoft, monkeypatch, second_consent_lands)

    page = first.get(*first_answer)

    assert outcome["second"]["Location"] == GRANTED
    assertContains(page, "This link no longer works", status_code=400)
    assert fresh(fabrikam).events.filter(kind=Event.Kind.ADMIN_CONSENT_GRANTED).count() == 1


# --- no secret in any refusal -----------------------------------------------------------------


def test_no_refusal_shows_a_secret(admin_client, fabrikam, fake_microsoft, caplog, notify_list):
    caplog.set_level(logging.DEBUG)
    pages, cookies = [], set()
    link = link_path(fabrikam)
    administrator = Client()

    def answer(**how):
        pressed = administrator.post(link)
        cookies.update(morsel.value for morsel in administrator.cookies.values() if morsel.value)
        path, params = consent_at_microsoft(fake_microsoft, pressed["Location"], **how)
        pages.append(administrator.get(path, params))
        return path, params

    answer(accept=False)  # Declined.
    answer(username=FABRIKAM_USER)  # No administrator.
    answer(username=CONTOSO_ADMIN)  # Another organisation.
    state = state_in(administrator.post(link))
    pages.append(
        administrator.get(CALLBACK, {"admin_consent": "True", "tenant": "x", "state": state})
    )
    path, params = answer()  # Granted...
    pages.append(administrator.get(path, params))  # ...then replayed,
    pages.append(Client().get(path, params))  # ...and in another browser.
    pages.append(administrator.get(link))  # Spent.
    pages.append(admin_client.get(admin_change_url(fabrikam)))

    assert [page.status_code for page in pages[:4]] == [400, 400, 400, 400]
    stored = fresh(fabrikam)
    produced = "\n".join(
        [
            *(page.content.decode() for page in pages),
            *(part for message in mail.outbox for part in email_parts(message)),
            operator_text(caplog),
        ]
    )
    secrets = {CLIENT_SECRET, stored.access_token, *fake_microsoft.entra.access_tokens, *cookies}
    assert len(cookies) >= 4 and stored.access_token
    assert [secret[:12] for secret in secrets if secret in produced] == []
    link_token = link.rstrip("/").rsplit("/", 1)[1]
    assert link_token not in operator_text(caplog)
