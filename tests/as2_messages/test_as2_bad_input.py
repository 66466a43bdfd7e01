"""Bad input yields the package's own errors, each with the right MDN disposition."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from as2 import (
    AS2Error,
    AuthenticationFailed,
    Compression,
    DecompressionFailed,
    DecryptionFailed,
    DispositionModifier,
    InsufficientSecurity,
    IntegrityCheckFailed,
    LimitExceeded,
    MdnError,
    MimeError,
    ReceiveLimits,
    SendOptions,
    build_mdn,
    build_message,
    cms,
    generate_self_signed,
    parse_mdn,
    unwrap,
)
from as2.mime import build_entity, parse_entity

PAYLOAD = b"ISA*00*~GS*PO~ST*850*0001~" * 20


def _signed_only(us):
    return build_message(
        PAYLOAD, content_type="application/octet-stream", our_keys=[us], options=SendOptions(encrypt=False)
    )


def test_wrong_certificate_is_authentication_failed(us, stranger):
    out = _signed_only(us)
    with pytest.raises(AuthenticationFailed) as info:
        unwrap(out.headers, out.body, partner_certs=[stranger.certificate])
    assert info.value.disposition is DispositionModifier.AUTHENTICATION_FAILED


def test_expired_partner_certificate_is_not_used(us):
    out = _signed_only(us)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    with pytest.raises(AuthenticationFailed, match="valid now"):
        unwrap(out.headers, out.body, partner_certs=[us.certificate], now=later)


def test_tampered_payload_is_integrity_check_failed(us):
    out = _signed_only(us)
    body = out.body.replace(b"ST*850", b"ST*855", 1)
    with pytest.raises(IntegrityCheckFailed) as info:
        unwrap(out.headers, body, partner_certs=[us.certificate])
    assert info.value.disposition == "integrity-check-failed"


def test_tampered_signature_is_authentication_failed(us):
    der = cms.sign(b"content", us)
    broken = der[:-10] + bytes(b ^ 0x55 for b in der[-10:])
    with pytest.raises(AuthenticationFailed):
        cms.verify(broken, b"content", [us.certificate])


def test_message_for_someone_else_is_decryption_failed(us, them, stranger):
    out = build_message(PAYLOAD, our_keys=[us], partner_certs=[stranger.certificate])
    with pytest.raises(DecryptionFailed) as info:
        unwrap(out.headers, out.body, partner_certs=[us.certificate], our_keys=[them])
    assert info.value.disposition == "decryption-failed"


def test_truncated_bodies(us, them):
    signed = _signed_only(us)
    with pytest.raises(MimeError, match="closing boundary"):
        unwrap(signed.headers, signed.body[: len(signed.body) // 2], partner_certs=[us.certificate])
    encrypted = build_message(PAYLOAD, our_keys=[us], partner_certs=[them.certificate])
    with pytest.raises(DecryptionFailed):
        unwrap(encrypted.headers, encrypted.body[:-40], partner_certs=[us.certificate], our_keys=[them])


@pytest.mark.parametrize(
    "media",
    [
        "application/pkcs7-mime",
        "multipart/signed; boundary=x",
        "application/pkcs7-mime; smime-type=compressed-data",
    ],
)
def test_garbage(media, us, them):
    with pytest.raises(AS2Error):
        unwrap(
            {"Content-Type": media}, b"\x00garbage\xff" * 30, partner_certs=[us.certificate], our_keys=[them]
        )


def test_zip_bomb_stops_at_the_cap():
    bomb = cms.compress(b"Content-Type: text/plain\r\n\r\n" + b"\0" * (20 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    headers = {"Content-Type": "application/pkcs7-mime; smime-type=compressed-data"}
    with pytest.raises(LimitExceeded):
        unwrap(headers, bomb, limits=ReceiveLimits(max_decompressed_bytes=1024 * 1024))


def test_corrupt_zlib_is_decompression_failed():
    from asn1crypto import cms as asn1_cms

    good = asn1_cms.ContentInfo.load(cms.compress(b"x" * 100))
    data = zlib.compress(b"x" * 100)
    good["content"]["encap_content_info"]["content"] = data[:5] + b"\xff\xff" + data[7:]
    with pytest.raises(DecompressionFailed) as info:
        unwrap({"Content-Type": "application/pkcs7-mime; smime-type=compressed-data"}, good.dump())
    assert info.value.disposition == "decompression-failed"


def test_nesting_limit():
    entity = b"Content-Type: text/plain\r\n\r\nhi"
    for _ in range(6):
        entity = build_entity(
            [("Content-Type", "application/pkcs7-mime; smime-type=compressed-data")], cms.compress(entity)
        )
    parsed = parse_entity(entity)
    with pytest.raises(LimitExceeded, match="nests"):
        unwrap(parsed.headers, parsed.body, limits=ReceiveLimits(max_depth=4))
    assert unwrap(parsed.headers, parsed.body).payload == b"hi"


def test_header_size_limit():
    huge = b"Content-Type: text/plain\r\nX-Junk: " + b"a" * 100_000 + b"\r\n\r\nbody"
    der = cms.compress(huge)
    with pytest.raises(LimitExceeded):
        unwrap({"Content-Type": "application/pkcs7-mime; smime-type=compressed-data"}, der)


def test_insufficient_security(us, them):
    plain = build_message(PAYLOAD, options=SendOptions(sign=False, encrypt=False))
    with pytest.raises(InsufficientSecurity) as info:
        unwrap(plain.headers, plain.body, require_signature=True)
    assert info.value.disposition == "insufficient-message-security"
    signed = _signed_only(us)
    with pytest.raises(InsufficientSecurity):
        unwrap(signed.headers, signed.body, partner_certs=[us.certificate], require_encryption=True)


def test_not_an_mdn():
    with pytest.raises(MdnError):
        parse_mdn({"Content-Type": "text/plain"}, b"hello")
    with pytest.raises(MdnError):
        parse_mdn(
            {"Content-Type": "multipart/report; boundary=x"},
            b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n",
        )


# --- fuzz ------------------------------------------------------------------------


@functools.cache
def _samples():
    us, them = generate_self_signed("fuzz-us"), generate_self_signed("fuzz-them")
    messages = [
        build_message(PAYLOAD, our_keys=[us], partner_certs=[them.certificate]),
        build_message(
            PAYLOAD, our_keys=[us], options=SendOptions(encrypt=False, compression=Compression.BEFORE_SIGNING)
        ),
        build_message(
            PAYLOAD,
            our_keys=[us],
            partner_certs=[them.certificate],
            options=SendOptions(sign=False, compression=Compression.BEFORE_SIGNING),
        ),
    ]
    mdn = build_mdn(original_message_id="<a@b>", final_recipient="GW", sign_with=[them])
    return us, them, messages, mdn


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, 3),
    edits=st.lists(
        st.tuples(
            st.integers(0, 10**6), st.sampled_from(["flip", "cut", "insert", "drop"]), st.binary(max_size=8)
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutations_raise_only_package_errors(which, edits):
    us, them, messages, mdn = _samples()
    headers, body = (mdn.headers, mdn.body) if which == 3 else (messages[which].headers, messages[which].body)
    data = bytearray(body)
    for position, kind, extra in edits:
        if not data:
            break
        i = position % len(data)
        if kind == "flip":
            data[i] ^= 0xFF
        elif kind == "cut":
            del data[i:]
        elif kind == "insert":
            data[i:i] = extra
        else:
            del data[i : i + len(extra) + 1]
    try:
        if which == 3:
            parse_mdn(headers, bytes(data), partner_certs=[them.certificate])
        else:
            unwrap(
                headers,
                bytes(data),
                partner_certs=[us.certificate],
                our_keys=[them],
                limits=ReceiveLimits(max_decompressed_bytes=1 << 20),
            )
    except AS2Error:
        pass


@settings(max_examples=300, deadline=None)
@given(
    content_type=st.sampled_from(
        [
            "multipart/signed; boundary=b",
            "multipart/signed",
            "application/pkcs7-mime",
            "application/pkcs7-mime; smime-type=enveloped-data",
            "application/pkcs7-mime; smime-type=signed-data",
            "application/pkcs7-mime; smime-type=compressed-data",
            "multipart/report; boundary=b",
            "text/plain",
        ]
    ),
    cte=st.sampled_from([None, "base64", "binary", "quoted-printable", "x-unknown"]),
    body=st.one_of(
        st.binary(max_size=600),
        st.lists(
            st.sampled_from(
                [
                    b"--b",
                    b"\r\n",
                    b"\n",
                    b"Content-Type: ",
                    b"application/pkcs7-signature",
                    b"multipart/signed; boundary=c",
                    b"--c",
                    b"--b--",
                    b":",
                    b" ",
                    b"\x30\x80",
                    b"x",
                ]
            ),
            max_size=40,
        ).map(b"".join),
    ),
)
def test_random_input_raises_only_package_errors(content_type, cte, body):
    us, them, _, _ = _samples()
    headers = {"Content-Type": content_type}
    if cte:
        headers["Content-Transfer-Encoding"] = cte
    for call in (
        lambda: unwrap(headers, body, partner_certs=[us.certificate], our_keys=[them]),
        lambda: parse_mdn(headers, body, partner_certs=[us.certificate]),
    ):
        with contextlib.suppress(AS2Error):
            call()


def test_gcm_tag_or_ciphertext_tampering_is_decryption_failed(them):
    der = bytearray(cms.encrypt(b"Content-Type: text/plain\r\n\r\nsecret", them.certificate, "aes256_gcm"))
    for position in (len(der) - 1, len(der) - 40):  # in the tag, in the ciphertext
        tampered = bytearray(der)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionFailed):
            unwrap(
                {"Content-Type": "application/pkcs7-mime; smime-type=authEnveloped-data"},
                bytes(tampered),
                our_keys=[them],
            )
