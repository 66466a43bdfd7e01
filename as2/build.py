"""Build an outgoing AS2 message: payload → (compress) → sign → (compress) → encrypt.

Sending is strict: CRLF headers, one boundary, a signature over the exact bytes that
go on the wire, the newest currently valid certificate on each side. What partners'
software disagrees about (micalg spelling, transfer encoding, compressing before or
after signing, quoting parameters) is a ``SendOptions`` field, not code.

Also the AS2 HTTP headers, as a plain dict. This module must never send anything:
it returns headers and bytes.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

from as2 import cms
from as2.certs import KeyPair, newest_valid, newest_valid_key
from as2.errors import CertificateError
from as2.mic import Mic, MicalgSpelling, compute, disposition_options, spell
from as2.mime import build_entity, build_multipart, encode_base64, format_params, make_boundary

AS2_VERSION = "1.2"


class Compression(StrEnum):
    NONE = "none"
    BEFORE_SIGNING = "before-signing"
    AFTER_SIGNING = "after-signing"


class TransferEncoding(StrEnum):
    BINARY = "binary"
    BASE64 = "base64"


@dataclass(frozen=True, slots=True)
class SendOptions:
    """How to wrap messages for one partner (the defaults suit most software)."""

    sign: bool = True
    encrypt: bool = True
    digest: str = "sha256"
    micalg_spelling: MicalgSpelling = MicalgSpelling.RFC5751
    cipher: str = "aes256_cbc"
    key_transport: str = "rsaes_pkcs1v15"
    compression: Compression = Compression.NONE
    transfer_encoding: TransferEncoding = TransferEncoding.BINARY
    quote_parameters: bool = True

    def __post_init__(self) -> None:
        if self.digest not in cms.SIGNING_DIGESTS:
            raise ValueError(f"unsupported digest {self.digest!r}")
        if self.cipher not in cms.CBC_CIPHERS and self.cipher not in cms.GCM_CIPHERS:
            raise ValueError(f"unsupported cipher {self.cipher!r}")
        if self.key_transport not in cms.KEY_TRANSPORTS:
            raise ValueError(f"unsupported key transport {self.key_transport!r}")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """The HTTP entity headers (Content-Type, ...) and body, and the MIC to expect back
    in the MDN (over the signed entity, the encrypted entity, or the payload)."""

    headers: dict[str, str]
    body: bytes
    mic: Mic


def _cms_entity(
    der: bytes, smime_type: str, name: str, options: SendOptions
) -> tuple[list[tuple[str, str]], bytes]:
    params = [("smime-type", smime_type), ("name", name)]
    headers = [
        ("Content-Type", format_params("application/pkcs7-mime", params, quote=options.quote_parameters)),
        ("Content-Transfer-Encoding", options.transfer_encoding.value),
        (
            "Content-Disposition",
            format_params("attachment", [("filename", name)], quote=options.quote_parameters),
        ),
    ]
    body = encode_base64(der) if options.transfer_encoding is TransferEncoding.BASE64 else der
    return headers, body


def _signed_entity(
    entity: bytes, signer: KeyPair, options: SendOptions, boundary: str, now: dt.datetime | None
) -> tuple[list[tuple[str, str]], bytes]:
    signature = cms.sign(entity, signer, options.digest, now=now)
    sig_headers = [
        (
            "Content-Type",
            format_params(
                "application/pkcs7-signature", [("name", "smime.p7s")], quote=options.quote_parameters
            ),
        ),
        ("Content-Transfer-Encoding", "base64"),
        (
            "Content-Disposition",
            format_params("attachment", [("filename", "smime.p7s")], quote=options.quote_parameters),
        ),
    ]
    body = build_multipart([entity, build_entity(sig_headers, encode_base64(signature))], boundary)
    content_type = format_params(
        "multipart/signed",
        [
            ("protocol", "application/pkcs7-signature"),
            ("micalg", spell(options.digest, options.micalg_spelling)),
            ("boundary", boundary),
        ],
        quote=options.quote_parameters,
    )
    return [("Content-Type", content_type)], body


def build_message(
    payload: bytes,
    *,
    content_type: str = "application/edi-x12",
    filename: str | None = None,
    options: SendOptions = SendOptions(),
    our_keys: Sequence[KeyPair] = (),
    partner_certs: Sequence[x509.Certificate] = (),
    now: dt.datetime | None = None,
    boundary: str | None = None,
) -> OutgoingMessage:
    """Wrap ``payload`` for sending; raises CertificateError when no key or
    certificate is valid now."""
    headers: list[tuple[str, str]] = [("Content-Type", content_type)]
    if options.transfer_encoding is TransferEncoding.BASE64:
        headers.append(("Content-Transfer-Encoding", "base64"))
        body = encode_base64(payload)
    else:
        headers.append(("Content-Transfer-Encoding", "binary"))
        body = payload
    if filename:
        headers.append(
            (
                "Content-Disposition",
                format_params("attachment", [("filename", filename)], quote=options.quote_parameters),
            )
        )
    micalg = spell(options.digest, options.micalg_spelling)
    mic = compute(payload, options.digest, micalg)

    if options.compression is Compression.BEFORE_SIGNING or (
        options.compression is Compression.AFTER_SIGNING and not options.sign
    ):
        headers, body = _cms_entity(
            cms.compress(build_entity(headers, body)), "compressed-data", "smime.p7z", options
        )
    if options.sign:
        if not our_keys:
            raise CertificateError("signing requested but no signing key given")
        signer = newest_valid_key(our_keys, now)
        entity = build_entity(headers, body)
        mic = compute(entity, options.digest, micalg)
        headers, body = _signed_entity(entity, signer, options, boundary or make_boundary(), now)
        if options.compression is Compression.AFTER_SIGNING:
            headers, body = _cms_entity(
                cms.compress(build_entity(headers, body)), "compressed-data", "smime.p7z", options
            )
    if options.encrypt:
        if not partner_certs:
            raise CertificateError("encryption requested but no partner certificate given")
        recipient = newest_valid(partner_certs, now)
        entity = build_entity(headers, body)
        if not options.sign:
            mic = compute(entity, options.digest, micalg)
        der = cms.encrypt(entity, recipient, options.cipher, key_transport=options.key_transport)
        smime_type = "authEnveloped-data" if options.cipher in cms.GCM_CIPHERS else "enveloped-data"
        headers, body = _cms_entity(der, smime_type, "smime.p7m", options)
    result = dict(headers)
    result.setdefault("MIME-Version", "1.0")
    return OutgoingMessage(result, body, mic)


# --- AS2 HTTP headers --------------------------------------------------------

_AS2_NAME = re.compile(r"^[\x21-\x7e ]{1,128}$")


def quote_as2_name(name: str) -> str:
    """AS2-From/AS2-To value (RFC 4130 §6.2): quoted when it holds a space, quote or backslash."""
    if not _AS2_NAME.match(name):
        raise ValueError(f"AS2 name must be 1-128 printable ASCII characters: {name!r}")
    if re.search(r'[ "\\]', name):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def unquote_as2_name(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(when: dt.datetime) -> str:
    """RFC 7231 IMF-fixdate (``Mon, 07 Dec 2026 06:00:00 GMT``), locale-independent."""
    t = when.astimezone(dt.UTC)
    return f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year} {t:%H:%M:%S} GMT"


def make_message_id(domain: str, token: str | None = None) -> str:
    """``<token@domain>``; the token is random unless given (tests)."""
    return f"<{token or os.urandom(16).hex()}@{domain}>"


def as2_headers(
    *,
    as2_from: str,
    as2_to: str,
    message_id: str,
    subject: str = "AS2 message",
    receipt_to: str | None = None,
    signed_receipt_micalg: str | None = None,
    async_receipt_url: str | None = None,
    date: dt.datetime | None = None,
) -> dict[str, str]:
    """The AS2 request headers besides the entity headers from ``build_message``.

    ``receipt_to`` requests an MDN; ``signed_receipt_micalg`` (e.g. ``sha-256``)
    asks for it signed; ``async_receipt_url`` makes it asynchronous. No
    EDIINT-Features header: announcing multiple-attachments or AS2-Reliability
    would invite what the service does not handle yet.
    """
    if not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    headers = {
        "AS2-Version": AS2_VERSION,
        "AS2-From": quote_as2_name(as2_from),
        "AS2-To": quote_as2_name(as2_to),
        "Message-ID": message_id,
        "Subject": subject,
        "Date": http_date(date or dt.datetime.now(dt.UTC)),
    }
    if receipt_to:
        headers["Disposition-Notification-To"] = receipt_to
        if signed_receipt_micalg:
            headers["Disposition-Notification-Options"] = disposition_options(signed_receipt_micalg)
        if async_receipt_url:
            headers["Receipt-Delivery-Option"] = async_receipt_url
    return headers
