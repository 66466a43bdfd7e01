"""The CPU part of receiving an AS2 message: open it (:func:`as2.unwrap`) and build
the MDN that answers it, in one call that runs the same on the event loop, in a
thread, or in a worker process of :mod:`gateway.as2_pool`.

Everything here is plain values in and out (picklable: no certificate objects come
back, the signer is its subject text) and no I/O; durability, partnerships, metrics
and logging of refusals stay with the route (gateway.api.as2_inbound).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

import as2
from gateway.as2_settings import As2Local

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Incoming:
    """What the route read from the request, and what the partnership requires."""

    headers: dict[str, str]
    message_id: str
    as2_from: str
    as2_to: str
    require_signature: bool
    require_encryption: bool
    max_decompressed_bytes: int
    now: dt.datetime


@dataclass(frozen=True, slots=True)
class Opened:
    """An opened message and its positive MDN (built, not yet sent)."""

    payload: bytes
    signed: bool
    layers: tuple[str, ...]
    signer: str | None  # the signing certificate's subject (RFC 4514)
    mic: as2.Mic
    mdn: as2.OutgoingMdn


@dataclass(frozen=True, slots=True)
class Refused:
    """A message that could not be opened, and its error MDN. ``unexpected`` is the
    traceback when the failure was not an ``as2`` error (a defect: logged as such)."""

    error: as2.AS2Error
    mdn: as2.OutgoingMdn
    unexpected: str | None = None


def open_and_answer(
    local: As2Local, partner_certs: Sequence[x509.Certificate], incoming: Incoming, body: bytes
) -> Opened | Refused:
    """Open ``body`` and build its MDN (signed as the request asks, with our newest
    valid key), or the error MDN with the RFC disposition modifier of the failure."""
    receipt = as2.parse_disposition_options(_header(incoming.headers, "Disposition-Notification-Options"))
    ids = (local, incoming.message_id, incoming.as2_from, incoming.as2_to, receipt)
    try:
        msg = as2.unwrap(
            incoming.headers,
            body,
            partner_certs=partner_certs,
            our_keys=local.keys,
            require_signature=incoming.require_signature,
            require_encryption=incoming.require_encryption,
            limits=as2.ReceiveLimits(max_decompressed_bytes=incoming.max_decompressed_bytes),
            now=incoming.now,
        )
    except as2.AS2Error as exc:
        return Refused(exc, build_mdn(*ids, as2.Disposition.for_error(exc), None))
    except Exception as exc:  # the package promises AS2Error only; never answer a 500 for a partner's bytes
        error = as2.AS2Error(type(exc).__name__)
        mdn = build_mdn(*ids, as2.Disposition.for_error(error), None)
        return Refused(error, mdn, traceback.format_exc())
    mdn = build_mdn(*ids, as2.Disposition(), msg.mic)
    signer = msg.signer.subject.rfc4514_string() if msg.signer is not None else None
    return Opened(msg.payload, msg.signed, msg.layers, signer, msg.mic, mdn)


def build_mdn(
    local: As2Local,
    message_id: str,
    as2_from: str,
    as2_to: str,
    receipt: as2.ReceiptRequest,
    disposition: as2.Disposition,
    mic: as2.Mic | None,
) -> as2.OutgoingMdn:
    """The MDN for ``message_id`` with its AS2 headers (a fresh Message-ID of ours)."""
    original_recipient = as2_to if _printable(as2_to) else None
    sign = receipt.signed and bool(local.keys)
    build = functools.partial(
        as2.build_mdn,
        original_message_id=message_id,
        final_recipient=local.id,
        original_recipient=original_recipient,
        disposition=disposition,
        mic=mic,
    )
    try:
        mdn = build(sign_with=local.keys if sign else (), micalg=receipt.chosen_micalg())
    except as2.CertificateError:
        # none of our keys is valid now: an unsigned MDN still tells the partner
        log.error("no valid AS2 key of ours to sign the MDN for %s; answering unsigned", message_id)
        mdn = build()
    headers = {
        **mdn.headers,
        "AS2-Version": as2.AS2_VERSION,
        "AS2-From": as2.quote_as2_name(local.id),
        "AS2-To": as2.quote_as2_name(as2_from) if _printable(as2_from) else "unknown",
        "Message-ID": as2.make_message_id(local.domain),
    }
    return as2.OutgoingMdn(headers, mdn.body)


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _printable(name: str) -> bool:
    try:
        as2.quote_as2_name(name)
    except ValueError:
        return False
    return True
