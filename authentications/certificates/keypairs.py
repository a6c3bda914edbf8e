"""Certificate credentials: make, read and check the key pairs an app registration trusts.

Entra accepts a client assertion (a JWT) signed with a private key whose certificate was
uploaded to the app registration. Only `cryptography` is used here, error reports hide the
keys in these functions' variables, and nothing here touches the database: the
`Certificate` model stores what `generate`, `from_pem` and `from_pkcs12` return.
"""

import datetime
import functools
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from authentications.certificates import pfx_structure
from authentications.kit import formatting

KEY_BITS = 3072
MIN_KEY_BITS = 2048  # Entra refuses shorter RSA keys.
# Longer keys buy nothing Entra needs and cost seconds to check on every load: 8192 bits take
# 3-5 s per upload and again in every process that signs with it.
MAX_KEY_BITS = 4096
MAX_UPLOAD_BYTES = 64 * 1024


CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class CertificateError(ValueError):
    """An uploaded key or certificate that cannot be used; the message says why, for people."""


@dataclass(frozen=True)
class KeyPair:
    """A private key with its certificate, both PEM; the key never leaves the server."""

    private_key_pem: str = field(repr=False)
    certificate_pem: str

    @property
    def certificate(self):
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())


@sensitive_variables("key")
def generate(common_name, *, valid_days, now=None):
    """A new RSA key and a self-signed certificate for it, valid from now for `valid_days`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    certificate = self_signed(key, common_name, valid_days=valid_days, now=now)
    return KeyPair(_key_pem(key), _certificate_pem(certificate))


@sensitive_variables("key")
def self_signed(key, common_name, *, valid_days, now=None):
    """A certificate for `key`, signed by it, valid from `now` (a little before) on."""
    now = now or datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A few minutes back: clocks at Microsoft may run a little behind ours.
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@sensitive_variables("key_data", "certificate_data", "key")
def from_pem(key_data, certificate_data, *, now=None):
    """The pair from a PEM private key and a PEM certificate (one file may hold both)."""
    # Read without the costly consistency check first, so a huge key is refused cheaply; the
    # key that passes is loaded again with the check.
    _check_shape(_loaded_pem(key_data, unsafe_skip_rsa_key_validation=True))
    key = _loaded_pem(key_data)
    try:
        chain = x509.load_pem_x509_certificates(_bytes(certificate_data or key_data))
    except (ValueError, x509.InvalidVersion) as err:  # InvalidVersion is no ValueError.
        raise CertificateError("This is not a PEM certificate.") from err
    return _checked(key, _leaf_for(key, chain), now=now)


@sensitive_variables("key_data")
def _loaded_pem(key_data, **options):
    try:
        return serialization.load_pem_private_key(_bytes(key_data), password=None, **options)
    except TypeError as err:  # cryptography: the key is encrypted and no password given.
        raise CertificateError(
            "The private key is encrypted: upload it unencrypted, or as a .pfx with its password."
        ) from err
    except (ValueError, UnsupportedAlgorithm) as err:
        raise CertificateError("This is not a PEM private key.") from err


def _leaf_for(key, chain):
    """The certificate of `key` in a file that may hold a whole chain, in any order (CA
    bundles often put the intermediates first); the first one when none matches, so the
    mismatch is reported."""
    if not isinstance(key, rsa.RSAPrivateKey):
        return chain[0]
    mine = key.public_key().public_numbers()
    matching = (
        certificate
        for certificate in chain
        if isinstance(_public_key(certificate), rsa.RSAPublicKey)
        and _public_key(certificate).public_numbers() == mine
    )
    return next(matching, chain[0])


def _public_key(certificate):
    """The certificate's public key: `cryptography` reads it only when asked, so a spoiled
    one raises here, not when the certificate loads."""
    try:
        return certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as err:
        raise CertificateError("The certificate's public key cannot be read.") from err


@sensitive_variables("data", "password", "key")
def from_pkcs12(data, password, *, now=None):
    """The pair from a PKCS#12 (.pfx) file; the password is used here and kept nowhere."""
    try:
        shapes = pfx_structure.inspect(
            _bytes(data), password, max_iterations=settings.BC_PFX_MAX_ITERATIONS
        )
    except pfx_structure.PfxRefused as err:
        raise CertificateError(str(err)) from err
    for shape in shapes:
        _check_shape(shape)
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(
            _bytes(data), password.encode() if password else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as err:
        raise CertificateError(
            "The .pfx file could not be opened: the password is wrong, or it is not a PKCS#12 file."
        ) from err
    if key is None or certificate is None:
        raise CertificateError("The .pfx file must hold a private key and its certificate.")
    return _checked(key, certificate, now=now)


def _check_shape(key):
    """Refuse a key Entra cannot use or that costs seconds to load: `key` is a loaded key or
    what `pfx_structure` read of one."""
    if isinstance(key, rsa.RSAPrivateKey):
        key = pfx_structure.Key("RSA", bits=key.key_size)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        key = pfx_structure.Key("EC", curve=CURVE_NAMES.get(key.curve.name, key.curve.name))
    elif not isinstance(key, pfx_structure.Key):
        key = pfx_structure.Key("other")
    if key.kind == "EC":
        raise CertificateError(
            f"Entra needs an RSA key; this is an elliptic-curve key ({key.curve})."
        )
    if key.kind != "RSA":
        raise CertificateError("Entra needs an RSA key; this key is of another kind.")
    if key.bits > MAX_KEY_BITS:
        raise CertificateError(
            f"The key has {key.bits} bits; this site takes RSA keys of {MIN_KEY_BITS} to "
            f"{MAX_KEY_BITS} bits (longer ones cost seconds on every use and Entra gains "
            "nothing from them)."
        )


@sensitive_variables("key")
def _checked(key, certificate, *, now):
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("Entra needs an RSA key; this key is of another kind.")
    if key.key_size < MIN_KEY_BITS:
        raise CertificateError(
            f"The key has {key.key_size} bits; Entra needs at least {MIN_KEY_BITS}."
        )
    public_key = _public_key(certificate)
    if not isinstance(public_key, rsa.RSAPublicKey) or (
        public_key.public_numbers() != key.public_key().public_numbers()
    ):
        raise CertificateError("The private key does not match the certificate.")
    _readable(certificate)
    now = now or datetime.datetime.now(datetime.UTC)
    if certificate.not_valid_after_utc <= now:
        raise CertificateError(
            f"The certificate expired on {formatting.day(certificate.not_valid_after_utc)}."
        )
    return KeyPair(_key_pem(key), _certificate_pem(certificate))


def _readable(certificate):
    """Read now what is stored from the certificate: `cryptography` parses its subject and
    dates only when asked, so a spoiled one would otherwise fail while being saved."""
    try:
        certificate.subject.rfc4514_string()
        certificate.not_valid_before_utc, certificate.not_valid_after_utc  # noqa: B018
    except ValueError as err:
        raise CertificateError(
            "The certificate cannot be read: its subject or validity dates are malformed."
        ) from err


def _bytes(data):
    return data.encode() if isinstance(data, str) else bytes(data or b"")


@sensitive_variables("key")
def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _certificate_pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def der(certificate_pem):
    """The certificate as DER: the `.cer` file Entra's Upload certificate takes."""
    return x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )


