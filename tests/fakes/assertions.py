"""Client assertions checked as Entra checks them, with `cryptography` alone (no PyJWT).

A confidential client that holds a certificate proves itself with a JWT: signed RS256 or
PS256 by the private key of a certificate uploaded to the app registration, named in the
header by its thumbprint (`x5t`, SHA-1, or `x5t#S256`), its `aud` the token endpoint,
`iss` and `sub` the client ID, `exp` in the future and not too far, and a `jti` that is
never accepted twice. Each failure is answered with an Entra code; which code Entra gives
for each case is not all documented, so these follow what Entra is seen to answer.
"""

import base64
import binascii
import json
import threading
import time

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME = 24 * 3600  # An assertion valid for longer than this is refused.
CLOCK_SKEW = 300


class AssertionRefused(Exception):
    """What Entra answers: its AADSTS number and description (error is invalid_client)."""

    def __init__(self, aadsts, description):
        super().__init__(description)
        self.aadsts = aadsts
        self.description = description


def _unb64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _x5t(certificate, algorithm):
    digest = certificate.fingerprint(algorithm)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class AssertionChecker:
    """The `jti`s seen so far, and the checks; one per fake Entra."""

    def __init__(self):
        self._seen = {}  # jti -> exp
        self._lock = threading.Lock()

    def check(self, form, *, certificates, token_endpoints):
        """Raise AssertionRefused unless `form` carries a valid assertion for `certificates`.

        `certificates`: the PEM certificates uploaded to the app registration;
        `token_endpoints`: the URLs `aud` may name.
        """
        if form.get("client_assertion_type") != JWT_BEARER:
            raise AssertionRefused(
                50027, "Invalid JWT token. The client_assertion_type must be jwt-bearer."
            )
        header, claims, signed, signature = self._parse(form.get("client_assertion", ""))
        certificate = self._certificate(header, certificates)
        self._verify_signature(header, certificate, signed, signature)
        self._check_claims(claims, client_id=form.get("client_id", ""), audiences=token_endpoints)
        self._use_once(claims)

    @staticmethod
    def _parse(assertion):
        try:
            head, body, signature = assertion.split(".")
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
            signature = _unb64(signature)
        except (ValueError, binascii.Error, UnicodeDecodeError) as err:
            raise AssertionRefused(50027, "Invalid JWT token. Token format not valid.") from err
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AssertionRefused(50027, "Invalid JWT token. Token format not valid.")
        return header, claims, f"{head}.{body}".encode(), signature

    @staticmethod
    def _certificate(header, certificates):
        # MSAL pads the base64url thumbprint ("...="); RFC 7515 does not. Entra takes both.
        wanted_sha256, wanted_sha1 = (
            str(header.get(name) or "").rstrip("=") for name in ("x5t#S256", "x5t")
        )
        for pem in certificates:
            certificate = x509.load_pem_x509_certificate(pem.encode())
            if wanted_sha256 and wanted_sha256 == _x5t(certificate, hashes.SHA256()):
                return certificate
            if wanted_sha1 and wanted_sha1 == _x5t(certificate, hashes.SHA1()):
                return certificate
        raise AssertionRefused(
            700027,
            "The certificate with identifier used to sign the client assertion is not "
            "registered on application. [Reason - The key was not found., Thumbprint of key "
            f"used by client: '{wanted_sha256 or wanted_sha1}']",
        )

    @staticmethod
    def _verify_signature(header, certificate, signed, signature):
        algorithm = header.get("alg")
        if algorithm == "RS256":
            scheme = padding.PKCS1v15()
        elif algorithm == "PS256":
            scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        else:
            raise AssertionRefused(
                700027, f"Client assertion uses an unsupported alg '{algorithm}'."
            )
        try:
            certificate.public_key().verify(signature, signed, scheme, hashes.SHA256())
        except InvalidSignature as err:
            raise AssertionRefused(700027, "Client assertion failed signature validation.") from err

    @staticmethod
    def _check_claims(claims, *, client_id, audiences):
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise AssertionRefused(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        if claims.get("aud") not in audiences:
            raise AssertionRefused(
                50027,
                f"Invalid JWT token. The audience '{claims.get('aud')}' is not the token endpoint.",
            )
        now = time.time()
        expires, not_before = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(expires, (int, float)) or not isinstance(not_before, (int, float)):
            raise AssertionRefused(50027, "Invalid JWT token. exp and nbf must be numbers.")
        if (
            expires <= now - CLOCK_SKEW
            or expires > now + MAX_LIFETIME
            or not_before > now + CLOCK_SKEW
        ):
            raise AssertionRefused(700024, "Client assertion is not within its valid time range.")

    def _use_once(self, claims):
        jti, now = claims.get("jti"), time.time()
        if not jti:
            raise AssertionRefused(50027, "Invalid JWT token. The assertion has no jti.")
        with self._lock:
            self._seen = {seen: exp for seen, exp in self._seen.items() if exp > now - CLOCK_SKEW}
            if jti in self._seen:
                raise AssertionRefused(
                    50027, "Invalid JWT token. The assertion's jti was already used (replay)."
                )
            self._seen[jti] = claims["exp"]
