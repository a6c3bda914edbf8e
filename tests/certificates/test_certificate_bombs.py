"""Uploads built to burn a core: a .pfx asking for absurd key-derivation counts, RSA keys far
longer than Entra needs. Each is refused for what it is, before the work, and stores nothing."""

import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.asserts import assertContains

from authentications.certificates import keypairs, pfx_structure, rc2
from authentications.certificates.models import Certificate
from authentications.connections.models import Event
from tests.certificates import helpers as pfx_helpers
from tests.helpers import admin_change_url

pytestmark = pytest.mark.django_db


def upload_url(authentication):
    return admin_change_url(authentication).replace("change/", "certificates/upload/")


@pytest.fixture(scope="module")
def key():
    return pfx_helpers.rsa_key()


@pytest.fixture(scope="module")
def long_key():
    """Just past the 4096-bit limit: cheap to generate, and on the wrong side of the line."""
    return pfx_helpers.rsa_key(4104)


def upload_pfx(client, authentication, data, password=pfx_helpers.PASSWORD):
    return client.post(
        upload_url(authentication),
        {"pfx": SimpleUploadedFile("bomb.pfx", data), "password": password},
    )


def assert_nothing_stored(authentication, events_before):
    assert not Certificate.objects.filter(authentication=authentication).exists()
    assert authentication.events.count() == events_before


def test_a_pfx_asking_for_10_8_mac_iterations_is_refused_for_its_count(
    admin_client, make_authentication, key
):
    authentication = make_authentication()
    events = authentication.events.count()
    data = pfx_helpers.with_mac_iterations(pfx_helpers.pfx(key), 10**8)

    response = upload_pfx(admin_client, authentication, data)

    assert response.status_code == 200
    assertContains(response, "asks for 100,000,000 key-derivation iterations")
    assertContains(response, "integrity check (MAC)")
    assert_nothing_stored(authentication, events)


def test_a_pfx_whose_encrypted_parts_ask_for_too_many_iterations_is_refused(
    admin_client, make_authentication, key, settings
):
    settings.BC_PFX_MAX_ITERATIONS = 5000
    authentication = make_authentication()
    events = authentication.events.count()
    data = pfx_helpers.pfx(key, rounds=5001)

    response = upload_pfx(admin_client, authentication, data)

    assertContains(response, "asks for 5,001 key-derivation iterations")
    assertContains(response, "at most 5,000")
    assert_nothing_stored(authentication, events)


@pytest.mark.parametrize(
    "algorithm",
    [pkcs12.PBES.PBESv2SHA256AndAES256CBC, pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC],
)
def test_a_count_at_the_cap_opens(admin_client, make_authentication, key, settings, algorithm):
    settings.BC_PFX_MAX_ITERATIONS = 2048
    authentication = make_authentication()

    upload_pfx(admin_client, authentication, pfx_helpers.pfx(key, algorithm=algorithm))

    assert Certificate.objects.filter(authentication=authentication).count() == 1


def test_the_default_cap_takes_what_windows_openssl_and_java_export():
    assert 10_000 <= keypairs.settings.BC_PFX_MAX_ITERATIONS <= 600_000


@pytest.mark.parametrize("form", ["pfx", "pem"])
def test_an_rsa_key_above_4096_bits_is_refused(admin_client, make_authentication, long_key, form):
    authentication = make_authentication()
    events = authentication.events.count()
    if form == "pfx":
        response = upload_pfx(admin_client, authentication, pfx_helpers.pfx(long_key))
    else:
        response = admin_client.post(
            upload_url(authentication),
            {"private_key": SimpleUploadedFile("key.pem", pfx_helpers.pem(long_key))},
        )

    assertContains(response, "The key has 4104 bits; this site takes RSA keys of 2048 to 4096")
    assert_nothing_stored(authentication, events)


def test_a_long_key_is_refused_before_its_primes_are_checked(long_key, monkeypatch):
    """The costly part of loading an RSA key is checking it; a refused key never gets there."""
    checked = []
    real = keypairs.serialization.load_pem_private_key

    def load(data, password, *, unsafe_skip_rsa_key_validation=False):
        checked.append(not unsafe_skip_rsa_key_validation)
        return real(data, password, unsafe_skip_rsa_key_validation=unsafe_skip_rsa_key_validation)

    monkeypatch.setattr(keypairs.serialization, "load_pem_private_key", load)
    with pytest.raises(keypairs.CertificateError, match="4104 bits"):
        keypairs.from_pem(pfx_helpers.pem(long_key), None)
    assert checked == [False]


def test_an_ec_key_in_a_pfx_is_refused_before_opening_it(admin_client, make_authentication):
    authentication = make_authentication()
    ec_key = ec.generate_private_key(ec.SECP521R1())
    data = pfx_helpers.pfx(ec_key)

    response = upload_pfx(admin_client, authentication, data)

    assertContains(response, "elliptic-curve key (P-521)")
    assert not Certificate.objects.filter(authentication=authentication).exists()


