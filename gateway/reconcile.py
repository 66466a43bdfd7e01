"""Reconciliation: the partner's 997/999/TA1 matched to what we sent them, and the
periodic check that marks unanswered outbound messages ``overdue``.

Matching is by partner plus, for a 997/999, the group control number it
acknowledges (AK102/GS06) and, per set, ST02; for a TA1, the interchange control
number (TA101/ISA13). Control numbers compare as numbers (``000000042`` is 42).
Verdicts become the outbound message's status: ``accepted``,
``accepted_with_errors``, ``partially_accepted`` or ``rejected`` (a TA1 only ever
changes it when it rejects the interchange). An ack that matches nothing is
recorded on the inbound message's timeline as ``unmatched_ack``; it is never an error.

The pipeline calls :func:`reconcile_report` inside the transaction that stores the
inbound acknowledgment. This module never sends anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import orders
from gateway.db.engine import Database
from gateway.db.models import Document, Message, MessageEvent
from gateway.domain.states import OUTBOUND, OutboundStatus

DEFAULT_OVERDUE_HOURS = 24.0
# Verdicts (translators.x12.ack_reader) -> outbound message status.
STATUS_BY_VERDICT = {
    "accepted": "accepted",
    "accepted_with_errors": "accepted_with_errors",
    "partially_accepted": "partially_accepted",
    "rejected": "rejected",
}
WAITING = ("sent", "overdue")


def _number(control: str) -> str:
    text = control.strip()
    return str(int(text)) if text.isdigit() else text


async def reconcile_report(
    session: AsyncSession, partner_id: str, report: Any, *, now: datetime, source_message_id: str
) -> list[str]:
    """Apply a FunctionalAckReport or Ta1Report; returns the outbound message ids it matched."""
    if hasattr(report, "group_control"):
        matched = await reconcile_functional_ack(
            session, partner_id, report, now=now, source_message_id=source_message_id
        )
    else:
        matched = await reconcile_ta1(
            session, partner_id, report, now=now, source_message_id=source_message_id
        )
    await orders.refresh_messages(session, matched, now=now)  # their orders' state and exceptions
    return matched


async def reconcile_functional_ack(
    session: AsyncSession, partner_id: str, report: Any, *, now: datetime, source_message_id: str
) -> list[str]:
    group = _number(report.group_control)
    docs = (
        (
            await session.execute(
                select(Document).where(
                    Document.partner_id == partner_id,
                    Document.direction == "out",
                    Document.group_control == group,
                )
            )
        )
        .scalars()
        .all()
    )
    detail = {
        "kind": report.kind,
        "group_control": report.group_control,
        "code": report.code,
        "source_message_id": source_message_id,
    }
    if not docs:
        _event(session, source_message_id, now, "unmatched_ack", {**detail, "partner_id": partner_id})
        return []
    verdicts: dict[str, list[str]] = {}
    for doc in docs:
        verdict = report.set_verdict(doc.set_control or "")
        doc.status = STATUS_BY_VERDICT.get(verdict, doc.status)
        verdicts.setdefault(doc.message_id, []).append(verdict)
    matched = []
    for message_id, found in verdicts.items():
        status = _combine(found)
        values: dict[str, Any] = {"updated_at": now}
        where = [Message.id == message_id]
        if status is not None:
            values["status"] = status
            values["reason"] = _reason(report) if status != "accepted" else None
            # A message not yet sent (or failed) keeps its state; the event still records the ack.
            where.append(Message.status.in_(OUTBOUND.sources(status)))
        await session.execute(update(Message).where(*where).values(**values))
        _event(session, message_id, now, status or "ack_unclear", {**detail, "verdicts": found})
        matched.append(message_id)
    _event(session, source_message_id, now, "reconciled", {**detail, "matched": matched})
    return matched


async def reconcile_ta1(
    session: AsyncSession, partner_id: str, report: Any, *, now: datetime, source_message_id: str
) -> list[str]:
    control = _number(report.interchange_control)
    rows = (
        (
            await session.execute(
                select(Message)
                .where(
                    Message.partner_id == partner_id,
                    Message.direction == "out",
                    Message.interchange_control.is_not(None),
                )
                .where(Message.interchange_control.in_({control.zfill(9), control}))
            )
        )
        .scalars()
        .all()
    )
    detail = {
        "kind": "TA1",
        "interchange_control": report.interchange_control,
        "code": report.code,
        "note": report.note,
        "source_message_id": source_message_id,
    }
    if not rows:
        _event(session, source_message_id, now, "unmatched_ack", {**detail, "partner_id": partner_id})
        return []
    for message in rows:
        if report.verdict == "rejected" and OUTBOUND.allowed(message.status, OutboundStatus.REJECTED):
            message.status = OutboundStatus.REJECTED
            message.reason = f"TA1 note {report.note}: {report.note_name or 'rejected'}"
        message.updated_at = now
        _event(session, message.id, now, "ta1_received", detail)
    _event(session, source_message_id, now, "reconciled", {**detail, "matched": [m.id for m in rows]})
    return [m.id for m in rows]


def _combine(verdicts: list[str]) -> str | None:
    kinds = set(verdicts)
    if kinds == {"accepted"}:
        return "accepted"
    if kinds <= {"accepted", "accepted_with_errors"}:
        return "accepted_with_errors"
    if kinds == {"rejected"}:
        return "rejected"
    if "unknown" in kinds and len(kinds) == 1:
        return None
    return "partially_accepted"


def _reason(report: Any) -> str:
    errors = list(report.group_errors)
    for s in report.sets:
        errors += [f"set {s.control_number}: {e}" for e in s.errors]
        errors += [f"set {s.control_number} segment {e.tag}: {e.code}" for e in s.segment_errors]
    text = f"{report.kind} AK9 {report.code or '?'}"
    return text + (": " + "; ".join(errors[:5]) if errors else "")


def _event(session: AsyncSession, message_id: str, at: datetime, state: str, detail: dict[str, Any]) -> None:
    session.add(MessageEvent(message_id=message_id, at=at, state=state, detail=detail))


async def mark_overdue(db: Database, partners: Callable[[], Any], *, now: datetime) -> list[str]:
    """Outbound messages sent longer ago than their partner's ``x12.ack_overdue_hours``
    without a 997/999 become ``overdue``; returns their ids."""
    directory = partners()
    async with db.begin() as session:
        candidates = (
            await session.execute(
                select(Message.id, Message.partner_id, Message.updated_at).where(
                    Message.direction == "out", Message.status == "sent"
                )
            )
        ).all()
        late: list[str] = []
        for message_id, partner_id, sent_at in candidates:
            profile = directory.get(partner_id) if directory is not None and partner_id else None
            if profile is not None and not profile.x12.expect_functional_ack:
                continue
            hours = profile.x12.ack_overdue_hours if profile is not None else DEFAULT_OVERDUE_HOURS
            if now - sent_at >= timedelta(hours=hours):
                late.append(message_id)
        if late:
            await session.execute(
                update(Message)
                .where(Message.id.in_(late), Message.status.in_(OUTBOUND.sources(OutboundStatus.OVERDUE)))
                .values(
                    status=OutboundStatus.OVERDUE,
                    updated_at=now,
                    reason="no functional acknowledgment in time",
                )
            )
            for message_id in late:
                _event(
                    session, message_id, now, "overdue", {"reason": "no functional acknowledgment in time"}
                )
            orders.use_policies(session, partners)
            await orders.refresh_messages(session, late, now=now)  # partner_ack_overdue
    return late
