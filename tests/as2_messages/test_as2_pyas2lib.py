"""Interoperability with pyas2lib (an independent AS2 implementation, test-only: GPL).

Both directions, every algorithm combination pyas2lib offers that AS2 still uses
(RC2/RC4 and MD5 signing are refused by design). Payloads are
application/octet-stream where bytes are compared: pyas2lib rewrites LF to CRLF in
application/edi-x12.
"""

from __future__ import annotations

import itertools

import pytest

pyas2 = pytest.importorskip("pyas2lib.as2")

from as2_helpers import entity_bytes, pyas2_cert, pyas2_key  # noqa: E402

from as2 import (  # noqa: E402
    Compression,
    Disposition,
    MicalgSpelling,
    SendOptions,
    TransferEncoding,
    as2_headers,
    build_mdn,
    build_message,
    make_message_id,
    parse_mdn,
    unwrap,
)

PAYLOAD = b"ISA*00*          *00*~GS*PO~\nST*850*0001~\r\n\x00\xff trailing\n"
DIGESTS = ["sha1", "sha224", "sha256", "sha384", "sha512"]
CIPHERS = {
    "tripledes_192_cbc": "tripledes_3key",
    "aes_128_cbc": "aes128_cbc",
    "aes_192_cbc": "aes192_cbc",
    "aes_256_cbc": "aes256_cbc",
}


def _org(name, pair):
    return pyas2.Organization(
        as2_name=name,
        sign_key=pyas2_key(pair),
        sign_key_pass="test",
        decrypt_key=pyas2_key(pair),
        decrypt_key_pass="test",
        domain="example.test",
    )


def _partner(name, pair, **kw):
    return pyas2.Partner(
        as2_name=name, verify_cert=pyas2_cert(pair), encrypt_cert=pyas2_cert(pair), validate_certs=False, **kw
    )


def _http_headers(message) -> dict[str, str]:
    return {k: v for k, v in message.headers.items()}


COMBOS = [
    dict(sign=True, encrypt=True, compress=False, digest_alg=d, enc_alg=e)
    for d, e in itertools.product(DIGESTS, CIPHERS)
] + [
    dict(sign=False, encrypt=False, compress=False),
    dict(sign=False, encrypt=True, compress=False),
    dict(sign=True, encrypt=False, compress=False),
    dict(sign=False, encrypt=False, compress=True),
    dict(sign=True, encrypt=False, compress=True),
    dict(sign=True, encrypt=True, compress=True, digest_alg="sha512", enc_alg="aes_256_cbc"),
    dict(sign=True, encrypt=True, compress=False, sign_alg="rsassa_pss"),
    dict(sign=True, encrypt=True, compress=True, key_enc_alg="rsaes_oaep"),
]


@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_we_open_pyas2lib_messages_and_it_accepts_our_mdn(us, them, combo):
    # pyas2lib computes its MIC in the signing digest; ask for the receipt in the same one
    mdn_digest = combo.get("digest_alg", "sha256")
    sender, receiver = (
        _org("THEM", them),
        _partner("GATEWAY", us, mdn_mode="SYNC", mdn_digest_alg=mdn_digest, **combo),
    )
    outgoing = pyas2.Message(sender, receiver)
    outgoing.build(PAYLOAD, filename="po.bin", content_type="application/octet-stream")
    headers = _http_headers(outgoing)

    msg = unwrap(headers, outgoing.content, partner_certs=[them.certificate], our_keys=[us])
    assert msg.payload == PAYLOAD
    assert (msg.signed, msg.encrypted, msg.compressed) == (combo["sign"], combo["encrypt"], combo["compress"])
    if combo["sign"]:
        assert msg.digest_algorithm == combo.get("digest_alg", "sha256")
        assert outgoing.mic is not None
        assert msg.mic.value == outgoing.mic.decode()
    if combo["encrypt"]:
        assert msg.encryption_algorithm == CIPHERS[combo.get("enc_alg", "tripledes_192_cbc")]

    mdn = build_mdn(
        original_message_id=f"<{outgoing.message_id}>",
        final_recipient="GATEWAY",
        original_recipient="GATEWAY",
        mic=msg.mic,
        sign_with=[us],
        micalg=msg.mic.algorithm,
    )
    raw = entity_bytes(mdn.headers, mdn.body)
    status, detail = pyas2.Mdn().parse(raw, find_message_cb=lambda mid, rcpt: outgoing)
    assert (status, detail) == ("processed", None)


def test_pyas2lib_reads_our_error_mdn(us, them):
    sender, receiver = _org("THEM", them), _partner("GATEWAY", us, mdn_mode="SYNC", sign=True, encrypt=True)
    outgoing = pyas2.Message(sender, receiver)
    outgoing.build(PAYLOAD, content_type="application/octet-stream")
    mdn = build_mdn(
        original_message_id=outgoing.message_id,
        final_recipient="GATEWAY",
        disposition=Disposition("processed", "error", "decryption-failed"),
    )
    status, detail = pyas2.Mdn().parse(
        entity_bytes(mdn.headers, mdn.body), find_message_cb=lambda m, r: outgoing
    )
    assert status == "processed/error"
    assert detail == "decryption-failed"


