"""as2.der: the ciphertext of an EnvelopedData found without copies; anything that is
not plain DER is left to asn1crypto (None), and decryption gives the same either way."""

from __future__ import annotations

import pytest
from asn1crypto import cms as asn1_cms

from as2 import KeyPair, cms, generate_self_signed
from as2.der import split_enveloped


@pytest.fixture(scope="module")
def pair() -> KeyPair:
    return generate_self_signed("der-test")


@pytest.mark.parametrize("size", [0, 100, 200_000])
@pytest.mark.parametrize("cipher", ["aes128_cbc", "aes256_cbc", "tripledes_3key"])
def test_split_view_is_the_ciphertext_and_the_head_keeps_the_rest(
    pair: KeyPair, size: int, cipher: str
) -> None:
    content = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    der = cms.encrypt(content, pair.certificate, cipher)
    split = split_enveloped(der)
    assert split is not None
    head, view = split
    parsed = asn1_cms.ContentInfo.load(der)["content"]["encrypted_content_info"]
    assert bytes(view) == parsed["encrypted_content"].native
    small = asn1_cms.ContentInfo.load(head)["content"]
    assert small["encrypted_content_info"]["encrypted_content"].native == b""
    assert (
        small["recipient_infos"].dump() == asn1_cms.ContentInfo.load(der)["content"]["recipient_infos"].dump()
    )
    assert cms.decrypt(der, [pair]).content == content


def test_not_plain_der_is_left_to_asn1crypto(pair: KeyPair) -> None:
    der = cms.encrypt(b"hello", pair.certificate)
    assert split_enveloped(der[:-1]) is None  # truncated
    assert split_enveloped(b"\x30\x80" + der[2:]) is None  # indefinite length
    assert split_enveloped(cms.compress(b"hello")) is None  # not EnvelopedData
    gcm = cms.encrypt(b"hello", pair.certificate, "aes256_gcm")
    assert split_enveloped(gcm) is None  # AuthEnvelopedData: asn1crypto reads it
    assert cms.decrypt(gcm, [pair]).content == b"hello"
    # The encrypted content as a constructed OCTET STRING (BER, as streaming senders
    # write it): not split (asn1crypto decides what to make of it).
    info = asn1_cms.ContentInfo.load(der)
    envelope = info["content"]
    ciphertext = envelope["encrypted_content_info"]["encrypted_content"].native
    eci = envelope["encrypted_content_info"]
    head = eci["content_type"].dump() + eci["content_encryption_algorithm"].dump()
    constructed = _tlv(0xA0, _tlv(0x04, ciphertext))
    eci_der = _tlv(0x30, head + constructed)
    rest = envelope["version"].dump() + envelope["recipient_infos"].dump()
    ber = _tlv(0x30, info["content_type"].dump() + _tlv(0xA0, _tlv(0x30, rest + eci_der)))
    assert split_enveloped(ber) is None


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content
