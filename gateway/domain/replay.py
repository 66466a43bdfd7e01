"""Replaying an inbound message from a stage: what each stage does to the message and
when it is refused. Pure: the caller reads the message, its documents and its
acknowledgments, asks here, and writes what the answer says.

Stages (``POST /api/v1/messages/{id}/replay`` ``{"from": ...}``, the console's
confirmation page, ``gateway replay --from``):

``translate`` (the default, and what a replay always was)
    The stored raw bytes are validated and translated again; documents keep their
    idempotency keys (message id + position). Any inbound message whose raw bytes
    are still stored: it moves back to ``received``.
``deliver``
    The documents already translated are handed to the ERP again, without
    translating; documents the ERP already has (``delivered``) are skipped unless
    the operator asks for them too. Keys unchanged, so the ERP dedupes. Only a
    settled message that has documents (acknowledged, partly delivered, failed
    after translation): it moves back to ``translated``.
``acknowledge``
    The TA1/997/999 built for the message is sent again through the partner's
    channel (a copy of each sent acknowledgment is queued; a failed one is queued
    again). The message's status does not change. Refused while an acknowledgment
    is still on its way (held, pending, sending), or when none was built.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from gateway.domain.states import INBOUND, InboundStatus, OutboxStatus


class ReplayStage(StrEnum):
    TRANSLATE = "translate"
    DELIVER = "deliver"
    ACKNOWLEDGE = "acknowledge"


class ReplayNotAllowed(Exception):
    """This replay is refused; the message says why (answered as 409)."""


def parse_stage(value: object) -> ReplayStage:
    """A stage named by a caller (None: the default, ``translate``)."""
    if value is None:
        return ReplayStage.TRANSLATE
    try:
        return ReplayStage(str(value))
    except ValueError:
        names = ", ".join(s.value for s in ReplayStage)
        raise ReplayNotAllowed(f"unknown stage {value!r}: one of {names}") from None


def replay_status(stage: ReplayStage, status: str, documents: int) -> str | None:
    """The status a message in ``status`` with ``documents`` stored documents moves to
    when replayed from ``stage`` (None: it keeps its status), or ReplayNotAllowed."""
    if stage is ReplayStage.ACKNOWLEDGE:
        return None
    if stage is ReplayStage.TRANSLATE:
        target = InboundStatus.RECEIVED
    else:
        if documents == 0:
            raise ReplayNotAllowed(
                f"the message ({status}) has no translated documents to deliver: replay it from translate"
            )
        target = InboundStatus.TRANSLATED
    settled = target is InboundStatus.RECEIVED or status in INBOUND.final
    if not settled or not INBOUND.allowed(status, target):
        raise ReplayNotAllowed(
            f"a {status} message cannot be replayed from {stage}: only a settled message "
            "(acknowledged, partly_delivered, failed) can be"
        )
    return str(target)


@dataclass(frozen=True, slots=True)
class AckResend:
    copy: tuple[str, ...]  # sent acknowledgments: a new outbox item with the same payload each
    requeue: tuple[str, ...]  # failed ones: queued again (OUTBOX failed -> pending)


def acks_to_resend(items: Iterable[tuple[str, str]]) -> AckResend:
    """What a replay from ``acknowledge`` does with a message's acknowledgment outbox
    items, given as (id, status)."""
    found = list(items)
    if not found:
        raise ReplayNotAllowed("no acknowledgment (TA1/997/999) was built for this message")
    moving = [i for i, s in found if s in (OutboxStatus.HELD, OutboxStatus.PENDING, OutboxStatus.SENDING)]
    if moving:
        raise ReplayNotAllowed(
            f"acknowledgment {moving[0]} has not been sent yet: it is still on its way to the partner"
        )
    plan = AckResend(
        copy=tuple(i for i, s in found if s == OutboxStatus.SENT),
        requeue=tuple(i for i, s in found if s == OutboxStatus.FAILED),
    )
    if not plan.copy and not plan.requeue:
        raise ReplayNotAllowed("every acknowledgment of this message was cancelled by an operator")
    return plan
