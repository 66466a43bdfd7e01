"""Alert decisions, pure: the event kinds, each event's idempotency key, the
Standard Webhooks signature, when a partner counts as silent, and the order's
correlation id. No I/O, no clock of its own (``now`` is passed in).

The signature follows the Standard Webhooks scheme (standardwebhooks.com):

    webhook-id:        the event's idempotency key (the same on every retry)
    webhook-timestamp: Unix seconds of this attempt
    webhook-signature: "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))

The key is the secret's bytes; a secret written ``whsec_<base64>`` (the form the
scheme's libraries generate) is the base64-decoded part, so a receiver using one
of those libraries verifies us with the same string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
CORRELATION_HEADER = "X-Correlation-ID"


class AlertKind(StrEnum):
    EXCEPTION_OPENED = "exception_opened"
    EXCEPTION_CLOSED = "exception_closed"
    DEAD_LETTER = "dead_letter"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    PARTNER_SILENT = "partner_silent"


def _digest(*parts: str, size: int = 24) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:size]


def correlation_id(partner_id: str, po_number: str) -> str:
    """The one id every event about an order carries (logs, ERP deliveries, alerts):
    derived from (partner, PO), so any part of the gateway computes it without a lookup."""
    return "po-" + _digest(partner_id, po_number)


def correlation_of(partner_id: str | None, document: Mapping[str, Any], fallback: str) -> str:
    """The correlation id of a canonical ``document`` (its ``po_number``'s order), else ``fallback``."""
    po = document.get("po_number")
    if partner_id and isinstance(po, str) and po.strip():
        return correlation_id(partner_id, po.strip())
    return fallback


def exception_key(kind: AlertKind, exception_id: str) -> str:
    """Opening and closing of one exception row are two events."""
    return f"{kind}:{exception_id}"


def dead_letter_key(target: str, item_id: str, attempts: int) -> str:
    """One dead letter: a replay that dies again (more attempts) is a new event."""
    return f"{AlertKind.DEAD_LETTER}:{target}:{item_id}:{attempts}"


def certificate_key(owner: str, serial: int, not_after: datetime) -> str:
    """One certificate (a renewed one, another serial, alerts again)."""
    return f"{AlertKind.CERTIFICATE_EXPIRING}:{_digest(owner, format(serial, 'x'), not_after.isoformat())}"


def silence_key(partner_id: str, last_message_id: str) -> str:
    """One silence: it ends with the partner's next message, and the next silence is new."""
    return f"{AlertKind.PARTNER_SILENT}:{_digest(partner_id, last_message_id)}"


# --------------------------------------------------------------------------- silence


def usual_gap(arrivals: Sequence[datetime]) -> timedelta | None:
    """The median gap between consecutive arrivals (any order); None with fewer than three."""
    times = sorted(arrivals)
    if len(times) < 3:
        return None
    return timedelta(seconds=statistics.median((b - a).total_seconds() for a, b in itertools.pairwise(times)))


def silent_for(
    arrivals: Sequence[datetime], now: datetime, *, factor: float, minimum: timedelta
) -> timedelta | None:
    """How long the partner has been silent when that is longer than ``factor`` times
    its usual gap and at least ``minimum``; None when it is not silent (or has too
    little history to have a usual gap)."""
    gap = usual_gap(arrivals)
    if gap is None:
        return None
    quiet = now - max(arrivals)
    return quiet if quiet > max(gap * factor, minimum) else None


# --------------------------------------------------------------------------- signature


def secret_key(secret: str) -> bytes:
    """The HMAC key of a configured secret (``whsec_`` + base64, else its UTF-8 bytes)."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify(secret: str, webhook_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """What a receiver does (constant time); the header may list several space-separated
    signatures (key rotation). A receiver should also refuse stale timestamps."""
    expected = sign(secret, webhook_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())