@pytest.mark.parametrize(
    "data",
    [b"\x30\x80" * 2000, b"\x30\x84\xff\xff\xff\xff", b"not a pfx", b""],
    ids=["deep-indefinite", "huge-length", "text", "empty"],
)
def test_a_file_whose_structure_cannot_be_read_is_refused_clearly(data):
    with pytest.raises(keypairs.CertificateError, match="could not be"):
        keypairs.from_pkcs12(data or b"\x30\x00", "pw")


def test_the_wrong_password_is_found_before_openssl_runs(key):
    with pytest.raises(keypairs.CertificateError, match="password is wrong"):
        keypairs.from_pkcs12(pfx_helpers.pfx(key), "not the password")


def test_a_truncated_pfx_is_refused(key):
    with pytest.raises(keypairs.CertificateError, match="could not be read"):
        keypairs.from_pkcs12(pfx_helpers.pfx(key)[:-40], pfx_helpers.PASSWORD)


def test_rc2_decrypts_the_rfc_2268_test_vectors():
    vectors = [
        ("0000000000000000", 63, "0000000000000000", "ebb773f993278eff"),
        ("ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"),
        ("3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"),
        ("88", 64, "0000000000000000", "61a8a244adacccf0"),
        ("88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"),
    ]
    for key, bits, plain, cipher in vectors:
        keys = rc2.expand_key(bytes.fromhex(key), bits)
        assert rc2.decrypt_block(keys, bytes.fromhex(cipher)).hex() == plain


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
@pytest.mark.parametrize("legacy", [True, False], ids=["openssl-legacy-rc2", "openssl-3"])
def test_files_the_openssl_command_exports_still_open(tmp_path, key, legacy):
    (tmp_path / "all.pem").write_bytes(pfx_helpers.pem(key))
    command = ["openssl", "pkcs12", "-export", "-in", tmp_path / "all.pem"]
    command += ["-out", tmp_path / "out.pfx", "-passout", "pass:pw"]
    if legacy:
        command.append("-legacy")
    if subprocess.run(command, capture_output=True, check=False).returncode:
        pytest.skip("this openssl cannot export that form")

    keys = pfx_structure.inspect((tmp_path / "out.pfx").read_bytes(), "pw", max_iterations=2048)

    assert keys == [pfx_structure.Key("RSA", bits=2048)]
    pair = keypairs.from_pkcs12((tmp_path / "out.pfx").read_bytes(), "pw")
    assert pair.certificate_pem


def test_a_refused_upload_records_no_event(admin_client, make_authentication, key):
    authentication = make_authentication()
    data = pfx_helpers.with_mac_iterations(pfx_helpers.pfx(key), 2**31 - 1)

    upload_pfx(admin_client, authentication, data)

    assert not Event.objects.filter(
        authentication=authentication, kind=Event.Kind.CERTIFICATE_CHANGED
    ).exists()


def test_a_key_bag_hidden_in_an_encrypted_part_is_checked_too():
    data = pfx_helpers.key_bag_hidden_in_encrypted_part(10**9)

    with pytest.raises(pfx_structure.PfxRefused, match="1,000,000,000 key-derivation"):
        pfx_structure.inspect(data, pfx_helpers.PASSWORD, max_iterations=100_000)
    with pytest.raises(pfx_structure.PfxRefused, match="password is wrong"):
        pfx_structure.inspect(data, "another password", max_iterations=100_000)


def test_a_certificate_whose_public_key_cannot_be_read_is_refused_not_a_500(
    admin_client, make_authentication, key
):
    """Found by the upload fuzz (tests/stress): the certificate loads, its key does not."""
    authentication = make_authentication()
    key_pem = pfx_helpers.pem(key).split(b"-----BEGIN CERTIFICATE-----")[0]
    certificate = pfx_helpers.certificate_with_unreadable_key(key)

    response = admin_client.post(
        upload_url(authentication),
        {
            "private_key": SimpleUploadedFile("key.pem", key_pem),
            "certificate": SimpleUploadedFile("cert.pem", certificate),
        },
    )

    assertContains(response, "public key cannot be read")
    assert not Certificate.objects.filter(authentication=authentication).exists()


def test_a_certificate_whose_subject_cannot_be_read_is_refused_not_a_500(
    admin_client, make_authentication, key
):
    """Found by the upload fuzz (tests/stress): key and certificate load, the subject does not."""
    authentication = make_authentication()
    key_pem = pfx_helpers.pem(key).split(b"-----BEGIN CERTIFICATE-----")[0]
    certificate = pfx_helpers.certificate_with_unreadable_subject(key)

    response = admin_client.post(
        upload_url(authentication),
        {
            "private_key": SimpleUploadedFile("key.pem", key_pem),
            "certificate": SimpleUploadedFile("cert.pem", certificate),
        },
    )

    assertContains(response, "certificate cannot be read")
    assert not Certificate.objects.filter(authentication=authentication).exists()
