"""The partner mailbox (``[delivery] channel = "mailbox"``): partners fetch what we
send them, authenticated with their own partner key (as for posting).

``GET /partners/{id}/outbox?limit=N``
    ``{"items": [{"id", "kind", "interchange_control", "created_at", "size", "payload"}]}``:
    the partner's pending items, oldest first, X12 text inline.
``GET /partners/{id}/outbox/{item}``
    One item's exact bytes (``application/edi-x12``).
``DELETE /partners/{id}/outbox/{item}``
    Confirms the item was received: ``204``; it never shows again and an outbound
    document becomes ``sent``. Confirming again is ``204`` too.

Another partner's item id, a held or unknown item: ``404`` with the same answer,
so an item's existence is never revealed to anyone but its partner.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from gateway.api.errors import ApiError
from gateway.api.feed import page_limit, plausible_id
from gateway.api.keys import DATABASE, OVERRIDES
from gateway.api.partner_inbound import _authenticate
from gateway.db.models import OutboxItem
from gateway.delivery import mark_sent


def _not_found(item_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no item {item_id} in this mailbox")


async def list_outbox(request: web.Request) -> web.Response:
    partner_id = _authenticate(request)
    limit = page_limit(request)
    async with request.app[DATABASE].read() as conn:
        rows = (
            await conn.execute(
                select(OutboxItem)
                .where(
                    OutboxItem.partner_id == partner_id,
                    OutboxItem.channel == "mailbox",
                    OutboxItem.status == "pending",
                )
                .order_by(OutboxItem.id)
                .limit(limit)
            )
        ).all()
    items = [
        {
            "id": r.id,
            "kind": r.kind,
            "interchange_control": f"{r.interchange_control:09d}" if r.interchange_control else None,
            "created_at": r.created_at.isoformat(),
            "size": len(r.payload.encode()),
            "payload": r.payload,
        }
        for r in rows
    ]
    return web.json_response({"items": items})


async def _own_item(request: web.Request, partner_id: str, *, pending_only: bool) -> Any:
    item_id = request.match_info["item"]
    if not plausible_id(item_id):  # a NUL or a long id never reaches the database driver
        raise ApiError(404, "not_found", "no such item in this mailbox")
    async with request.app[DATABASE].read() as conn:
        item = (
            await conn.execute(
                select(OutboxItem).where(
                    OutboxItem.id == item_id,
                    OutboxItem.partner_id == partner_id,
                    OutboxItem.channel == "mailbox",
                )
            )
        ).one_or_none()
    visible = ("pending",) if pending_only else ("pending", "sent")
    if item is None or item.status not in visible:
        raise _not_found(item_id)
    return item


async def get_item(request: web.Request) -> web.Response:
    partner_id = _authenticate(request)
    item = await _own_item(request, partner_id, pending_only=True)
    return web.Response(body=item.payload.encode(), content_type="application/edi-x12")


async def delete_item(request: web.Request) -> web.Response:
    partner_id = _authenticate(request)
    item = await _own_item(request, partner_id, pending_only=False)
    if item.status == "pending":
        async with request.app[DATABASE].begin() as session:
            await mark_sent(session, item.id, request.app[OVERRIDES].clock(), via="mailbox")
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/partners/{partner_id}/outbox", list_outbox)
    app.router.add_get("/partners/{partner_id}/outbox/{item}", get_item)
    app.router.add_delete("/partners/{partner_id}/outbox/{item}", delete_item)
