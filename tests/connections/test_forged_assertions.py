"""The fake Entra refuses forged client assertions as Entra does, and bcconnect classifies
its answers: wrong key, unknown thumbprint, replayed jti, wrong audience, stale or too long,
someone else's client ID."""

import base64
import json
import time
import uuid

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from authentications.connections import oauth
from tests.fakes.assertions import JWT_BEARER
from tests.fakes.entra import CLIENT_ID, TENANT_ID
from tests.helpers import key_pair


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(pair, *, fake, sign_with=None, alg="PS256", header=None, **claims):
    """A client assertion for the fake's token endpoint, signed with `sign_with` (or `pair`)."""
    certificate = x509.load_pem_x509_certificate(pair.certificate_pem.encode())
    now = int(time.time())
    body = {
        "aud": token_endpoint(fake),
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "exp": now + 600,
        "iat": now,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    head = {"alg": alg, "typ": "JWT", **(header or {})}
    if header is None:
        head["x5t#S256"] = b64(certificate.fingerprint(hashes.SHA256()))
    signed = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(body).encode())}".encode()
    key = serialization.load_pem_private_key((sign_with or pair).private_key_pem.encode(), None)
    scheme = (
        padding.PKCS1v15()
        if alg == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    )
    return signed.decode() + "." + b64(key.sign(signed, scheme, hashes.SHA256()))


def token_endpoint(fake):
    return f"{fake.url}/{TENANT_ID}/oauth2/v2.0/token"


def post(fake, client_assertion, *, client_id=CLIENT_ID):
    answer = requests.post(
        token_endpoint(fake),
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "scope": f"{fake.url}/.default",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": client_assertion,
        },
        verify=str(fake.ca_path),
        timeout=10,
    )
    return answer.status_code, answer.json()


@pytest.fixture
def uploaded(fake_microsoft):
    pair = key_pair()
    fake_microsoft.entra.upload_certificate(pair.certificate_pem)
    return pair


def test_a_well_made_assertion_gets_a_token_ps256_or_rs256_with_x5t(fake_microsoft, uploaded):
    certificate = x509.load_pem_x509_certificate(uploaded.certificate_pem.encode())
    sha1 = b64(certificate.fingerprint(hashes.SHA1()))

    status_ps, body_ps = post(fake_microsoft, assertion(uploaded, fake=fake_microsoft))
    status_rs, body_rs = post(
        fake_microsoft,
        assertion(uploaded, fake=fake_microsoft, alg="RS256", header={"x5t": sha1}),
    )

    assert (status_ps, status_rs) == (200, 200)
    assert body_ps["access_token"] and body_rs["access_token"]


@pytest.mark.parametrize(
    ("forgery", "aadsts"),
    [
        ("wrong_key", 700027),
        ("unknown_thumbprint", 700027),
        ("no_thumbprint", 700027),
        ("wrong_audience", 50027),
        ("expired", 700024),
        ("valid_too_long", 700024),
        ("other_client", 700021),
        ("hs256", 700027),
        ("garbage", 50027),
    ],
)
def test_a_forged_assertion_is_refused_with_entras_code(fake_microsoft, uploaded, forgery, aadsts):
    now = int(time.time())
    made = {
        "wrong_key": lambda: assertion(uploaded, fake=fake_microsoft, sign_with=key_pair(1)),
        "unknown_thumbprint": lambda: assertion(key_pair(1), fake=fake_microsoft),
        "no_thumbprint": lambda: assertion(uploaded, fake=fake_microsoft, header={}),
        "wrong_audience": lambda: assertion(
            uploaded, fake=fake_microsoft, aud="https://login.example.com/token"
        ),
        "expired": lambda: assertion(uploaded, fake=fake_microsoft, exp=now - 3600),
        "valid_too_long": lambda: assertion(uploaded, fake=fake_microsoft, exp=now + 90 * 86400),
        "other_client": lambda: assertion(
            uploaded, fake=fake_microsoft, iss="00000000-0000-0000-0000-000000000000"
        ),
        "hs256": lambda: assertion(uploaded, fake=fake_microsoft).replace(
            assertion(uploaded, fake=fake_microsoft).split(".")[0], b64(b'{"alg":"HS256"}'), 1
        ),
        "garbage": lambda: "not.a-jwt",
    }[forgery]()

    status, body = post(fake_microsoft, made)

    assert status == 401 and body["error"] == "invalid_client"
    assert body["error_codes"] == [aadsts]
    error = oauth.explain(body, oauth.TokenRefreshError)
    assert error.secret_invalid and error.needs_person and not error.transient


def test_a_replayed_assertion_is_refused(fake_microsoft, uploaded):
    once = assertion(uploaded, fake=fake_microsoft)

    first, _ = post(fake_microsoft, once)
    second, body = post(fake_microsoft, once)

    assert (first, second) == (200, 401)
    assert body["error_codes"] == [50027] and "jti" in body["error_description"]


def test_an_assertion_of_another_app_with_our_client_id_is_refused(fake_microsoft, uploaded):
    status, body = post(
        fake_microsoft,
        assertion(uploaded, fake=fake_microsoft),
        client_id="00000000-0000-0000-0000-000000000000",
    )

    assert status == 400 and body["error_codes"] == [700016]  # No such app at all.
