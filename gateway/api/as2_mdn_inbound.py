"""Asynchronous MDNs arriving at ``POST /as2`` for what we sent with ``mdn = "async"``.

Our Message-ID is ``<outbox item id@our host>``, so the MDN's Original-Message-ID
names the outbox item, and through it the message. The MDN is read with the
partner's certificates and judged against the MIC recorded when we sent
(``as2_sent`` event); the verdict is an ``mdn_received`` event on the message. An
error disposition or a wrong MIC makes an outbound message ``failed`` with the
reason, as a sync MDN would have, but only when the MDN itself verified with the
partner's certificates (or the profile says ``mdn_signed = false``): anyone can post
here, and a forged MDN must not fail a message. The partner always gets an empty
200 for a readable MDN: there is nothing to answer an MDN with.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import select, update

import as2
from as2.mime import as_headers, entity_from_headers, split_multipart
from gateway.api.errors import ApiError
from gateway.as2_settings import As2Local, As2PartnerSettings
from gateway.db.models import Message, MessageEvent, OutboxItem
from gateway.domain import mdn
from gateway.domain.states import OUTBOUND, OutboundStatus
from gateway.transports.as2 import judge_mdn

log = logging.getLogger(__name__)


def is_mdn(headers: dict[str, str], body: bytes) -> bool:
    """Whether the request is an MDN (multipart/report, maybe inside multipart/signed)."""
    try:
        entity = entity_from_headers(as_headers(headers), body)
        media = entity.content_type.media_type
        if media == "multipart/signed":
            parts = split_multipart(entity.body, entity.content_type.param("boundary") or "")
            media = parts[0].content_type.media_type if parts else ""
    except as2.AS2Error:
        return False
    return media == "multipart/report"


async def receive_mdn(
    db: Any,
    clock: Any,
    partner_id: str,
    settings: As2PartnerSettings,
    local: As2Local,
    headers: dict[str, str],
    body: bytes,
) -> web.Response:
    try:
        report = as2.parse_mdn(headers, body, partner_certs=settings.loaded_certificates(), now=clock())
    except as2.MdnError as exc:
        raise ApiError(400, "bad_mdn", f"unreadable MDN: {exc.reason}") from None
    original = (report.original_message_id or "").strip().strip("<>")
    item_id, _, domain = original.partition("@")
    async with db.begin() as session:
        item = await session.get(OutboxItem, item_id) if domain == local.domain else None
        if item is None or item.partner_id != partner_id or item.message_id is None:
            log.warning(
                "AS2 MDN from %s for unknown message %s ignored", partner_id, report.original_message_id
            )
            return web.Response(status=200)
        sent = (
            (
                await session.execute(
                    select(MessageEvent.detail)
                    .where(MessageEvent.message_id == item.message_id, MessageEvent.state == "as2_sent")
                    .order_by(MessageEvent.id.desc())
                )
            )
            .scalars()
            .all()
        )
        mic_text = next(
            (d["mic"] for d in sent if d and d.get("message_id", "").strip("<>") == original), None
        )
        mic = as2.Mic(*[p.strip() for p in mic_text.split(",", 1)]) if mic_text else as2.Mic("", "sha256")
        now = clock()
        verdict = judge_mdn(headers, body, settings, mic, f"<{original}>", 200, 0.0, now)
        for state, detail in verdict.events:
            session.add(
                MessageEvent(
                    message_id=item.message_id, at=now, state=state, detail={**detail, "async": True}
                )
            )
        # Only an MDN the partner can be held to changes the message: an unverified
        # one (anyone can post to /as2) is recorded, nothing more.
        trusted = report.signature_verified is True or not settings.mdn_signed
        evidence = next((d for state, d in verdict.events if state == "mdn_received"), {})
        settled = mdn.after_async_mdn(verdict.outcome.value, trusted, verdict.detail, evidence)
        if settled is not None:
            values = mdn.columns(settled, now)
            await session.execute(update(OutboxItem).where(OutboxItem.id == item.id).values(**values))
        if verdict.outcome.value == "permanent" and not trusted:
            log.warning(
                "AS2 MDN for %s claiming to be from %s does not verify: recorded only", original, partner_id
            )
        elif verdict.outcome.value == "permanent":
            log.warning("AS2 MDN from %s refuses %s: %s", partner_id, original, verdict.detail)
            message = await session.get(Message, item.message_id)
            if (
                message is not None
                and message.direction == "out"
                and OUTBOUND.allowed(message.status, OutboundStatus.FAILED)
            ):
                message.status, message.updated_at, message.reason = (
                    OutboundStatus.FAILED,
                    now,
                    verdict.detail,
                )
    return web.Response(status=200)
