"""Fuzz two doors with hypothesis: the admin-consent callback and the certificate upload.

Each generated request must get an answer that is not a 500, must leave what is stored as
it was when it is refused (tokens, tenant, grant, credential, certificates), and no answer
may carry a secret (client secret, private key, binding cookie, .pfx password). At least
STRESS_FUZZ_REQUESTS (tests.helpers.FUZZ_REQUESTS) go to each door; the time is reported.
"""

import random
import time
from http.cookies import SimpleCookie

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from authentications.certificates.models import Certificate
from authentications.connections.models import Authentication, AuthorizationRequest
from authentications.signin import flows
from tests.certificates import helpers as pfx_helpers
from tests.fakes.admin_consent import FABRIKAM_TENANT_ID
from tests.fakes.entra import CLIENT_SECRET
from tests.helpers import FUZZ_REQUESTS, admin_change_url, key_pair, use_certificate

from .conftest import reports

pytestmark = [pytest.mark.stress, pytest.mark.django_db]

REQUESTS = FUZZ_REQUESTS
CALLBACK = "/authentications/callback/"
MARK = "pw\u00a7"  # What every generated .pfx password starts with.
# What is stored about a connection that no refused request may change.
GUARDED = (
    "tenant_id",
    "client_id",
    "client_secret",
    "credential_type",
    "access_token",
    "refresh_token",
    "access_token_expires_at",
    "status",
    "granted_by_upn",
    "granted_by_name",
    "granted_at",
    "granted_via",
    "link_nonce",
    "base_url",
)


def fuzz_settings(examples):
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def stored(authentication_ids):
    rows = Authentication.objects.filter(pk__in=authentication_ids).order_by("pk")
    certificates = Certificate.objects.order_by("pk").values_list("pk", "role", "thumbprint_sha1")
    return list(rows.values_list(*GUARDED)), list(certificates)


def assert_no_secret(response, secrets):
    body = response.content
    for secret in secrets:
        assert secret.encode() not in body, "a secret is in the answer"
    for name, value in response.items():
        assert not any(secret in value for secret in secrets), f"a secret is in {name}"


nasty_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            "\x00",
            "True",
            "true",
            "TRUE ",
            "false",
            "1",
            "<script>alert(1)</script>",
            "A" * 5000,
            "%00%0d%0a",
            "\u202e\ufeff",
            FABRIKAM_TENANT_ID,
            FABRIKAM_TENANT_ID.upper(),
            "00000000-0000-0000-0000-000000000000",
            "organizations",
            "../common",
            "AADSTS700027: The certificate with identifier used to sign the client assertion "
            "is not registered on application.",
        ]
    ),
)
consent_keys = st.sampled_from(
    ["admin_consent", "tenant", "error", "error_description", "error_subcode", "scope", "iss"]
)


# --- door 1: the admin-consent callback -----------------------------------------------------


@pytest.fixture
def consent_targets(make_authentication, fake_microsoft, settings):
    """Two connections waiting for a customer's consent that Entra will not prove: one with
    a client secret, one with a certificate Entra does not know (AADSTS700027)."""
    settings.BC_PUBLIC_RATE_LIMIT = ""
    base_url = fake_microsoft.bc.base_url(tenant=FABRIKAM_TENANT_ID)
    with_secret = make_authentication(
        name="Fuzz secret",
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        tenant_id=FABRIKAM_TENANT_ID,
        base_url=base_url,
    )
    with_certificate = make_authentication(
        name="Fuzz certificate",
        kind=Authentication.Kind.SERVICE_TO_SERVICE,
        tenant_id="",
        base_url=base_url,
    )
    use_certificate(fake_microsoft, with_certificate, key_pair(), uploaded=False)
    return [with_secret, Authentication.objects.get(pk=with_certificate.pk)]


consent_answers = st.fixed_dictionaries(
    {
        "target": st.integers(0, 1),
        "state": st.sampled_from(["pending", "pending", "random", "missing", "used"]),
        "cookie": st.sampled_from(["right", "right", "wrong", "missing"]),
        "method": st.sampled_from(["get", "post"]),
        "params": st.dictionaries(
            st.one_of(consent_keys, st.text(min_size=1, max_size=12)), nasty_text, max_size=6
        ),
        "consent": st.sampled_from(["true", "True", "", "false"]),
        "tenant": nasty_text,
        # Mostly refused before Entra is asked (cheap); now and then the tenant is the right
        # one, so the fake Entra is asked for a token and refuses it (a slow round trip).
        "ask_entra": st.integers(0, 39),
    }
)


