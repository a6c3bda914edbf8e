"""What opening a .pfx would cost, read from its structure before anything derives a key.

A PKCS#12 file names its own key-derivation work: the MAC's iteration count and those of
every encrypted part (PBES2/PBKDF2 or the legacy pbeWithSHAAnd... schemes). `cryptography`
(OpenSSL) runs whatever count the file asks for, so a 64 KB upload asking for 2^31-1
iterations keeps a web worker busy for minutes. This module reads just enough DER (RFC 7292,
RFC 8018) to refuse such a file first, and decrypts the encrypted parts itself, once their
counts are known to be small, because a key bag inside them names a count of its own and an
RSA key whose size decides what loading it costs. It keeps nothing and logs nothing.
"""

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.views.decorators.debug import sensitive_variables

from authentications.certificates import rc2

MAX_DEPTH = 24  # Real files nest about eight deep.
MAX_ENCRYPTED_PARTS = 8  # OpenSSL, Windows and Key Vault write two: the certificates, the key.

PKCS7_DATA = "1.2.840.113549.1.7.1"
PKCS7_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
KEY_BAG = "1.2.840.113549.1.12.10.1.1"
SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
SAFE_CONTENTS_BAG = "1.2.840.113549.1.12.10.1.6"
PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
PBMAC1 = "1.2.840.113549.1.5.14"
RSA = "1.2.840.113549.1.1.1"
RSA_PSS = "1.2.840.113549.1.1.10"
EC = "1.2.840.10045.2.1"
CURVES = {"1.2.840.10045.3.1.7": "P-256", "1.3.132.0.34": "P-384", "1.3.132.0.35": "P-521"}
PRFS = {
    "1.2.840.113549.2.7": hashes.SHA1,
    "1.2.840.113549.2.8": hashes.SHA224,
    "1.2.840.113549.2.9": hashes.SHA256,
    "1.2.840.113549.2.10": hashes.SHA384,
    "1.2.840.113549.2.11": hashes.SHA512,
}
PBES2_CIPHERS = {  # OID: (algorithm, key bytes)
    "2.16.840.1.101.3.4.1.2": (algorithms.AES, 16),
    "2.16.840.1.101.3.4.1.22": (algorithms.AES, 24),
    "2.16.840.1.101.3.4.1.42": (algorithms.AES, 32),
    "1.2.840.113549.3.7": (TripleDES, 24),
}
RC2 = "RC2"
# RFC 7292 appendix C, pbeWithSHAAnd...: (algorithm, key bytes); the RC4 ones are refused.
PKCS12_PBE = {
    "1.2.840.113549.1.12.1.3": (TripleDES, 24),
    "1.2.840.113549.1.12.1.4": (TripleDES, 16),
    "1.2.840.113549.1.12.1.5": (RC2, 16),
    "1.2.840.113549.1.12.1.6": (RC2, 5),
}

UNREADABLE = (
    "The .pfx file could not be read: it is not a PKCS#12 file, or uses a form this site does "
    "not open (export it again from Windows, OpenSSL or Key Vault)."
)
WRONG_PASSWORD = (
    "The .pfx file could not be opened: the password is wrong, or it is not a PKCS#12 file."
)


class PfxRefused(ValueError):
    """A .pfx refused before opening it; the message says why, for people."""


@dataclass(frozen=True)
class Node:
    tag: int
    value: bytes = b""
    children: tuple = ()


@dataclass(frozen=True)
class Key:
    """What the file says of its private key, read without loading it."""

    kind: str  # "RSA", "EC" or "other"
    bits: int = 0
    curve: str = ""


class _Budget:
    """The iterations a file may ask for, each and in all."""

    def __init__(self, cap):
        self.cap, self.left, self.parts = cap, 4 * cap, 0

    def spend(self, count, what):
        if count < 1:
            raise PfxRefused(UNREADABLE)
        if count > self.cap:
            raise PfxRefused(
                f"The .pfx file asks for {count:,} key-derivation iterations for its {what}; "
                f"this site opens files asking for at most {self.cap:,} (Windows, OpenSSL and "
                "Azure Key Vault export a few thousand). Export it again with their defaults."
            )
        self.left -= count
        if self.left < 0:
            raise PfxRefused("The .pfx file asks for too much key derivation in all.")


