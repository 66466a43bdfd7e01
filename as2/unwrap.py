"""Open a received AS2 message: decrypt, verify, decompress in whatever order it came.

Input is the HTTP headers and body; output is a ``ReceivedMessage`` with the payload,
what protection it had, who signed it and the MIC to return in the MDN. The layers
are peeled by looking at each entity's Content-Type, so encrypted(signed(compressed))
and signed(compressed) and compressed(signed) all work, up to a nesting limit.

Signatures are checked over the exact bytes of the signed part first; only when that
fails and the part has bare LFs is the CRLF-canonical form tried (senders that
signed canonical text but transmitted LF). This module must never raise anything
but the package's own errors, and never trust a certificate carried in the message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from as2 import cms, cms_read
from as2.certs import KeyPair
from as2.errors import (
    AuthenticationFailed,
    DecryptionFailed,
    InsufficientSecurity,
    IntegrityCheckFailed,
    LimitExceeded,
    MimeError,
)
from as2.mic import Mic, ReceiptRequest, compute, parse_disposition_options
from as2.mime import (
    Headers,
    HeadersLike,
    MimeEntity,
    as_headers,
    entity_from_headers,
    has_bare_lf,
    parse_entity,
    split_multipart,
    to_crlf,
)

SIGNATURE_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature")
PKCS7_MIME_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
_SMIME_TYPES = {
    "signed_data": "signed-data",
    "enveloped_data": "enveloped-data",
    "authenticated_enveloped_data": "enveloped-data",
    "compressed_data": "compressed-data",
}


@dataclass(frozen=True, slots=True)
class ReceiveLimits:
    max_decompressed_bytes: int = 256 * 1024 * 1024
    max_depth: int = 8
    max_header_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """An opened message. ``layers`` lists the protections outermost first
    (``encrypted``, ``signed``, ``compressed``); ``mic`` is what the MDN returns."""

    payload: bytes
    content_type: str
    filename: str | None
    signed: bool
    encrypted: bool
    compressed: bool
    layers: tuple[str, ...]
    mic: Mic
    receipt: ReceiptRequest
    signer: x509.Certificate | None = None
    digest_algorithm: str | None = None
    signature_algorithm: str | None = None
    encryption_algorithm: str | None = None
    key_transport: str | None = None


def _parse_inner(data: bytes, limits: ReceiveLimits, *, allow_bare: bool = True) -> MimeEntity:
    """The entity inside a CMS layer; bare content without MIME headers (some senders
    encrypt the raw EDI) becomes an application/octet-stream entity when allowed."""
    try:
        return parse_entity(data, max_header_bytes=limits.max_header_bytes)
    except LimitExceeded:
        raise
    except MimeError:
        if not allow_bare:
            raise DecryptionFailed("decrypted content is not MIME (wrong key?)") from None
        return MimeEntity(Headers((("Content-Type", "application/octet-stream"),)), data)


def verify_detached(
    part: MimeEntity, signature: bytes, certs: Sequence[x509.Certificate], now: dt.datetime | None
) -> tuple[cms.Verified, bytes]:
    """Verify a multipart/signed content part: exact bytes, then CRLF-canonical.
    Returns the verification and the bytes it covered (what the MIC is over)."""
    try:
        return cms_read.verify(signature, part.raw, certs, now), part.raw
    except (AuthenticationFailed, IntegrityCheckFailed) as exact_failure:
        if not has_bare_lf(part.raw):
            raise
        canonical = to_crlf(part.raw)
        try:
            return cms_read.verify(signature, canonical, certs, now), canonical
        except AuthenticationFailed as canonical_failure:
            # a signature that matched one form's digest but not the key says more
            if isinstance(exact_failure, AuthenticationFailed):
                raise exact_failure from None
            raise canonical_failure from None
        except IntegrityCheckFailed:
            raise exact_failure from None


def unwrap(
    headers: HeadersLike,
    body: bytes,
    *,
    partner_certs: Sequence[x509.Certificate] = (),
    our_keys: Sequence[KeyPair] = (),
    require_signature: bool = False,
    require_encryption: bool = False,
    limits: ReceiveLimits = ReceiveLimits(),
    now: dt.datetime | None = None,
) -> ReceivedMessage:
    """Open ``body`` (with its HTTP ``headers``) and return what it carries."""
    top = as_headers(headers)
    receipt = parse_disposition_options(top.get("disposition-notification-options"))
    micalg = receipt.chosen_micalg()
    entity = entity_from_headers(top, body)
    layers: list[str] = []
    signed_bytes: bytes | None = None
    decrypted_bytes: bytes | None = None
    verified: cms.Verified | None = None
    decrypted: cms.Decrypted | None = None
    for _ in range(limits.max_depth + 1):
        content_type = entity.content_type
        media = content_type.media_type
        if media == "multipart/signed":
            boundary = content_type.param("boundary") or ""
            parts = split_multipart(
                entity.raw, boundary, max_header_bytes=limits.max_header_bytes, start=entity.body_start
            )
            if len(parts) < 2:
                raise MimeError("multipart/signed needs a content part and a signature part")
            signature_part = next(
                (p for p in parts[1:] if p.content_type.media_type in SIGNATURE_TYPES), parts[1]
            )
            result, covered = verify_detached(parts[0], signature_part.decoded_body(), partner_certs, now)
            if verified is None:
                verified, signed_bytes = result, covered
                decrypted_bytes = None  # the MIC is over the signed bytes: let the plaintext go
            layers.append("signed")
            entity = parts[0]
            continue
        if media in PKCS7_MIME_TYPES:
            der = entity.decoded_body()
            smime_type = (content_type.param("smime-type") or "").lower()
            if smime_type == "authenveloped-data":  # RFC 8551
                smime_type = "enveloped-data"
            if smime_type not in ("signed-data", "enveloped-data", "compressed-data"):
                smime_type = _SMIME_TYPES.get(cms.content_type_of(der) or "", "")
            if smime_type == "enveloped-data":
                opened = cms_read.decrypt(der, our_keys)
                del der
                if decrypted is None:
                    # Keep the algorithms only: the content lives on in ``entity``.
                    decrypted, decrypted_bytes = dataclasses.replace(opened, content=b""), opened.content
                layers.append("encrypted")
                entity = _parse_inner(opened.content, limits, allow_bare=opened.addressed)
                del opened
            elif smime_type == "compressed-data":
                layers.append("compressed")
                entity = _parse_inner(cms.decompress(der, limits.max_decompressed_bytes), limits)
            elif smime_type == "signed-data":
                result = cms_read.verify(der, None, partner_certs, now)
                if verified is None:
                    verified, signed_bytes = result, result.content
                layers.append("signed")
                entity = _parse_inner(result.content, limits)
            else:
                raise MimeError("application/pkcs7-mime holds no CMS type this package opens")
            continue
        break
    else:
        raise LimitExceeded(f"message nests more than {limits.max_depth} layers")

    payload = entity.decoded_body()
    if require_encryption and decrypted is None:
        raise InsufficientSecurity("the partnership requires encrypted messages")
    if require_signature and verified is None:
        raise InsufficientSecurity("the partnership requires signed messages")
    mic_source = signed_bytes if signed_bytes is not None else decrypted_bytes
    mic = compute(mic_source if mic_source is not None else payload, micalg, micalg)
    return ReceivedMessage(
        payload=payload,
        content_type=entity.content_type.media_type,
        filename=entity.filename,
        signed=verified is not None,
        encrypted=decrypted is not None,
        compressed="compressed" in layers,
        layers=tuple(layers),
        mic=mic,
        receipt=receipt,
        signer=verified.signer if verified else None,
        digest_algorithm=verified.digest_algorithm if verified else None,
        signature_algorithm=verified.signature_algorithm if verified else None,
        encryption_algorithm=decrypted.content_algorithm if decrypted else None,
        key_transport=decrypted.key_transport if decrypted else None,
    )
