"""Message Disposition Notifications (RFC 8098, RFC 4130 §7.4): build and read.

An MDN is a multipart/report with a human-readable part and a
message/disposition-notification part, optionally inside multipart/signed. Building
is strict (CRLF, fields in RFC order); reading tolerates what vendors send: missing
Original-Recipient, field names in any case, LF line ends, folded fields, an unsigned
MDN where a signed one was asked for (reported, not raised). This module must never
decide what to do with a disposition: it only renders and reads them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from as2 import cms
from as2.certs import KeyPair, newest_valid_key
from as2.errors import (
    AS2Error,
    AuthenticationFailed,
    DispositionModifier,
    IntegrityCheckFailed,
    MdnError,
    MimeError,
)
from as2.mic import Mic, MicalgSpelling, normalize_algorithm, parse_mic, spell
from as2.mime import (
    HeadersLike,
    MimeEntity,
    as_headers,
    build_entity,
    build_multipart,
    encode_base64,
    entity_from_headers,
    format_params,
    make_boundary,
    parse_headers,
    split_multipart,
)
from as2.unwrap import SIGNATURE_TYPES, verify_detached

ACTION = "automatic-action/MDN-sent-automatically"


@dataclass(frozen=True, slots=True)
class Disposition:
    """``processed``, or ``processed/error: <modifier>`` (kind ``error``, ``warning``,
    ``failure``); ``action`` is the action-mode/sending-mode part."""

    type: str = "processed"
    kind: str | None = None
    modifier: str | None = None
    action: str = ACTION

    @property
    def ok(self) -> bool:
        return self.type.lower() == "processed" and (self.kind is None or self.kind.lower() == "warning")

    def render(self) -> str:
        text = f"{self.action}; {self.type}"
        if self.kind:
            text += f"/{self.kind}"
            if self.modifier:
                text += f": {self.modifier}"
        return text

    @classmethod
    def parse(cls, value: str) -> Disposition:
        action, semi, rest = value.partition(";")
        if not semi:
            action, rest = ACTION, value
        head, _, modifier = rest.partition(":")
        dtype, slash, kind = head.strip().partition("/")
        return cls(
            dtype.strip().lower(),
            kind.strip().lower() if slash else None,
            modifier.strip() or None,
            action.strip(),
        )

    @classmethod
    def for_error(cls, error: AS2Error | DispositionModifier) -> Disposition:
        modifier = error if isinstance(error, DispositionModifier) else error.disposition
        return cls("processed", "error", modifier.value)


@dataclass(frozen=True, slots=True)
class OutgoingMdn:
    headers: dict[str, str]
    body: bytes


def build_mdn(
    *,
    original_message_id: str,
    final_recipient: str,
    disposition: Disposition = Disposition(),
    mic: Mic | None = None,
    original_recipient: str | None = None,
    reporting_ua: str = "Gateway AS2",
    text: str | None = None,
    sign_with: Sequence[KeyPair] = (),
    micalg: str = "sha-256",
    quote_parameters: bool = True,
    now: dt.datetime | None = None,
    boundary: str | None = None,
) -> OutgoingMdn:
    """A multipart/report MDN; signed (multipart/signed in ``micalg``) when keys are given.

    ``final_recipient`` is our AS2 name (the original AS2-To); ``mic`` is
    ``ReceivedMessage.mic`` and is left out when the message could not be opened.
    """
    message_id = original_message_id if original_message_id.startswith("<") else f"<{original_message_id}>"
    fields = [("Reporting-UA", reporting_ua)]
    if original_recipient:
        fields.append(("Original-Recipient", f"rfc822; {original_recipient}"))
    fields += [("Final-Recipient", f"rfc822; {final_recipient}"), ("Original-Message-ID", message_id)]
    if mic is not None:
        fields.append(("Received-Content-MIC", mic.header_value()))
    fields.append(("Disposition", disposition.render()))
    report = "".join(f"{name}: {value}\r\n" for name, value in fields).encode("latin-1")
    if text is None:
        text = (
            f"The AS2 message {message_id} was received and processed."
            if disposition.ok
            else f"The AS2 message {message_id} could not be processed: {disposition.modifier or disposition.type}."
        )
    human = build_entity(
        [("Content-Type", "text/plain; charset=us-ascii"), ("Content-Transfer-Encoding", "7bit")],
        text.encode("ascii", "replace") + b"\r\n",
    )
    machine = build_entity(
        [("Content-Type", "message/disposition-notification"), ("Content-Transfer-Encoding", "7bit")], report
    )
    report_boundary = boundary or make_boundary()
    content_type = format_params(
        "multipart/report",
        [("report-type", "disposition-notification"), ("boundary", report_boundary)],
        quote=quote_parameters,
    )
    body = build_multipart([human, machine], report_boundary)
    if not sign_with:
        return OutgoingMdn({"Content-Type": content_type, "MIME-Version": "1.0"}, body)
    digest_name = normalize_algorithm(micalg) or "sha256"
    if digest_name not in cms.SIGNING_DIGESTS:
        digest_name = "sha256"
    entity = build_entity([("Content-Type", content_type)], body)
    signature = cms.sign(entity, newest_valid_key(sign_with, now), digest_name, now=now)
    sig_part = build_entity(
        [
            (
                "Content-Type",
                format_params("application/pkcs7-signature", [("name", "smime.p7s")], quote=quote_parameters),
            ),
            ("Content-Transfer-Encoding", "base64"),
            (
                "Content-Disposition",
                format_params("attachment", [("filename", "smime.p7s")], quote=quote_parameters),
            ),
        ],
        encode_base64(signature),
    )
    outer = make_boundary()
    spelled = (
        micalg if normalize_algorithm(micalg) == digest_name else spell(digest_name, MicalgSpelling.RFC5751)
    )
    signed_type = format_params(
        "multipart/signed",
        [("protocol", "application/pkcs7-signature"), ("micalg", spelled), ("boundary", outer)],
        quote=quote_parameters,
    )
    return OutgoingMdn(
        {"Content-Type": signed_type, "MIME-Version": "1.0"}, build_multipart([entity, sig_part], outer)
    )


@dataclass(frozen=True, slots=True)
class MdnReport:
    """A read MDN. ``signature_verified`` is None for an unsigned MDN, False when its
    signature verified with none of the given certificates."""

    original_message_id: str | None
    disposition: Disposition
    mic: Mic | None
    signed: bool
    signature_verified: bool | None
    signer: x509.Certificate | None
    reporting_ua: str | None
    final_recipient: str | None
    original_recipient: str | None
    text: str


def _recipient(value: str | None) -> str | None:
    if value is None:
        return None
    _, semi, address = value.partition(";")
    return (address if semi else value).strip()


def parse_mdn(
    headers: HeadersLike,
    body: bytes,
    *,
    partner_certs: Sequence[x509.Certificate] = (),
    now: dt.datetime | None = None,
) -> MdnReport:
    """Read an MDN from its HTTP headers and body. Raises MdnError when it has no
    readable disposition; a bad signature is reported in the result, not raised."""
    try:
        return _parse(entity_from_headers(as_headers(headers), body), partner_certs, now)
    except MimeError as exc:
        raise MdnError(f"unreadable MDN: {exc.reason}") from None


def _parse(entity: MimeEntity, certs: Sequence[x509.Certificate], now: dt.datetime | None) -> MdnReport:
    signed, verified, signer = False, None, None
    content_type = entity.content_type
    if content_type.media_type == "multipart/signed":
        parts = split_multipart(entity.body, content_type.param("boundary") or "")
        signature = next((p for p in parts[1:] if p.content_type.media_type in SIGNATURE_TYPES), None)
        signed = signature is not None
        if signature is not None:
            try:
                result, _ = verify_detached(parts[0], signature.decoded_body(), certs, now)
                verified, signer = True, result.signer
            except (AuthenticationFailed, IntegrityCheckFailed):
                verified = False
        entity = parts[0]
        content_type = entity.content_type
    if content_type.media_type != "multipart/report":
        raise MdnError(f"an MDN is multipart/report, not {content_type.media_type}")
    parts = split_multipart(entity.body, content_type.param("boundary") or "")
    notification = next(
        (p for p in parts if p.content_type.media_type == "message/disposition-notification"), None
    )
    if notification is None:
        raise MdnError("MDN has no message/disposition-notification part")
    fields = parse_headers(notification.decoded_body())
    disposition = fields.get("disposition")
    if not disposition:
        raise MdnError("MDN has no Disposition field")
    texts = [p.decoded_body() for p in parts if p.content_type.media_type.startswith("text/")]
    message_id = fields.get("original-message-id")
    mic_value = fields.get("received-content-mic")
    return MdnReport(
        original_message_id=message_id.strip() if message_id else None,
        disposition=Disposition.parse(disposition),
        mic=parse_mic(mic_value) if mic_value else None,
        signed=signed,
        signature_verified=verified,
        signer=signer,
        reporting_ua=fields.get("reporting-ua"),
        final_recipient=_recipient(fields.get("final-recipient")),
        original_recipient=_recipient(fields.get("original-recipient")),
        text=texts[0].decode("latin-1").strip() if texts else "",
    )
