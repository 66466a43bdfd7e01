"""Interoperability with the ``openssl cms`` command line (an independent CMS/S/MIME).

OpenSSL here is built without zlib, so compression is covered by pyas2lib instead.
"""

from __future__ import annotations

import shutil

import pytest
from as2_helpers import entity_bytes, openssl, split_http, write_pair

from as2 import AuthenticationFailed, SendOptions, TransferEncoding, build_message, unwrap
from as2.mime import parse_entity, split_multipart

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")

PAYLOAD = b"ISA*00*~GS*PO~ST*850*0001~\nline two\r\n\x00\x01binary\xfe\n"
ENTITY = (
    b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=po.edi\r\n\r\n"
    + PAYLOAD
)


@pytest.fixture
def files(tmp_path, us, them):
    us_key, us_crt = write_pair(tmp_path, "us", us)
    them_key, them_crt = write_pair(tmp_path, "them", them)
    return {"dir": tmp_path, "us_key": us_key, "us_crt": us_crt, "them_key": them_key, "them_crt": them_crt}


# --- openssl reads ours -------------------------------------------------------

TEXT_PAYLOAD = b"ISA*00*~\r\nGS*PO~\r\nST*850*0001~\r\n"


def _verify_detached_with_openssl(files, entity: bytes) -> bytes:
    """Verify a multipart/signed over the exact bytes of its first part (openssl's
    S/MIME reader rewrites line ends, so binary content goes in as -content)."""
    parsed = parse_entity(entity)
    boundary = parsed.content_type.param("boundary")
    assert boundary
    content, signature = split_multipart(parsed.body, boundary)
    (files["dir"] / "content.bin").write_bytes(content.raw)
    (files["dir"] / "sig.der").write_bytes(signature.decoded_body())
    openssl(
        "-verify",
        "-noverify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        files["dir"] / "sig.der",
        "-content",
        files["dir"] / "content.bin",
        "-out",
        files["dir"] / "verified.bin",
    )
    return (files["dir"] / "verified.bin").read_bytes()