def thumbprint(certificate_pem, algorithm="sha1"):
    """The thumbprint Entra shows (SHA-1, upper-case hex), or the SHA-256 one."""
    digest = hashes.SHA256() if algorithm == "sha256" else hashes.SHA1()  # noqa: S303
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    return certificate.fingerprint(digest).hex().upper()


@sensitive_variables("pair")
def msal_credential(pair):
    """What MSAL's `client_credential` takes for a certificate.

    Without a "thumbprint" MSAL 1.39 computes the SHA-256 thumbprint from the certificate and
    signs PS256 with an `x5t#S256` header; a "thumbprint" (SHA-1) would make it sign RS256
    with `x5t`, which Entra still takes but Microsoft is retiring. The key goes in loaded:
    given PEM, PyJWT would load it again for every assertion.
    """
    return {
        "private_key": loaded_key(pair.private_key_pem),
        "public_certificate": pair.certificate_pem,
    }


@functools.lru_cache(maxsize=64)
@sensitive_variables("private_key_pem")
def loaded_key(private_key_pem):
    """The key, loaded once per process: `cryptography` checks an RSA key as it loads it,
    which takes a fifth of a second for 3072 bits (signing one assertion takes 3 ms)."""
    return serialization.load_pem_private_key(private_key_pem.encode(), password=None)
