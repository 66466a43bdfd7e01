"""Vendor quirks seen in the field, built here as fixtures: each must be received."""

from __future__ import annotations

import base64
import hashlib

import pytest

from as2 import DecryptionFailed, KeyPair, cms, parse_mdn, unwrap
from as2.mime import build_entity, build_multipart, encode_base64

PAYLOAD = b"ISA*00*~\r\nGS*PO~\r\n\x00\xfe binary tail"


def _signed(
    entity: bytes, pair, *, digest: str = "sha256", content_type: str | None = None
) -> tuple[dict, bytes]:
    signature = build_entity(
        [
            ("Content-Type", "application/pkcs7-signature; name=smime.p7s"),
            ("Content-Transfer-Encoding", "base64"),
        ],
        encode_base64(cms.sign(entity, pair, digest)),
    )
    body = build_multipart([entity, signature], "b0undary")
    ct = (
        content_type
        or f'multipart/signed; protocol="application/pkcs7-signature"; micalg={digest}; boundary="b0undary"'
    )
    return {"Content-Type": ct}, body


def test_binary_part_without_content_transfer_encoding(us):
    headers, body = _signed(b"Content-Type: application/octet-stream\r\n\r\n" + PAYLOAD, us)
    msg = unwrap(headers, body, partner_certs=[us.certificate])
    assert msg.payload == PAYLOAD


def test_lf_only_transmission_of_a_crlf_signature(us):
    """Signed in canonical CRLF form, then every line end sent as bare LF."""
    entity = b"Content-Type: application/edi-x12\r\n\r\nISA*00~\r\nGS*PO~\r\n"
    headers, body = _signed(entity, us)
    msg = unwrap(headers, body.replace(b"\r\n", b"\n"), partner_certs=[us.certificate])
    assert msg.payload == b"ISA*00~\nGS*PO~\n"
    assert msg.mic.value == base64.b64encode(hashlib.sha256(entity).digest()).decode()


def test_uppercase_micalg_and_unquoted_parameters(us):
    entity = b"Content-Type: application/octet-stream\r\n\r\n" + PAYLOAD
    headers, body = _signed(
        entity,
        us,
        digest="sha1",
        content_type="multipart/signed; protocol=application/pkcs7-signature; micalg=SHA1; boundary=b0undary",
    )
    headers["Disposition-Notification-Options"] = (
        "Signed-Receipt-Protocol=Optional, PKCS7-Signature; Signed-Receipt-MicAlg=Optional, SHA1, MD5"
    )
    msg = unwrap(headers, body, partner_certs=[us.certificate])
    assert msg.payload == PAYLOAD
    assert msg.mic.algorithm == "SHA1"
    assert msg.mic.value == base64.b64encode(hashlib.sha1(entity).digest()).decode()
    assert msg.receipt.signed


def test_x_pkcs7_types_and_missing_smime_type(us, them):
    inner = b"Content-Type: application/octet-stream\r\n\r\n" + PAYLOAD
    der = cms.encrypt(inner, them.certificate, "aes128_cbc")
    headers = {
        "Content-Type": "application/x-pkcs7-mime; name=smime.p7m",
        "Content-Transfer-Encoding": "base64",
    }
    msg = unwrap(headers, encode_base64(der), our_keys=[them])
    assert msg.payload == PAYLOAD and msg.encrypted


