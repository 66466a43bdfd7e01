"""The outbound direction: a canonical document from the ERP becomes an X12
interchange for one partner, stored and queued for delivery in one transaction.

:func:`submit` allocates the ISA13 and GS06 (``gateway.db.control_numbers``,
``UPDATE ... RETURNING``, shared with the acknowledgments we write, so numbers are
unique and increasing per partner across restarts, processes and concurrent
requests), renders ST..SE in the partner's conventions
(``translators.mapping.render`` with ``profile.mapping``), wraps it with our
identity and the partner's delimiters and version, writes the bytes to the raw
store and inserts, in the same transaction as the allocation: the ``messages`` row
(direction ``out``), its ``documents`` row and its business keys (gateway.orders),
the ``outbox`` item and the timeline.
A rollback gives the control numbers back, so no gap is ever sent.

Outbound statuses: ``queued`` (in the outbox) -> ``sent`` (delivered to the partner's
URL, or fetched from its mailbox) -> ``accepted`` | ``accepted_with_errors`` |
``partially_accepted`` | ``rejected`` (their 997/999, see gateway.reconcile), or
``overdue`` when no acknowledgment came in time; ``failed`` when delivery was given up.

This module never sends anything itself (gateway.delivery does) and never reads
settings: the caller hands in the identity and the profile.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.config import IdentitySettings
from gateway.db.control_numbers import allocate
from gateway.db.engine import Database
from gateway.db.ids import new_id
from gateway.db.models import Document, Message, MessageEvent, OutboxItem
from gateway.domain.errors import RenderRefused
from gateway.domain.interchanges import BUSINESS_NUMBER_FIELD, SET_ID_BY_KIND, assemble_interchange, sender_of
from gateway.domain.orders import OrderPolicy
from gateway.hooks import HookError, outbound_document
from gateway.orders import POLICIES, link_documents
from gateway.rawstore import RawStore

BUSINESS_NUMBER = BUSINESS_NUMBER_FIELD
CHANNEL = "api"
MAX_RAW = 64 * 1024 * 1024


class IdempotencyConflict(Exception):
    def __init__(self, message_id: str) -> None:
        super().__init__(f"idempotency key already used for message {message_id} with a different document")
        self.message_id = message_id


@dataclass(frozen=True, slots=True)
class Submitted:
    message_id: str
    created: bool
    interchange_control: int | None = None
    group_control: int | None = None


def request_digest(kind: str, partner_id: str, document: dict[str, Any]) -> str:
    """What an Idempotency-Key is bound to: the same document for the same partner."""
    text = json.dumps({"kind": kind, "partner_id": partner_id, "document": document}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def render_interchange(
    document: Any, profile: Any, identity: IdentitySettings, *, interchange: int, group: int, at: datetime
) -> str:
    """The whole interchange text for one document (one group, one set ``0001``);
    raises :class:`RenderRefused` (gateway.domain.errors, a 422)."""
    return assemble_interchange(
        [document], profile, identity, interchange_control=interchange, group_control=group, at=at
    )


async def find_existing(db: Database, partner_id: str, key: str, digest: str) -> Submitted | None:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(Message.id).where(
                    Message.partner_id == partner_id,
                    Message.channel == CHANNEL,
                    Message.idempotency_key == key,
                )
            )
        ).first()
        if row is None:
            return None
        detail = (
            await conn.execute(
                select(MessageEvent.detail)
                .where(MessageEvent.message_id == row.id, MessageEvent.state == "received")
                .order_by(MessageEvent.id)
                .limit(1)
            )
        ).scalar_one_or_none()
    if (detail or {}).get("request_sha256") != digest:
        raise IdempotencyConflict(row.id)
    return Submitted(row.id, False)


async def submit(
    db: Database,
    rawstore: RawStore,
    *,
    profile: Any,
    identity: IdentitySettings,
    document: Any,
    now: datetime,
    idempotency_key: str | None = None,
    request_id: str | None = None,
    hooks: Path | None = None,
    channel: str = "mailbox",
    order_policy: OrderPolicy | None = None,
) -> Submitted:
    """Store and queue ``document`` (a canonical document model) for ``profile``'s partner.

    ``hooks`` is the partner's hooks.py: its ``outbound`` hook shapes what is
    rendered; what is stored as canonical is what the ERP sent."""
    from translators.canonical import CanonicalDocument, kind_of

    try:
        to_render = outbound_document(hooks, document, partner_id=profile.id)
    except HookError as exc:
        raise RenderRefused(str(exc)) from None

    kind = kind_of(document)
    canonical = CanonicalDocument.wrap(document, partner_id=profile.id).model_dump(mode="json")
    digest = request_digest(kind, profile.id, document.model_dump(mode="json"))
    if idempotency_key is not None:
        found = await find_existing(db, profile.id, idempotency_key, digest)
        if found is not None:
            return found
    message_id = new_id()
    try:
        async with db.begin() as session:
            [isa13] = await allocate(session, profile.id, "interchange")
            [gs06] = await allocate(session, profile.id, "group")
            text = render_interchange(to_render, profile, identity, interchange=isa13, group=gs06, at=now)
            data = text.encode("utf-8")
            raw = await rawstore.write_bytes(data, limit=MAX_RAW)
            number = getattr(document, BUSINESS_NUMBER[kind], None)
            set_id = SET_ID_BY_KIND[kind]
            session.add(
                Message(
                    id=message_id,
                    direction="out",
                    partner_id=profile.id,
                    channel=CHANNEL,
                    transport_id=request_id,
                    idempotency_key=idempotency_key,
                    kind="x12",
                    status="queued",
                    reason=None,
                    raw_sha256=raw.sha256,
                    raw_size=raw.size,
                    interchange_sender="/".join(sender_of(profile, identity)[:2]),
                    interchange_control=f"{isa13:09d}",
                    received_at=now,
                    updated_at=now,
                )
            )
            await session.flush()  # the message row first: the rows below refer to it
            document_id = new_id()
            session.add(
                Document(
                    id=document_id,
                    message_id=message_id,
                    seq=1,
                    partner_id=profile.id,
                    direction="out",
                    kind=kind,
                    set_id=set_id,
                    set_control="0001",
                    group_control=str(gs06),
                    interchange_control=f"{isa13:09d}",
                    business_number=str(number)[:80] if number else None,
                    canonical=canonical,
                    idempotency_key=hashlib.sha256(f"gateway-outbound:{message_id}:1".encode()).hexdigest(),
                    status="queued",
                    attempts=0,
                    created_at=now,
                )
            )
            await session.flush()
            if order_policy is not None:
                session.info[POLICIES] = lambda _partner_id: order_policy
            linked = {
                "id": document_id,
                "message_id": message_id,
                "partner_id": profile.id,
                "kind": kind,
                "canonical": canonical,
                "interchange_control": f"{isa13:09d}",
                "group_control": str(gs06),
            }
            await link_documents(session, [linked], now=now)
            session.add(
                OutboxItem(
                    id=new_id(),
                    partner_id=profile.id,
                    message_id=message_id,
                    kind=set_id,
                    channel=channel,
                    payload=text,
                    interchange_control=isa13,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            session.add_all(
                [
                    MessageEvent(
                        message_id=message_id,
                        at=now,
                        state="received",
                        detail={
                            "channel": CHANNEL,
                            "transport_id": request_id,
                            "kind": kind,
                            "request_sha256": digest,
                        },
                    ),
                    MessageEvent(
                        message_id=message_id,
                        at=now,
                        state="queued",
                        detail={
                            "interchange_control": f"{isa13:09d}",
                            "group_control": str(gs06),
                            "set_id": set_id,
                            "channel": channel,
                            "size": raw.size,
                        },
                    ),
                ]
            )
    except IntegrityError:
        # Two requests raced with one Idempotency-Key: the loser answers with the winner.
        if idempotency_key is not None:
            found = await find_existing(db, profile.id, idempotency_key, digest)
            if found is not None:
                return found
        raise
    return Submitted(message_id, True, isa13, gs06)