SEND = [
    SendOptions(),
    SendOptions(digest="sha1", cipher="tripledes_3key", micalg_spelling=MicalgSpelling.RFC3851),
    SendOptions(digest="sha512", cipher="aes128_cbc", transfer_encoding=TransferEncoding.BASE64),
    SendOptions(compression=Compression.BEFORE_SIGNING, quote_parameters=False),
    SendOptions(compression=Compression.AFTER_SIGNING),
    SendOptions(encrypt=False, digest="sha384"),
    SendOptions(sign=False),
    SendOptions(sign=False, encrypt=False, compression=Compression.BEFORE_SIGNING),
    SendOptions(key_transport="rsaes_oaep", cipher="aes192_cbc"),
]


@pytest.mark.parametrize(
    "options", SEND, ids=lambda o: f"{o.digest}-{o.cipher}-{o.compression}-{o.sign}-{o.encrypt}"
)
def test_pyas2lib_opens_ours_and_we_read_its_mdn(us, them, options):
    # pyas2lib re-serialises application/octet-stream parts decoded, which breaks its
    # own check of base64 parts; edi-x12 in base64 keeps the bytes exact
    base64 = options.transfer_encoding is TransferEncoding.BASE64
    content_type = "application/edi-x12" if base64 else "application/octet-stream"
    out = build_message(
        PAYLOAD,
        content_type=content_type,
        filename="po.bin",
        options=options,
        our_keys=[us],
        partner_certs=[them.certificate],
    )
    message_id = make_message_id("gateway.test")
    headers = {
        **as2_headers(
            as2_from="GATEWAY",
            as2_to="THEM",
            message_id=message_id,
            receipt_to="as2@gateway.test",
            signed_receipt_micalg=out.mic.algorithm,
        ),
        **out.headers,
    }
    incoming = pyas2.Message()
    status, (exc, _tb), mdn = incoming.parse(
        entity_bytes(headers, out.body),
        find_org_cb=lambda name: _org("THEM", them),
        find_partner_cb=lambda name: _partner("GATEWAY", us, sign=options.sign, encrypt=options.encrypt),
    )
    assert status == "processed", exc
    assert incoming.content == PAYLOAD
    if options.sign:
        assert incoming.mic.decode() == out.mic.value

    report = parse_mdn(mdn.headers, mdn.content, partner_certs=[them.certificate])
    assert report.disposition.ok
    assert report.signed and report.signature_verified
    assert report.original_message_id == message_id
    if options.sign:
        assert report.mic is not None and report.mic.matches(out.mic)


def test_we_read_pyas2lib_error_mdn(us, them):
    """A message pyas2lib cannot verify (signed with the wrong key) comes back as
    processed/error: authentication-failed, which we read."""
    out = build_message(PAYLOAD, options=SendOptions(encrypt=False), our_keys=[them])
    headers = {
        **as2_headers(
            as2_from="GATEWAY",
            as2_to="THEM",
            message_id="<e1@gw>",
            receipt_to="as2@gw",
            signed_receipt_micalg="sha-256",
        ),
        **out.headers,
    }
    incoming = pyas2.Message()
    _status, _, mdn = incoming.parse(
        entity_bytes(headers, out.body),
        find_org_cb=lambda name: _org("THEM", them),
        find_partner_cb=lambda name: _partner("GATEWAY", us, sign=True),
    )
    report = parse_mdn(mdn.headers, mdn.content, partner_certs=[them.certificate])
    assert not report.disposition.ok
    assert report.disposition.kind == "error"
    assert report.disposition.modifier == "authentication-failed"


def test_we_read_pyas2lib_unsigned_mdn(us, them):
    out = build_message(
        PAYLOAD, content_type="application/octet-stream", our_keys=[us], partner_certs=[them.certificate]
    )
    headers = {
        **as2_headers(as2_from="GATEWAY", as2_to="THEM", message_id="<u1@gw>", receipt_to="as2@gw"),
        **out.headers,
    }
    incoming = pyas2.Message()
    status, _, mdn = incoming.parse(
        entity_bytes(headers, out.body),
        find_org_cb=lambda name: _org("THEM", them),
        find_partner_cb=lambda name: _partner("GATEWAY", us, sign=True, encrypt=True),
    )
    assert status == "processed"
    report = parse_mdn(mdn.headers, mdn.content)
    assert report.disposition.ok and not report.signed and report.signature_verified is None
    assert report.original_message_id == "<u1@gw>"
    assert report.mic is not None and report.mic.matches(out.mic)
