"""Hostile and ordinary .pfx files for the upload tests, built with `cryptography`.

Counts too large to generate in a test (10^8 MAC iterations would take seconds to make) are
written into a generated file's DER afterwards: the file is then refused for its count before
anything checks its MAC, which is the point.
"""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

PASSWORD = "pfx-pass"


def rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def certificate_for(key, name="bcconnect upload"):
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )


def pfx(key, *, rounds=2048, algorithm=pkcs12.PBES.PBESv2SHA256AndAES256CBC, password=PASSWORD):
    """A .pfx as Windows, OpenSSL or Key Vault export one, with `rounds` iterations."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(rounds)
        .key_cert_algorithm(algorithm)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        b"bcconnect", key, certificate_for(key), None, encryption
    )


def pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + certificate_for(key).public_bytes(serialization.Encoding.PEM)


def _header(data, position):
    """(content start, content end) of the DER element at `position` (definite lengths)."""
    first = data[position + 1]
    if first < 0x80:
        return position + 2, position + 2 + first
    size = first & 0x7F
    length = int.from_bytes(data[position + 2 : position + 2 + size], "big")
    start = position + 2 + size
    return start, start + length


def _element(tag, content):
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def _integer(value):
    return _element(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def with_mac_iterations(data, iterations):
    """`data` with its MAC's iteration count replaced (PFX = version, authSafe, macData)."""
    start, end = _header(data, 0)
    version_end = _header(data, start)[1]
    auth_safe_end = _header(data, version_end)[1]
    mac_start, mac_end = _header(data, auth_safe_end)
    digest_end = _header(data, mac_start)[1]
    salt_end = _header(data, digest_end)[1]
    mac = data[mac_start:salt_end] + _integer(iterations)
    return _element(0x30, data[start:auth_safe_end] + _element(0x30, mac))


def _oid(dotted):
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return _element(0x06, bytes(body))


def _pbes2(salt, iterations, iv):
    pbkdf2 = _element(
        0x30,
        _oid("1.2.840.113549.1.5.12")
        + _element(
            0x30,
            _element(0x04, salt)
            + _integer(iterations)
            + _element(0x30, _oid("1.2.840.113549.2.9") + b"\x05\x00"),
        ),
    )
    aes = _element(0x30, _oid("2.16.840.1.101.3.4.1.42") + _element(0x04, iv))
    return _element(0x30, _oid("1.2.840.113549.1.5.13") + _element(0x30, pbkdf2 + aes))


def key_bag_hidden_in_encrypted_part(inner_iterations, *, password=PASSWORD):
    """A .pfx (no MAC) whose only part is encrypted with an ordinary count and holds a
    shrouded key bag asking `inner_iterations`: visible only once the part is decrypted."""
    import os

    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    bag_value = _element(
        0x30, _pbes2(os.urandom(8), inner_iterations, os.urandom(16)) + _element(0x04, b"x" * 32)
    )
    bag = _element(0x30, _oid("1.2.840.113549.1.12.10.1.2") + _element(0xA0, bag_value))
    safe_contents = _element(0x30, bag)
    salt, iv = os.urandom(8), os.urandom(16)
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, 2048).derive(password.encode())
    padder = padding.PKCS7(128).padder()
    padded = padder.update(safe_contents) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    encrypted_content_info = _element(
        0x30, _oid("1.2.840.113549.1.7.1") + _pbes2(salt, 2048, iv) + _element(0x80, ciphertext)
    )
    encrypted_data = _element(0x30, _integer(0) + encrypted_content_info)
    content_info = _element(0x30, _oid("1.2.840.113549.1.7.6") + _element(0xA0, encrypted_data))
    auth_safe = _element(0x30, content_info)
    outer = _element(
        0x30,
        _oid("1.2.840.113549.1.7.1") + _element(0xA0, _element(0x04, auth_safe)),
    )
    return _element(0x30, _integer(3) + outer)


def certificate_with_unreadable_key(key):
    """The PEM certificate of `key` with its public key spoiled: the certificate still loads
    (nothing checks its signature then), its public key does not."""
    der = certificate_for(key).public_bytes(serialization.Encoding.DER)
    at = der.index(b"\x30\x82\x01\x0a\x02\x82\x01\x01") + 4  # RSAPublicKey's modulus tag.
    spoiled = x509.load_der_x509_certificate(der[:at] + b"\x04" + der[at + 1 :])
    return spoiled.public_bytes(serialization.Encoding.PEM)


def certificate_with_unreadable_subject(key):
    """The PEM certificate of `key` whose subject's name is tagged with a type no name has
    (13, a relative OID): the certificate and its key load; the subject raises when read."""
    der = certificate_for(key, "bcconnect").public_bytes(serialization.Encoding.DER)
    at = der.rindex(b"\x0c\x09bcconnect")  # The subject's (last) UTF8String "bcconnect".
    spoiled = x509.load_der_x509_certificate(der[:at] + b"\x0d" + der[at + 1 :])
    return spoiled.public_bytes(serialization.Encoding.PEM)
