"""RC2-CBC decryption (RFC 2268), for the legacy .pfx files that encrypt their certificates
with pbeWithSHAAnd40BitRC2-CBC (OpenSSL 1.x's default, `openssl pkcs12 -legacy`).

`cryptography` offers RC2 with 128-bit keys only; `pfx_structure` must look inside such a
part before OpenSSL opens it, so this small, slow, pure-Python decryptor reads it (the parts
are a few kilobytes: the upload cap is 64 KB).
"""

PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)
MASK = 0xFFFF


def expand_key(key, effective_bits):
    """The 64 16-bit round keys for `key` with `effective_bits` (RFC 2268 section 2)."""
    expanded = bytearray(128)
    expanded[: len(key)] = key
    for i in range(len(key), 128):
        expanded[i] = PITABLE[(expanded[i - 1] + expanded[i - len(key)]) % 256]
    t8 = (effective_bits + 7) // 8
    tm = 255 % (1 << (8 + effective_bits - 8 * t8))
    expanded[128 - t8] = PITABLE[expanded[128 - t8] & tm]
    for i in range(127 - t8, -1, -1):
        expanded[i] = PITABLE[expanded[i + 1] ^ expanded[i + t8]]
    return [expanded[2 * i] | expanded[2 * i + 1] << 8 for i in range(64)]


def decrypt_block(keys, block):
    """One 8-byte block, decrypted (RFC 2268 section 4)."""
    r = [block[2 * i] | block[2 * i + 1] << 8 for i in range(4)]
    j = 63
    for rounds in (5, None, 6, None, 5):
        if rounds is None:
            for i in (3, 2, 1, 0):
                r[i] = (r[i] - keys[r[i - 1] & 63]) & MASK
            continue
        for _ in range(rounds):
            for i, shift in ((3, 5), (2, 3), (1, 2), (0, 1)):
                r[i] = ((r[i] >> shift) | (r[i] << (16 - shift))) & MASK
                r[i] = (r[i] - keys[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & MASK
                j -= 1
    return b"".join(word.to_bytes(2, "little") for word in r)


def decrypt_cbc(key, iv, ciphertext, *, effective_bits):
    """`ciphertext` (a multiple of 8 bytes) decrypted in CBC mode; the padding is left on."""
    keys = expand_key(key, effective_bits)
    plain, previous = bytearray(), iv
    for start in range(0, len(ciphertext), 8):
        block = ciphertext[start : start + 8]
        plain += bytes(a ^ b for a, b in zip(decrypt_block(keys, block), previous, strict=True))
        previous = block
    return bytes(plain)
