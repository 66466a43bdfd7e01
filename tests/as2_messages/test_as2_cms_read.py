"""as2.cms_read: the receive path's DER reader of SignedData and EnvelopedData.

It must read the common shapes itself (ours, pyas2lib's and openssl's), give exactly
what as2.cms (asn1crypto) gives, and leave everything else, failures included, to
as2.cms so the errors stay the same."""

from __future__ import annotations

import pytest
from as2_helpers import openssl, pyas2_cert, pyas2_key, write_pair

from as2 import KeyPair, cms, cms_read
from as2.errors import AuthenticationFailed, DecryptionFailed, IntegrityCheckFailed
from as2.mime import as_headers, entity_from_headers, parse_entity, split_multipart

CONTENT = b"Content-Type: application/edi-x12\r\n\r\nISA*00*~GS*PO~ST*850*0001~\r\n" * 20


def _same_verified(a: cms.Verified, b: cms.Verified) -> None:
    assert (a.signer, a.digest_algorithm, a.signature_algorithm, a.content) == (
        b.signer,
        b.digest_algorithm,
        b.signature_algorithm,
        b.content,
    )


@pytest.mark.parametrize("digest", ["sha1", "sha224", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("detached", [True, False])
def test_reads_our_pkcs1_signatures_itself(
    us: KeyPair, stranger: KeyPair, digest: str, detached: bool
) -> None:
    der = cms.sign(CONTENT, us, digest, detached=detached)
    content = CONTENT if detached else None
    trusted = [stranger.certificate, us.certificate]
    fast = cms_read._verify_fast(der, content, trusted, None)
    assert fast is not None
    _same_verified(fast, cms.verify(der, content, trusted))
    assert fast.signer == us.certificate and fast.digest_algorithm == digest


def test_pss_is_left_to_asn1crypto(us: KeyPair) -> None:
    der = cms.sign(CONTENT, us, "sha256", pss=True)
    assert cms_read._verify_fast(der, CONTENT, [us.certificate], None) is None
    _same_verified(
        cms_read.verify(der, CONTENT, [us.certificate]), cms.verify(der, CONTENT, [us.certificate])
    )


def test_failures_raise_what_asn1crypto_path_raises(us: KeyPair, stranger: KeyPair) -> None:
    der = cms.sign(CONTENT, us)
    with pytest.raises(IntegrityCheckFailed):
        cms_read.verify(der, CONTENT + b"x", [us.certificate])
    with pytest.raises(AuthenticationFailed, match="any trusted certificate"):
        cms_read.verify(der, CONTENT, [stranger.certificate])
    with pytest.raises(AuthenticationFailed):
        cms_read.verify(der[:-3], CONTENT, [us.certificate])
    tampered = bytearray(der)
    tampered[-5] ^= 1  # inside the signature value
    with pytest.raises(AuthenticationFailed):
        cms_read.verify(bytes(tampered), CONTENT, [us.certificate])


@pytest.mark.parametrize("cipher", ["aes128_cbc", "aes192_cbc", "aes256_cbc", "tripledes_3key"])
def test_reads_our_envelopes_itself(us: KeyPair, stranger: KeyPair, cipher: str) -> None:
    der = cms.encrypt(CONTENT, us.certificate, cipher)
    fast = cms_read._decrypt_fast(der, [stranger, us])
    assert fast is not None
    assert fast == cms.decrypt(der, [stranger, us])
    assert fast.content == CONTENT and fast.content_algorithm == cipher and fast.addressed


def test_other_envelopes_are_left_to_asn1crypto(us: KeyPair, stranger: KeyPair) -> None:
    for der in (
        cms.encrypt(CONTENT, us.certificate, key_transport="rsaes_oaep"),
        cms.encrypt(CONTENT, us.certificate, "aes256_gcm"),
    ):
        assert cms_read._decrypt_fast(der, [us]) is None
        assert cms_read.decrypt(der, [us]) == cms.decrypt(der, [us])
    der = cms.encrypt(CONTENT, us.certificate)
    with pytest.raises(DecryptionFailed):
        cms_read.decrypt(der, [stranger])
    with pytest.raises(DecryptionFailed):
        cms_read.decrypt(der, [])


def test_reads_openssl_der_itself(tmp_path, us: KeyPair, them: KeyPair) -> None:
    us_key, us_crt = write_pair(tmp_path, "us", us)
    _, them_crt = write_pair(tmp_path, "them", them)
    (tmp_path / "in").write_bytes(CONTENT)
    signed = openssl(
        "-sign", "-binary", "-outform", "DER", "-in", tmp_path / "in", "-signer", us_crt, "-inkey", us_key
    )
    fast = cms_read._verify_fast(signed, CONTENT, [us.certificate], None)
    assert fast is not None
    _same_verified(fast, cms.verify(signed, CONTENT, [us.certificate]))
    sealed = openssl("-encrypt", "-binary", "-aes256", "-outform", "DER", "-in", tmp_path / "in", them_crt)
    opened = cms_read._decrypt_fast(sealed, [them])
    assert opened is not None and opened == cms.decrypt(sealed, [them]) and opened.content == CONTENT


def test_reads_pyas2lib_messages_itself(us: KeyPair, them: KeyPair) -> None:
    pyas2 = pytest.importorskip("pyas2lib.as2")
    sender = pyas2.Organization(
        as2_name="THEM", sign_key=pyas2_key(them), sign_key_pass="test", domain="example.test"
    )
    receiver = pyas2.Partner(
        as2_name="GATEWAY",
        verify_cert=pyas2_cert(us),
        encrypt_cert=pyas2_cert(us),
        validate_certs=False,
        sign=True,
        encrypt=True,
        digest_alg="sha256",
        enc_alg="aes_256_cbc",
    )
    outgoing = pyas2.Message(sender, receiver)
    outgoing.build(CONTENT, filename="po.edi", content_type="application/edi-x12")
    envelope = entity_from_headers(as_headers(dict(outgoing.headers.items())), outgoing.content)
    der = envelope.decoded_body()
    opened = cms_read._decrypt_fast(der, [us])
    assert opened is not None and opened == cms.decrypt(der, [us])
    signed = parse_entity(opened.content)
    boundary = signed.content_type.param("boundary") or ""
    part, signature = split_multipart(signed.raw, boundary, start=signed.body_start)[:2]
    fast = cms_read._verify_fast(signature.decoded_body(), part.raw, [them.certificate], None)
    assert fast is not None and fast.digest_algorithm == "sha256"
    _same_verified(fast, cms.verify(signature.decoded_body(), part.raw, [them.certificate]))
