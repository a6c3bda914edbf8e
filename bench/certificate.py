"""Benchmark what a certificate costs compared with a client secret (prints its figures).

    .venv/bin/python bench/certificate.py [--rounds 20]

(a) making a key pair and certificate ("Generate certificate": RSA 3072);
(b) signing one client assertion as MSAL 1.39 does for each token request (PS256, x5t#S256),
    given the key as PEM (PyJWT loads and checks it every time) and as bcconnect gives it
    (`keypairs.msal_credential`: loaded once per process);
(c) the fake Entra verifying one (what Entra does on its side), for scale;
(d) refusing a .pfx whose MAC asks for 10^8 iterations (`keypairs.from_pkcs12`: the count
    is read from the file before anything is derived; OpenSSL would spend ~5 s on it), and
    opening an ordinary one (OpenSSL's 2048 iterations) for comparison.
A client secret costs none of these: it is sent as it is.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django
from msal.oauth2cli.assertion import JwtAssertionCreator

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcconnect.settings")
django.setup()

from authentications.certificates import keypairs  # noqa: E402
from tests.certificates import helpers as pfx_helpers  # noqa: E402
from tests.fakes.assertions import JWT_BEARER, AssertionChecker  # noqa: E402

CLIENT_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
ENDPOINT = "https://login.example/tenant/oauth2/v2.0/token"


def timed(action, rounds):
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    generate = timed(lambda: keypairs.generate("bench", valid_days=365), max(3, rounds // 4))
    pair = keypairs.generate("bench", valid_days=365)
    sha256 = keypairs.thumbprint(pair.certificate_pem, "sha256")
    from_pem = JwtAssertionCreator(pair.private_key_pem, "PS256", sha256_thumbprint=sha256)
    loaded = keypairs.msal_credential(pair)["private_key"]
    creator = JwtAssertionCreator(loaded, "PS256", sha256_thumbprint=sha256)

    def sign_from_pem():
        return from_pem.create_normal_assertion(ENDPOINT, CLIENT_ID).decode()

    def sign():
        return creator.create_normal_assertion(ENDPOINT, CLIENT_ID).decode()

    checker = AssertionChecker()
    made = [sign() for _ in range(rounds)]
    forms = iter(
        {"client_assertion_type": JWT_BEARER, "client_assertion": a, "client_id": CLIENT_ID}
        for a in made
    )

    def verify():
        checker.check(next(forms), certificates=[pair.certificate_pem], token_endpoints={ENDPOINT})

    key = pfx_helpers.rsa_key()
    ordinary = pfx_helpers.pfx(key)
    bomb = pfx_helpers.with_mac_iterations(ordinary, 10**8)

    def refuse_bomb():
        try:
            keypairs.from_pkcs12(bomb, pfx_helpers.PASSWORD)
        except keypairs.CertificateError:
            return
        raise SystemExit("the 10^8-iteration .pfx was not refused")

    def open_ordinary():
        keypairs.from_pkcs12(ordinary, pfx_helpers.PASSWORD)

    for label, (median, worst) in (
        ("generate key pair + certificate (RSA 3072)", generate),
        ("sign one assertion, key given as PEM", timed(sign_from_pem, max(3, rounds // 4))),
        ("sign one assertion, key loaded once (ours)", timed(sign, rounds)),
        ("verify one client assertion (fake Entra)", timed(verify, rounds)),
        ("refuse a .pfx asking 10^8 MAC iterations", timed(refuse_bomb, rounds)),
        ("open an ordinary .pfx (2048 iterations)", timed(open_ordinary, max(3, rounds // 4))),
    ):
        print(f"{label:<46} median {median:8.2f} ms   max {worst:8.2f} ms")


if __name__ == "__main__":
    main()
