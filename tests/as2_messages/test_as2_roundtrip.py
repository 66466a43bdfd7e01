"""Our builder against our unwrapper and MDN code, across every send option."""

from __future__ import annotations

import functools
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from as2 import (
    Compression,
    Disposition,
    MicalgSpelling,
    SendOptions,
    TransferEncoding,
    build_mdn,
    build_message,
    generate_self_signed,
    parse_mdn,
    unwrap,
)
from as2.mic import disposition_options


@functools.cache
def _keys():
    return generate_self_signed("rt-us", key_size=1024), generate_self_signed("rt-them", key_size=1024)


PAYLOAD = b"ISA*00*          *00*          *ZZ*SENDER\nGS*PO*A*B~\r\nbinary\x00\xff\n"


@pytest.mark.parametrize(
    ("digest", "cipher", "compression", "cte"),
    [
        *itertools.product(
            ["sha1", "sha256", "sha512"],
            ["aes128_cbc", "aes256_cbc", "tripledes_3key"],
            [Compression.NONE],
            [TransferEncoding.BINARY],
        ),
        ("sha384", "aes192_cbc", Compression.BEFORE_SIGNING, TransferEncoding.BASE64),
        ("sha256", "aes128_gcm", Compression.NONE, TransferEncoding.BINARY),
        ("sha512", "aes256_gcm", Compression.BEFORE_SIGNING, TransferEncoding.BASE64),
        ("sha224", "aes128_cbc", Compression.AFTER_SIGNING, TransferEncoding.BINARY),
        ("sha256", "aes256_cbc", Compression.AFTER_SIGNING, TransferEncoding.BASE64),
    ],
)
def test_signed_encrypted_round_trip(us, them, digest, cipher, compression, cte):
    options = SendOptions(digest=digest, cipher=cipher, compression=compression, transfer_encoding=cte)
    out = build_message(
        PAYLOAD,
        content_type="application/octet-stream",
        filename="po.edi",
        options=options,
        our_keys=[us],
        partner_certs=[them.certificate],
    )
    headers = {**out.headers, "Disposition-Notification-Options": disposition_options(out.mic.algorithm)}
    msg = unwrap(headers, out.body, partner_certs=[us.certificate], our_keys=[them])
    assert msg.payload == PAYLOAD
    assert msg.filename == "po.edi"
    assert msg.content_type == "application/octet-stream"
    assert (msg.signed, msg.encrypted, msg.compressed) == (True, True, compression is not Compression.NONE)
    assert msg.digest_algorithm == digest
    assert msg.encryption_algorithm == cipher
    assert msg.signer == us.certificate
    assert msg.mic == out.mic


@pytest.mark.parametrize(("sign", "encrypt"), [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize("compression", [Compression.NONE, Compression.BEFORE_SIGNING])
def test_partial_protection_round_trip(us, them, sign, encrypt, compression):
    options = SendOptions(sign=sign, encrypt=encrypt, compression=compression)
    out = build_message(PAYLOAD, options=options, our_keys=[us], partner_certs=[them.certificate])
    msg = unwrap(out.headers, out.body, partner_certs=[us.certificate], our_keys=[them])
    assert msg.payload == PAYLOAD
    assert (msg.signed, msg.encrypted) == (sign, encrypt)
    assert msg.mic.matches(out.mic)


def test_oaep_key_transport_and_rfc3851_spelling(us, them):
    options = SendOptions(
        key_transport="rsaes_oaep", micalg_spelling=MicalgSpelling.RFC3851, quote_parameters=False
    )
    out = build_message(PAYLOAD, options=options, our_keys=[us], partner_certs=[them.certificate])
    assert "micalg" not in out.headers["Content-Type"]  # it is inside the envelope
    msg = unwrap(out.headers, out.body, partner_certs=[us.certificate], our_keys=[them])
    assert msg.key_transport == "rsaes_oaep"
    assert out.mic.algorithm == "sha256"
    assert msg.mic.matches(out.mic)


def test_signed_only_headers_spell_micalg(us):
    for spelling, token in [
        (MicalgSpelling.RFC5751, "micalg=sha-384"),
        (MicalgSpelling.RFC3851, "micalg=sha384"),
    ]:
        options = SendOptions(
            encrypt=False, digest="sha384", micalg_spelling=spelling, quote_parameters=False
        )
        out = build_message(PAYLOAD, options=options, our_keys=[us])
        assert token in out.headers["Content-Type"]


@pytest.mark.parametrize("signed", [True, False])
def test_mdn_round_trip(us, them, signed):
    out = build_message(PAYLOAD, our_keys=[us], partner_certs=[them.certificate])
    msg = unwrap(out.headers, out.body, partner_certs=[us.certificate], our_keys=[them])
    mdn = build_mdn(
        original_message_id="<abc@partner>",
        final_recipient="GATEWAY",
        original_recipient="GATEWAY",
        mic=msg.mic,
        sign_with=[them] if signed else [],
        micalg=msg.mic.algorithm,
    )
    report = parse_mdn(mdn.headers, mdn.body, partner_certs=[them.certificate])
    assert report.original_message_id == "<abc@partner>"
    assert report.disposition == Disposition()
    assert report.disposition.ok
    assert report.mic is not None and report.mic.matches(out.mic)
    assert report.signed is signed
    assert report.signature_verified is (True if signed else None)
    assert report.final_recipient == "GATEWAY"


def test_mdn_signed_by_someone_else_is_reported_unverified(us, them, stranger):
    mdn = build_mdn(original_message_id="x@y", final_recipient="GW", sign_with=[stranger])
    report = parse_mdn(mdn.headers, mdn.body, partner_certs=[them.certificate])
    assert report.signed and report.signature_verified is False


def test_error_mdn_carries_the_modifier():
    from as2 import AuthenticationFailed

    mdn = build_mdn(
        original_message_id="<m@x>",
        final_recipient="GW",
        disposition=Disposition.for_error(AuthenticationFailed("bad")),
    )
    assert b"processed/error: authentication-failed" in mdn.body
    report = parse_mdn(mdn.headers, mdn.body)
    assert report.disposition.kind == "error"
    assert report.disposition.modifier == "authentication-failed"
    assert not report.disposition.ok
    assert report.mic is None


@settings(max_examples=40, deadline=None)
@given(
    payload=st.binary(max_size=3000),
    sign=st.booleans(),
    encrypt=st.booleans(),
    compression=st.sampled_from(list(Compression)),
    cte=st.sampled_from(list(TransferEncoding)),
    digest=st.sampled_from(["sha1", "sha256", "sha512"]),
)
def test_any_payload_round_trips(payload, sign, encrypt, compression, cte, digest):
    us, them = _keys()
    options = SendOptions(
        sign=sign, encrypt=encrypt, compression=compression, transfer_encoding=cte, digest=digest
    )
    out = build_message(
        payload,
        content_type="application/octet-stream",
        options=options,
        our_keys=[us],
        partner_certs=[them.certificate],
    )
    headers = {**out.headers, "Disposition-Notification-Options": disposition_options(out.mic.algorithm)}
    msg = unwrap(headers, out.body, partner_certs=[us.certificate], our_keys=[them])
    assert msg.payload == payload
    assert (msg.signed, msg.encrypted) == (sign, encrypt)
    assert msg.mic == out.mic