@sensitive_variables("data", "password")
def inspect(data, password, *, max_iterations):
    """The keys in the .pfx `data`, once its counts are known to be at most `max_iterations`.

    Raises PfxRefused before any key derivation when a count is larger, when the structure
    cannot be read, or when the password does not open its encrypted parts.
    """
    budget = _Budget(max_iterations)
    try:
        pfx = _sequence(_parse(data), 2)
        if _integer(pfx[0]) != 3:
            raise PfxRefused(UNREADABLE)
        if len(pfx) > 2:
            _check_mac(pfx[2], budget)
        kind, content = _content_info(pfx[1])
        if kind != PKCS7_DATA:  # Public-key integrity mode: OpenSSL cannot open it either.
            raise PfxRefused(UNREADABLE)
        keys = []
        for info in _sequence(_parse(_octets(content))):
            keys += _safe_contents_of(info, password, budget)
        return keys
    except (IndexError, ValueError, OverflowError) as err:
        if isinstance(err, PfxRefused):
            raise
        raise PfxRefused(UNREADABLE) from err


def _check_mac(mac_data, budget):
    mac = _sequence(mac_data, 2)
    algorithm = _sequence(_sequence(mac[0], 2)[0], 1)
    if _oid(algorithm[0]) == PBMAC1:  # RFC 9579: the count is in its PBKDF2 parameters.
        kdf = _sequence(_sequence(algorithm[1], 2)[0], 2)
        if _oid(kdf[0]) != PBKDF2:
            raise PfxRefused(UNREADABLE)
        budget.spend(_integer(_sequence(kdf[1], 2)[1]), "integrity check (MAC)")
    iterations = _integer(mac[2]) if len(mac) > 2 else 1
    budget.spend(iterations, "integrity check (MAC)")


def _content_info(node):
    info = _sequence(node, 1)
    content = None
    if len(info) > 1:
        if info[1].tag != 0xA0 or len(info[1].children) != 1:
            raise PfxRefused(UNREADABLE)
        content = info[1].children[0]
    return _oid(info[0]), content


@sensitive_variables("password")
def _safe_contents_of(content_info, password, budget):
    kind, content = _content_info(content_info)
    if kind == PKCS7_DATA:
        return _bags(_parse(_octets(content)), password, budget, depth=0)
    if kind != PKCS7_ENCRYPTED_DATA:  # envelopedData: opened with a key this site lacks.
        raise PfxRefused(UNREADABLE)
    encrypted = _sequence(_sequence(content, 2)[1], 2)
    if len(encrypted) < 3 or encrypted[2].tag not in (0x80, 0xA0):
        raise PfxRefused(UNREADABLE)
    ciphertext = _octets(encrypted[2], implicit=True)
    plain = _decrypt(encrypted[1], ciphertext, password, budget, "certificates")
    return _bags(plain, password, budget, depth=0)


@sensitive_variables("password")
def _bags(safe_contents, password, budget, *, depth):
    if depth > 4:
        raise PfxRefused(UNREADABLE)
    keys = []
    for bag in _sequence(safe_contents):
        fields = _sequence(bag, 2)
        kind = _oid(fields[0])
        if fields[1].tag != 0xA0 or len(fields[1].children) != 1:
            raise PfxRefused(UNREADABLE)
        value = fields[1].children[0]
        if kind == KEY_BAG:
            keys.append(private_key_info(value))
        elif kind == SHROUDED_KEY_BAG:
            shrouded = _sequence(value, 2)
            plain = _decrypt(shrouded[0], _octets(shrouded[1]), password, budget, "private key")
            keys.append(private_key_info(plain))
        elif kind == SAFE_CONTENTS_BAG:
            keys += _bags(value, password, budget, depth=depth + 1)
    return keys


