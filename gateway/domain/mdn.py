"""The MDN status of an AS2 send, decided without I/O.

What we send over AS2 asks for an MDN (``[as2] mdn`` in the partner's profile):
``sync`` answers in the HTTP response, ``async`` arrives later at ``POST /as2``.
Each outbox item sent over AS2 carries one of:

- ``pending``: sent, an asynchronous MDN is awaited;
- ``processed``: the MDN said processed, its MIC matched ours (and its signature
  verified when ``mdn_signed``);
- ``error``: the MDN refused the message (its disposition) or could not be held to
  ours (wrong MIC, unsigned when a signature was asked for);
- ``overdue``: never stored; a pending MDN whose send is older than the threshold
  (``[as2] mdn_overdue_minutes``) is reported as overdue.

A send with ``mdn = "none"`` has no MDN status (None). This module never touches the
database; gateway.delivery and gateway.api.as2_mdn_inbound write what it decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class MdnStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    ERROR = "error"
    OVERDUE = "overdue"  # reported, never stored


#: What the outbox column may hold.
STORED = frozenset({MdnStatus.PENDING, MdnStatus.PROCESSED, MdnStatus.ERROR})
DEFAULT_OVERDUE = timedelta(minutes=60)


@dataclass(frozen=True, slots=True)
class MdnVerdict:
    status: MdnStatus
    detail: str | None


def after_send(events: Iterable[tuple[str, dict[str, Any]]], sent: bool, detail: str) -> MdnVerdict | None:
    """The MDN status a send leaves, from the events the transport reported
    (``mdn_received`` for a synchronous MDN, ``as2_sent`` when an asynchronous one is
    awaited) and whether the send counted as sent; None when no MDN is involved
    (another channel, ``mdn = "none"``, a transport failure before any answer)."""
    states = {state: evidence for state, evidence in events}
    if "mdn_received" in states:
        if sent:
            return MdnVerdict(MdnStatus.PROCESSED, _disposition(states["mdn_received"]))
        return MdnVerdict(MdnStatus.ERROR, detail)
    if "as2_sent" in states and sent and states["as2_sent"].get("mdn") == "async":
        return MdnVerdict(MdnStatus.PENDING, None)
    return None


def after_async_mdn(outcome: str, trusted: bool, detail: str, evidence: dict[str, Any]) -> MdnVerdict | None:
    """The status an asynchronous MDN leaves (``outcome`` as judged: sent, permanent,
    transient); None leaves the stored status alone: an MDN that does not verify
    (anyone can post to /as2) or cannot be read settles nothing."""
    if outcome == "sent":
        return MdnVerdict(MdnStatus.PROCESSED, _disposition(evidence))
    if outcome == "permanent" and trusted:
        return MdnVerdict(MdnStatus.ERROR, detail)
    return None


def columns(verdict: MdnVerdict, now: datetime, limit: int = 2000) -> dict[str, Any]:
    """The outbox item's ``mdn_*`` column values for ``verdict`` read at ``now``
    (a pending MDN has not been read yet; the detail is cut to ``limit``)."""
    detail = verdict.detail
    if detail is not None and len(detail) > limit:
        detail = detail[: limit - 1] + "…"
    return {
        "mdn_status": verdict.status.value,
        "mdn_at": None if verdict.status is MdnStatus.PENDING else now,
        "mdn_detail": detail,
    }


def reported(
    stored: str | None, sent_at: datetime | None, now: datetime, overdue_after: timedelta
) -> str | None:
    """The status to show: a pending MDN older than ``overdue_after`` is overdue."""
    if stored == MdnStatus.PENDING and sent_at is not None and now - sent_at > overdue_after:
        return MdnStatus.OVERDUE
    return stored


def _disposition(evidence: dict[str, Any]) -> str | None:
    value = evidence.get("disposition")
    return str(value) if value is not None else None
