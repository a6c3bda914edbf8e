"""A certificate instead of a client secret: sign-in, refresh and client credentials at the
fake Microsoft, which verifies every client assertion; Entra's refusals classified."""

import base64
import json

import pytest
import requests
from django.core import mail

from authentications.connections import link_tokens, tokens
from authentications.connections.models import Authentication
from tests.helpers import expiring, fresh, key_pair, use_certificate

pytestmark = pytest.mark.django_db


def captured_assertions(fake, monkeypatch):
    """The client assertions the fake receives, decoded (header, claims)."""
    seen = []
    check = fake.entra.assertions.check

    def record(form, **kwargs):
        head, body, _ = form.get("client_assertion", "..").split(".")
        seen.append([json.loads(base64.urlsafe_b64decode(p + "==")) for p in (head, body)])
        return check(form, **kwargs)

    monkeypatch.setattr(fake.entra.assertions, "check", record)
    return seen


def test_a_generated_certificate_signs_in_and_refreshes_without_any_secret(
    make_authentication, sign_in_at_microsoft, fake_microsoft, monkeypatch
):
    authentication = make_authentication()
    use_certificate(fake_microsoft, authentication)
    seen = captured_assertions(fake_microsoft, monkeypatch)

    authentication = sign_in_at_microsoft(authentication)
    assert authentication.status == Authentication.Status.CONNECTED
    expiring(authentication, seconds=-1)
    token = tokens.get_access_token(authentication)

    assert token and token != authentication.access_token
    assert fresh(authentication).client_secret == ""
    assert len(seen) == 2  # The code redemption and the refresh, each with an assertion.
    header, claims = seen[-1]
    assert header["alg"] == "PS256" and "x5t#S256" in header
    assert claims["iss"] == claims["sub"] == authentication.client_id
    assert seen[0][1]["jti"] != seen[1][1]["jti"]


def test_service_to_service_gets_a_token_with_its_certificate(make_authentication, fake_microsoft):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    use_certificate(fake_microsoft, authentication, key_pair())

    result = tokens.refresh(authentication, needed=lambda row: True, by_person=True)

    assert result.refreshed and result.authentication.status == Authentication.Status.CONNECTED
    assert fake_microsoft.entra.token_info(result.authentication.access_token)


def test_a_certificate_entra_does_not_know_needs_a_person_once(
    make_authentication, fake_microsoft, notify_list
):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    use_certificate(fake_microsoft, authentication, key_pair(), uploaded=False)

    with pytest.raises(tokens.TokenError) as refused:
        tokens.refresh(authentication, needed=lambda row: True)
    requests_made = fake_microsoft.entra.count("client_credentials")
    with pytest.raises(tokens.TokenError):  # Code asks again: Entra is not asked again.
        tokens.refresh(authentication, needed=lambda row: True)

    row = fresh(authentication)
    assert refused.value.needs_sign_in and "AADSTS700027" in row.last_error_code
    assert row.status == Authentication.Status.SECRET_INVALID
    assert "Certificates & secrets > Certificates" in row.last_error
    assert fake_microsoft.entra.count("client_credentials") == requests_made == 1
    assert len(mail.outbox) == 1
    assert "upload the connection's current certificate" in mail.outbox[0].body
    assert "add a new client secret" not in mail.outbox[0].body


def test_uploading_the_certificate_ends_the_back_off_when_a_person_asks(
    make_authentication, fake_microsoft
):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    certificate = use_certificate(fake_microsoft, authentication, key_pair(), uploaded=False)
    with pytest.raises(tokens.TokenError):
        tokens.refresh(authentication, needed=lambda row: True)

    fake_microsoft.entra.upload_certificate(certificate.certificate_pem)
    result = tokens.refresh(authentication, needed=lambda row: True, by_person=True)

    assert result.authentication.status == Authentication.Status.CONNECTED


def test_the_token_endpoint_is_not_given_the_private_key(make_authentication, fake_microsoft):
    authentication = make_authentication(kind=Authentication.Kind.SERVICE_TO_SERVICE)
    pair = key_pair()
    use_certificate(fake_microsoft, authentication, pair)
    bodies = []
    token = fake_microsoft.entra.token

    def keep_body(tenant, request):
        bodies.append(request.body.decode())
        return token(tenant, request)

    fake_microsoft.entra.token = keep_body
    tokens.refresh(authentication, needed=lambda row: True, by_person=True)

    body = bodies[0]
    key_body = "".join(pair.private_key_pem.splitlines()[1:-1])
    assert "client_assertion=" in body and "client_secret" not in body
    assert key_body[:40] not in requests.utils.unquote(body)


def test_the_authorization_url_works_with_a_certificate(
    client, make_authentication, fake_microsoft, sign_in
):
    authentication = make_authentication()
    use_certificate(fake_microsoft, authentication, key_pair())
    url = link_tokens.authorization_url(authentication).url
    landing = "/" + url.split("://", 1)[1].split("/", 1)[1]

    sign_in(client, client.post(landing))

    row = fresh(authentication)
    assert row.status == Authentication.Status.CONNECTED
    assert row.granted_via == Authentication.GrantedVia.LINK