def private_key_info(node):
    """The kind and size of the key in a PKCS#8 PrivateKeyInfo, without loading it."""
    fields = _sequence(node, 3)
    algorithm = _sequence(fields[1], 1)
    kind = _oid(algorithm[0])
    if kind in (RSA, RSA_PSS):
        modulus = _sequence(_parse(_octets(fields[2])), 2)[1]
        return Key("RSA", bits=_integer(modulus).bit_length())
    if kind == EC:
        curve = algorithm[1] if len(algorithm) > 1 else None
        name = CURVES.get(_oid(curve), "") if curve is not None and curve.tag == 0x06 else ""
        return Key("EC", curve=name or "an explicit or unnamed curve")
    return Key("other")


# --- decrypting an encrypted part, with its count checked first -----------------------------


@sensitive_variables("password", "key", "iv")
def _decrypt(algorithm_node, ciphertext, password, budget, what):
    algorithm = _sequence(algorithm_node, 2)
    scheme = _oid(algorithm[0])
    budget.parts += 1
    if budget.parts > MAX_ENCRYPTED_PARTS:
        raise PfxRefused(UNREADABLE)
    if scheme == PBES2:
        tries = _pbes2(algorithm[1], password, budget, what)
    elif scheme in PKCS12_PBE:
        tries = _pkcs12_pbe(scheme, algorithm[1], password, budget, what)
    else:
        raise PfxRefused(UNREADABLE)
    for cipher, key, iv in tries:
        plain = _unpadded(cipher, key, iv, ciphertext)
        if plain is not None:
            return plain
    raise PfxRefused(WRONG_PASSWORD)


@sensitive_variables("password")
def _pbes2(parameters, password, budget, what):
    kdf, scheme = _sequence(parameters, 2)[:2]
    kdf, scheme = _sequence(kdf, 2), _sequence(scheme, 2)
    if _oid(kdf[0]) != PBKDF2 or _oid(scheme[0]) not in PBES2_CIPHERS:
        raise PfxRefused(UNREADABLE)
    fields = _sequence(kdf[1], 2)
    iterations = _integer(fields[1])
    budget.spend(iterations, what)
    prf = hashes.SHA1
    rest = fields[2:]
    if rest and rest[0].tag == 0x02:  # keyLength: the cipher's own is used.
        rest = rest[1:]
    if rest:
        prf = PRFS.get(_oid(_sequence(rest[0], 1)[0]))
        if prf is None:
            raise PfxRefused(UNREADABLE)
    cipher, size = PBES2_CIPHERS[_oid(scheme[0])]
    iv = _octets(scheme[1])
    salt = _octets(fields[0])
    for secret in _password_bytes(password):
        kdf_function = PBKDF2HMAC(prf(), size, salt, iterations)
        yield cipher, kdf_function.derive(secret), iv


@sensitive_variables("password")
def _pkcs12_pbe(scheme, parameters, password, budget, what):
    fields = _sequence(parameters, 2)
    salt, iterations = _octets(fields[0]), _integer(fields[1])
    budget.spend(iterations, what)
    cipher, size = PKCS12_PBE[scheme]
    secrets = [_bmp(password)]
    if not password:  # OpenSSL tries the empty password both ways.
        secrets.append(b"")
    for secret in secrets:
        key = pkcs12_kdf(secret, salt, iterations, 1, size)
        if cipher is TripleDES and size == 16:  # Two-key 3DES: K1 K2 K1.
            key += key[:8]
        iv = pkcs12_kdf(secret, salt, iterations, 2, 8)
        yield cipher, key, iv


@sensitive_variables("password")
def _password_bytes(password):
    return [(password or "").encode()]


@sensitive_variables("password")
def _bmp(password):
    return (password or "").encode("utf-16-be") + b"\0\0"