def test_compressed_then_signed_then_encrypted_built_by_hand(us, them):
    """Compressed-before-signed with x-pkcs7-signature, as some Java stacks send it."""
    payload_entity = b"Content-Type: application/edi-x12\r\n\r\n" + PAYLOAD
    compressed = build_entity(
        [
            ("Content-Type", "application/pkcs7-mime; smime-type=compressed-data"),
            ("Content-Transfer-Encoding", "binary"),
        ],
        cms.compress(payload_entity),
    )
    sig = build_entity(
        [("Content-Type", "application/x-pkcs7-signature")], cms.sign(compressed, us, "sha512")
    )
    signed = build_entity(
        [
            (
                "Content-Type",
                "multipart/signed; micalg=sha512; boundary=zz; protocol=application/x-pkcs7-signature",
            )
        ],
        build_multipart([compressed, sig], "zz"),
    )
    env = cms.encrypt(signed, them.certificate, "tripledes_3key")
    msg = unwrap(
        {"content-type": "application/pkcs7-mime; smime-type=enveloped-data"},
        env,
        partner_certs=[us.certificate],
        our_keys=[them],
    )
    assert msg.payload == PAYLOAD
    assert msg.layers == ("encrypted", "signed", "compressed")
    assert msg.mic.value == base64.b64encode(hashlib.sha256(compressed).digest()).decode()


def test_encrypted_raw_edi_without_mime_headers(them):
    der = cms.encrypt(b"ISA*00*~GS*PO~", them.certificate)
    msg = unwrap({"Content-Type": "application/pkcs7-mime; smime-type=enveloped-data"}, der, our_keys=[them])
    assert msg.payload == b"ISA*00*~GS*PO~"
    assert msg.content_type == "application/octet-stream"
    # unsigned, encrypted: the MIC is over the decrypted content
    assert msg.mic.value == base64.b64encode(hashlib.sha256(b"ISA*00*~GS*PO~").digest()).decode()


def test_quoted_printable_payload():
    msg = unwrap(
        {"Content-Type": "text/plain", "Content-Transfer-Encoding": "quoted-printable"}, b"ISA=2A00=\r\n~"
    )
    assert msg.payload == b"ISA*00~"


def test_mdn_without_original_recipient_lowercase_lf_and_folded():
    body = (
        b"--r\n"
        b"content-type: text/plain\n\nThanks\n"
        b"--r\n"
        b"content-type: message/disposition-notification\n\n"
        b"reporting-ua: Vendor\n"
        b"final-recipient: rfc822;\n GATEWAY\n"
        b"original-message-id: <m1@gw>\n"
        b"received-content-mic: abc=,\n\tsha-256\n"
        b"disposition: automatic-action/MDN-sent-automatically;\n  processed\n"
        b"--r--\n"
    )
    report = parse_mdn(
        {"content-type": "multipart/report; report-type=disposition-notification; boundary=r"}, body
    )
    assert report.original_message_id == "<m1@gw>"
    assert report.original_recipient is None
    assert report.final_recipient == "GATEWAY"
    assert report.disposition.ok
    assert report.mic is not None and report.mic.value == "abc=" and report.mic.algorithm == "sha-256"
    assert report.text == "Thanks"
    assert report.signed is False and report.signature_verified is None


def test_mdn_disposition_with_capitalised_error_and_spaces():
    body = (
        b"--r\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Original-Message-ID: <x@y>\r\n"
        b"Disposition: automatic-action/MDN-sent-automatically; processed/Error: decryption-failed\r\n"
        b"--r--\r\n"
    )
    report = parse_mdn({"Content-Type": 'multipart/report; boundary="r"'}, body)
    assert report.disposition.kind == "error"
    assert report.disposition.modifier == "decryption-failed"


def test_key_rotation_envelope_to_an_unnamed_certificate(us, them):
    """Encrypted to a certificate we no longer list, but with a key we still hold:
    tried anyway; its content must then be MIME (a wrong key gives random bytes)."""
    renamed = KeyPair(them.key, us.certificate)  # same key, certificate the envelope does not name
    inner = b"Content-Type: application/octet-stream\r\n\r\n" + PAYLOAD
    der = cms.encrypt(inner, them.certificate)
    msg = unwrap(
        {"Content-Type": "application/pkcs7-mime; smime-type=enveloped-data"}, der, our_keys=[renamed]
    )
    assert msg.payload == PAYLOAD
    raw = cms.encrypt(PAYLOAD, them.certificate)
    with pytest.raises(DecryptionFailed):
        unwrap({"Content-Type": "application/pkcs7-mime; smime-type=enveloped-data"}, raw, our_keys=[renamed])