@pytest.mark.parametrize("digest", ["sha1", "sha224", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("cte", [TransferEncoding.BINARY, TransferEncoding.BASE64])
def test_openssl_verifies_our_signature_as_smime(files, us, digest, cte):
    out = build_message(
        TEXT_PAYLOAD,
        content_type="application/edi-x12",
        our_keys=[us],
        options=SendOptions(encrypt=False, digest=digest, transfer_encoding=cte),
    )
    path = files["dir"] / "signed.eml"
    path.write_bytes(entity_bytes(out.headers, out.body))
    content = openssl("-verify", "-noverify", "-in", path)
    assert parse_entity(content).decoded_body() == TEXT_PAYLOAD


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_openssl_verifies_our_binary_signature_over_exact_bytes(files, us, digest):
    out = build_message(
        PAYLOAD,
        content_type="application/octet-stream",
        our_keys=[us],
        options=SendOptions(encrypt=False, digest=digest),
    )
    verified = _verify_detached_with_openssl(files, entity_bytes(out.headers, out.body))
    assert parse_entity(verified).decoded_body() == PAYLOAD


@pytest.mark.parametrize(
    "cipher", ["aes128_cbc", "aes192_cbc", "aes256_cbc", "tripledes_3key", "aes128_gcm", "aes256_gcm"]
)
@pytest.mark.parametrize("key_transport", ["rsaes_pkcs1v15", "rsaes_oaep"])
@pytest.mark.parametrize("cte", [TransferEncoding.BINARY, TransferEncoding.BASE64])
def test_openssl_decrypts_and_verifies_ours(files, us, them, cipher, key_transport, cte):
    out = build_message(
        PAYLOAD,
        content_type="application/octet-stream",
        our_keys=[us],
        partner_certs=[them.certificate],
        options=SendOptions(cipher=cipher, key_transport=key_transport, transfer_encoding=cte),
    )
    path = files["dir"] / "enc.eml"
    if cte is TransferEncoding.BASE64:  # openssl's S/MIME reader always base64-decodes
        path.write_bytes(entity_bytes(out.headers, out.body))
        form: list[str] = []
    else:
        path.write_bytes(out.body)
        form = ["-inform", "DER"]
    inner = openssl(
        "-decrypt", "-binary", *form, "-in", path, "-inkey", files["them_key"], "-recip", files["them_crt"]
    )
    verified = _verify_detached_with_openssl(files, inner)
    assert parse_entity(verified).decoded_body() == PAYLOAD


# --- we read openssl's ------------------------------------------------------------


def _sign(files, *extra: str, data: bytes = ENTITY) -> bytes:
    (files["dir"] / "in.eml").write_bytes(data)
    return openssl(
        "-sign", "-in", files["dir"] / "in.eml", "-signer", files["us_crt"], "-inkey", files["us_key"], *extra
    )


@pytest.mark.parametrize("md", ["sha1", "sha256", "sha384", "sha512"])
def test_we_verify_openssl_detached_signature(files, us, md):
    raw = _sign(files, "-binary", "-md", md)
    headers, body = split_http(raw)
    msg = unwrap(headers, body, partner_certs=[us.certificate])
    assert msg.payload == PAYLOAD
    assert msg.filename == "po.edi"
    assert msg.signed and msg.digest_algorithm == md


def test_we_verify_openssl_pss_signature(files, us):
    raw = _sign(files, "-binary", "-keyopt", "rsa_padding_mode:pss")
    headers, body = split_http(raw)
    msg = unwrap(headers, body, partner_certs=[us.certificate])
    assert msg.payload == PAYLOAD and msg.signature_algorithm == "rsassa_pss"


def test_we_verify_openssl_opaque_signed_data(files, us):
    raw = _sign(files, "-binary", "-nodetach")
    headers, body = split_http(raw)
    assert "signed-data" in headers["Content-Type"]
    msg = unwrap(headers, body, partner_certs=[us.certificate])
    assert msg.payload == PAYLOAD and msg.signed


def test_we_verify_openssl_text_mode_signature_over_lf_input(files, us):
    """Without -binary openssl signs the CRLF-canonical form of LF-only text."""
    text = b"Content-Type: application/edi-x12\n\nISA*00~\nGS*PO~\n"
    raw = _sign(files, data=text)
    headers, body = split_http(raw)
    msg = unwrap(headers, body, partner_certs=[us.certificate])
    assert msg.payload.replace(b"\r\n", b"\n") == b"ISA*00~\nGS*PO~\n"


def test_openssl_signature_with_wrong_certificate_fails_authentication(files, stranger):
    headers, body = split_http(_sign(files, "-binary"))
    with pytest.raises(AuthenticationFailed):
        unwrap(headers, body, partner_certs=[stranger.certificate])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-aes128"], "aes128_cbc"),
        (["-aes192"], "aes192_cbc"),
        (["-aes256"], "aes256_cbc"),
        (["-des3"], "tripledes_3key"),
        (["-aes-128-gcm"], "aes128_gcm"),
        (["-aes-256-gcm"], "aes256_gcm"),
        (["-aes256", "-keyopt", "rsa_padding_mode:oaep"], "aes256_cbc"),
    ],
)
def test_we_decrypt_openssl_envelopes(files, us, them, args, expected):
    signed = _sign(files, "-binary")
    (files["dir"] / "signed.eml").write_bytes(signed)
    extra = args[1:]
    raw = openssl(
        "-encrypt",
        "-binary",
        args[0],
        "-in",
        files["dir"] / "signed.eml",
        "-recip",
        files["them_crt"],
        *extra,
    )
    headers, body = split_http(raw)
    msg = unwrap(headers, body, partner_certs=[us.certificate], our_keys=[them])
    assert msg.payload == PAYLOAD
    assert msg.layers == ("encrypted", "signed")
    assert msg.encryption_algorithm == expected
    if "oaep" in " ".join(args):
        assert msg.key_transport == "rsaes_oaep"


def test_signed_mic_matches_what_openssl_signed(files, us):
    """The MIC is over the exact first part of multipart/signed (headers included)."""
    import base64
    import hashlib

    raw = _sign(files, "-binary")
    headers, body = split_http(raw)
    boundary = parse_entity(raw).content_type.param("boundary")
    assert boundary
    first = split_multipart(body, boundary)[0].raw
    msg = unwrap(headers, body, partner_certs=[us.certificate])
    assert msg.mic.value == base64.b64encode(hashlib.sha256(first).digest()).decode()