@sensitive_variables("secret")
def pkcs12_kdf(secret, salt, iterations, purpose, size):
    """RFC 7292 appendix B.2 with SHA-1: the legacy schemes' key (purpose 1) or IV (2)."""
    block = 64
    d = bytes([purpose]) * block

    def stretched(value):
        if not value:
            return b""
        length = block * -(-len(value) // block)
        return (value * -(-length // len(value)))[:length]

    i = bytearray(stretched(salt) + stretched(secret))
    out = b""
    while len(out) < size:
        a = d + bytes(i)
        for _ in range(iterations):
            a = hashlib.sha1(a).digest()  # noqa: S324 (what RFC 7292 prescribes)
        out += a
        b = int.from_bytes((a * 4)[:block], "big")
        for start in range(0, len(i), block):
            total = int.from_bytes(i[start : start + block], "big") + b + 1
            i[start : start + block] = (total % (1 << (8 * block))).to_bytes(block, "big")
    return out[:size]


@sensitive_variables("key")
def _unpadded(cipher, key, iv, ciphertext):
    """The plaintext, parsed as DER, or None when the key does not open it."""
    if len(iv) != (16 if cipher is algorithms.AES else 8) or len(ciphertext) % len(iv):
        raise PfxRefused(UNREADABLE)
    if cipher is RC2:
        padded = rc2.decrypt_cbc(key, iv, ciphertext, effective_bits=8 * len(key))
    else:
        decryptor = Cipher(cipher(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(8 * len(iv)).unpadder()
    try:
        return _parse(unpadder.update(padded) + unpadder.finalize())
    except ValueError:
        return None


# --- DER (and the BER forms OpenSSL accepts: indefinite lengths, constructed strings) -------


def _parse(data):
    data = bytes(data)
    node, end = _node(data, 0, len(data), 0)
    if end != len(data):
        raise PfxRefused(UNREADABLE)
    return node


def _node(data, position, limit, depth):
    if depth > MAX_DEPTH or position + 2 > limit:
        raise PfxRefused(UNREADABLE)
    tag, first = data[position], data[position + 1]
    if tag & 0x1F == 0x1F:  # High tag numbers: nothing in PKCS#12 uses them.
        raise PfxRefused(UNREADABLE)
    position += 2
    constructed = bool(tag & 0x20)
    if first == 0x80:
        if not constructed:
            raise PfxRefused(UNREADABLE)
        children = []
        while True:
            if position + 2 > limit:
                raise PfxRefused(UNREADABLE)
            if data[position : position + 2] == b"\0\0":
                return Node(tag, children=tuple(children)), position + 2
            child, position = _node(data, position, limit, depth + 1)
            children.append(child)
    if first & 0x80:
        size = first & 0x7F
        if size > 4 or position + size > limit:
            raise PfxRefused(UNREADABLE)
        length = int.from_bytes(data[position : position + size], "big")
        position += size
    else:
        length = first
    end = position + length
    if end > limit:
        raise PfxRefused(UNREADABLE)
    if not constructed:
        return Node(tag, value=data[position:end]), end
    children = []
    while position < end:
        child, position = _node(data, position, end, depth + 1)
        children.append(child)
    return Node(tag, children=tuple(children)), end


def _sequence(node, minimum=0):
    if node is None or node.tag != 0x30 or len(node.children) < minimum:
        raise PfxRefused(UNREADABLE)
    return node.children


def _integer(node):
    if node.tag != 0x02 or not node.value or node.value[0] & 0x80:  # Counts are positive.
        raise PfxRefused(UNREADABLE)
    return int.from_bytes(node.value, "big")


def _octets(node, *, implicit=False):
    """An OCTET STRING's bytes, also when BER splits it into pieces."""
    primitive, constructed = (0x80, 0xA0) if implicit else (0x04, 0x24)
    if node is None:
        raise PfxRefused(UNREADABLE)
    if node.tag == primitive:
        return node.value
    if node.tag == constructed:
        return b"".join(_octets(piece) for piece in node.children)
    raise PfxRefused(UNREADABLE)


def _oid(node):
    if node is None or node.tag != 0x06 or not node.value or node.value[-1] & 0x80:
        raise PfxRefused(UNREADABLE)
    arcs, current = [], 0
    for byte in node.value:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))