def test_the_admin_consent_callback_refuses_whatever_is_sent(client, consent_targets):
    ids = [target.pk for target in consent_targets]
    secrets = [CLIENT_SECRET, key_pair().private_key_pem.splitlines()[1]]
    before = stored(ids)
    sent = []
    used_state = []
    started, cpu = time.perf_counter(), time.process_time()

    @fuzz_settings(REQUESTS)
    @given(answer=consent_answers)
    def send(answer):
        target = consent_targets[answer["target"]]
        tenant = FABRIKAM_TENANT_ID if answer["ask_entra"] == 0 else answer["tenant"]
        params = {"admin_consent": answer["consent"], "tenant": tenant}
        params.update(answer["params"])
        cookies = SimpleCookie()
        if answer["state"] in ("pending", "used"):
            if answer["state"] == "used" and used_state:
                state, binding = used_state[-1]
            else:
                start = flows.start_admin_consent(target, via=AuthorizationRequest.Via.LINK)
                state, binding = start.request.state, start.cookie_value
                used_state.append((state, binding))
            params["state"] = state
            if answer["cookie"] != "missing":
                value = binding if answer["cookie"] == "right" else binding[::-1]
                cookies[flows.binding_cookie_name(state)] = value
            secrets_now = [*secrets, binding]
        else:
            if answer["state"] == "random":
                params["state"] = answer["tenant"] or "x"
            secrets_now = secrets
        client.cookies = cookies
        call = client.post if answer["method"] == "post" else client.get
        response = call(CALLBACK, params)
        sent.append(response.status_code)
        assert response.status_code < 500 or response.status_code == 503, response.status_code
        assert response.status_code not in (200, 302, 303), "a refused answer looked granted"
        assert_no_secret(response, secrets_now)
        assert stored(ids) == before

    send()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(sent) >= REQUESTS
    assert 500 not in sent
    reports.append(
        f"admin-consent callback fuzz: {len(sent)} requests in {seconds:.1f} s "
        f"({cpu:.1f} s CPU of this process) "
        f"({', '.join(f'{code}: {sent.count(code)}' for code in sorted(set(sent)))})"
    )


# --- door 2: the certificate upload ---------------------------------------------------------


@pytest.fixture(scope="module")
def upload_material():
    """Real files to mutate: a .pfx of each encryption, a PEM key with its certificate."""
    key = pfx_helpers.rsa_key()
    from cryptography.hazmat.primitives.serialization import pkcs12

    files = {
        "pfx-aes": pfx_helpers.pfx(key),
        "pfx-3des": pfx_helpers.pfx(key, algorithm=pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC),
        "pfx-bomb": pfx_helpers.with_mac_iterations(pfx_helpers.pfx(key), 2**31 - 1),
        "pem": pfx_helpers.pem(key),
    }
    return key, files


def mutated(data, how, seed):
    rng = random.Random(seed)
    data = bytearray(data)
    if how == "flip" and data:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == "truncate" and data:
        del data[rng.randrange(len(data)) :]
    elif how == "splice" and data:
        at = rng.randrange(len(data))
        data[at:at] = rng.randbytes(rng.randint(1, 64))
    elif how == "length" and len(data) > 4:  # A length byte made huge or indefinite.
        at = rng.randrange(1, min(len(data), 400))
        data[at] = rng.choice([0x80, 0x84, 0xFF, 0x00])
    return bytes(data)


uploads = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["pfx-aes", "pfx-3des", "pfx-bomb", "pem", "random", "empty"]),
        "how": st.sampled_from(["flip", "flip", "truncate", "splice", "length", "none"]),
        "seed": st.integers(0, 2**32),
        "field": st.sampled_from(["pfx", "private_key", "both", "certificate", "none"]),
        # Passwords are marked, so one found in an answer was echoed, not met by chance.
        "password": st.one_of(st.just(pfx_helpers.PASSWORD), nasty_text.map(MARK.__add__)),
    }
)


def test_the_certificate_upload_refuses_whatever_is_sent(
    admin_client, make_authentication, upload_material, settings, monkeypatch
):
    settings.BC_PFX_MAX_ITERATIONS = 100_000
    # The admin's app list in the sidebar is most of a page's rendering time, and no answer
    # of this door puts anything in it.
    monkeypatch.setattr(admin.site, "enable_nav_sidebar", False)
    authentication = make_authentication(name="Fuzz upload")
    url = admin_change_url(authentication).replace("change/", "certificates/upload/")
    key, files = upload_material
    private_pem = pfx_helpers.pem(key).split(b"\n")[1].decode()
    sent = []
    events = authentication.events.count()
    started, cpu = time.perf_counter(), time.process_time()

    @fuzz_settings(REQUESTS)
    @given(upload=uploads)
    def send(upload):
        nonlocal events
        if upload["source"] == "random":  # Bytes from the seed: cheaper than drawing them.
            rng = random.Random(upload["seed"])
            data = rng.randbytes(rng.randint(1, 300))
        elif upload["source"] == "empty":
            data = b""
        else:
            data = files[upload["source"]]
        if upload["how"] != "none":
            data = mutated(data, upload["how"], upload["seed"])
        post = {"password": upload["password"]}
        field = upload["field"]
        if field in ("pfx", "both"):
            post["pfx"] = SimpleUploadedFile("upload.pfx", data)
        if field in ("private_key", "both"):
            post["private_key"] = SimpleUploadedFile("key.pem", data)
        if field == "certificate":
            post["certificate"] = SimpleUploadedFile("cert.pem", data)
        response = admin_client.post(url, post)

        sent.append(response.status_code)
        assert response.status_code in (200, 302), response.status_code
        secrets = [private_pem, upload["password"]]
        assert_no_secret(response, secrets)
        added = Certificate.objects.filter(authentication=authentication)
        if response.status_code == 200:  # Refused: the form again, nothing stored.
            assert not added.exists()
            assert authentication.events.count() == events
        else:  # Accepted (an intact file): start again from no certificate.
            assert added.delete()[0] == 1
            events = authentication.events.count()

    send()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(sent) >= REQUESTS
    reports.append(
        f"certificate upload fuzz: {len(sent)} requests in {seconds:.1f} s "
        f"({cpu:.1f} s CPU of this process) "
        f"(refused {sent.count(200)}, accepted {sent.count(302)})"
    )
