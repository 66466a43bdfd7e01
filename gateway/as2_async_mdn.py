"""Asynchronous MDNs we owe partners (``Receipt-Delivery-Option``), sent with retries.

The receive route queues the MDN as an outbox item of kind ``MDN`` and channel
``as2-mdn`` (payload: the URL, headers and bytes as JSON; :func:`outbox_row`) in the
transaction that records the ``mdn_sent`` event, so it survives a restart. The ``as2-mdn`` schedule
(gateway.bootstrap, one instance at a time) POSTs due items: 2xx is ``sent``
(``mdn_delivered`` on the message), anything else is retried with the outbound
backoff until ``[outbound] max_attempts`` / ``max_age_hours``, then ``failed``: a dead
letter an operator can replay. The outbox sender never claims these items: they go
to the URL the partner named, whatever its delivery channel.

Only messages whose signature verified get an asynchronous MDN: the URL comes from
the partner, and an unauthenticated request must not make us POST anywhere.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import select

from gateway.db.ids import new_id
from gateway.db.models import MessageEvent, OutboxItem
from gateway.delivery import ASYNC_MDN
from gateway.domain.states import OUTBOX, OutboxStatus
from gateway.erp import truncate
from gateway.runner import Backoff

log = logging.getLogger(__name__)

CHANNEL = ASYNC_MDN
KIND = "MDN"
BATCH = 20


def usable_url(value: str | None) -> str | None:
    """The Receipt-Delivery-Option URL when it is one we POST to (http/https)."""
    if not value:
        return None
    url = value.split(",")[0].strip()
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def outbox_row(
    *,
    partner_id: str,
    message_id: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
) -> dict[str, Any]:
    """The outbox row of an MDN owed to ``url``; the caller inserts it in the
    transaction that records the ``mdn_sent`` event."""
    payload = json.dumps({"url": url, "headers": headers, "body": base64.b64encode(body).decode("ascii")})
    return {
        "id": new_id(),
        "partner_id": partner_id,
        "message_id": message_id,
        "kind": KIND,
        "channel": CHANNEL,
        "payload": payload,
        "interchange_control": None,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "sent_at": None,
        "locked_by": None,
    }


class AsyncMdnSender:
    def __init__(self, db: Any, clock: Any, backoff: Backoff, timeout_seconds: float = 60.0) -> None:
        self.db = db
        self.clock = clock
        self.backoff = backoff
        self.timeout = timeout_seconds
        self._http: aiohttp.ClientSession | None = None

    async def run(self) -> int:
        """Send every due MDN once; the number tried."""
        now = self.clock()
        async with self.db.read() as conn:
            due = (
                await conn.execute(
                    select(
                        OutboxItem.id,
                        OutboxItem.payload,
                        OutboxItem.attempts,
                        OutboxItem.created_at,
                        OutboxItem.message_id,
                    )
                    .where(
                        OutboxItem.channel == CHANNEL,
                        OutboxItem.status == OutboxStatus.PENDING,
                        OutboxItem.next_attempt_at <= now,
                    )
                    .order_by(OutboxItem.id)
                    .limit(BATCH)
                )
            ).all()
        for item_id, payload, attempts, created_at, message_id in due:
            error = await self._post(json.loads(payload))
            await self._record(item_id, message_id, attempts + 1, created_at, error)
        return len(due)

    async def _post(self, item: dict[str, Any]) -> str | None:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        try:
            async with self._http.post(
                item["url"],
                data=base64.b64decode(item["body"]),
                headers=item["headers"],
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                if 200 <= resp.status < 300:
                    return None
                return f"HTTP {resp.status}: {truncate(await resp.text(errors='replace'))}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"

    async def _record(
        self, item_id: str, message_id: str | None, attempts: int, created_at: datetime, error: str | None
    ) -> None:
        now = self.clock()
        async with self.db.begin() as session:
            item = await session.get(OutboxItem, item_id)
            if item is None or item.status != OutboxStatus.PENDING:
                return
            item.attempts = attempts
            if error is None:
                OUTBOX.check(item.status, OutboxStatus.SENT, item_id)
                item.status, item.sent_at, item.last_error = OutboxStatus.SENT, now, None
                state, detail = "mdn_delivered", {"outbox_id": item_id}
            elif self.backoff.gives_up(attempts, created_at, now):
                OUTBOX.check(item.status, OutboxStatus.FAILED, item_id)
                item.status, item.last_error = OutboxStatus.FAILED, truncate(error)
                state, detail = "mdn_delivery_failed", {"outbox_id": item_id, "reason": truncate(error)}
                log.warning("asynchronous MDN %s dead-lettered: %s", item_id, error)
            else:
                item.next_attempt_at = now + timedelta(seconds=self.backoff.delay(attempts))
                item.last_error = truncate(error)
                return
            if message_id is not None:
                session.add(MessageEvent(message_id=message_id, at=now, state=state, detail=detail))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
