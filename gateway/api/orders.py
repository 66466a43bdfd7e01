"""The orders API (internal token): an order's chain of documents, its state and
its exceptions (gateway.orders; the shapes are in docs/orders.md).

``GET /api/v1/orders/{partner_id}/{po_number}``
    ``{"partner_id", "po_number", "state", "lines", "documents", "acknowledgments",
    "exceptions"}``; ``404 not_found`` when no document names that PO for that partner.
``GET /api/v1/orders``
    Filters ``partner_id``, ``state``, ``since`` (updated at or after, ISO 8601);
    oldest first, ``limit`` and ``cursor``: ``{"items": [...], "next": cursor}``.
``GET /api/v1/exceptions``
    Filters ``partner_id``, ``kind``, ``open`` (``true`` by default; ``false``: all),
    ``since``; paged like the orders.
"""

from __future__ import annotations

from aiohttp import web

from gateway import orders
from gateway.api.errors import ApiError
from gateway.api.feed import page_limit
from gateway.api.internal import require_token
from gateway.api.keys import DATABASE, OVERRIDES, PARTNERS
from gateway.api.messages import _time
from gateway.domain.orders import EXCEPTION_KINDS, STATES


async def get_order(request: web.Request) -> web.Response:
    require_token(request)
    partner_id, po = request.match_info["partner_id"], request.match_info["po_number"]
    policy = orders.policy_of(request.app[PARTNERS].current, partner_id)
    async with request.app[DATABASE].read() as conn:
        view = await orders.order_view(
            conn, partner_id, po, now=request.app[OVERRIDES].clock(), policy=policy
        )
    if view is None:
        raise ApiError(404, "not_found", f"no order {po!r} of partner {partner_id!r}")
    return web.json_response(view)


async def get_orders(request: web.Request) -> web.Response:
    require_token(request)
    limit = page_limit(request, 50)
    state = request.query.get("state")
    if state is not None and state not in STATES:
        raise ApiError(400, "bad_request", "state is one of " + ", ".join(STATES))
    async with request.app[DATABASE].read() as conn:
        page = await orders.list_orders(
            conn,
            partner_id=request.query.get("partner_id"),
            state=state,
            since=_time(request, "since"),
            cursor=request.query.get("cursor"),
            limit=limit,
        )
    return web.json_response(page)


async def get_exceptions(request: web.Request) -> web.Response:
    require_token(request)
    limit = page_limit(request, 50)
    kind = request.query.get("kind")
    if kind is not None and kind not in EXCEPTION_KINDS:
        raise ApiError(400, "bad_request", "kind is one of " + ", ".join(EXCEPTION_KINDS))
    open_text = request.query.get("open", "true")
    if open_text not in ("true", "false"):
        raise ApiError(400, "bad_request", "open is true or false")
    async with request.app[DATABASE].read() as conn:
        page = await orders.list_exceptions(
            conn,
            partner_id=request.query.get("partner_id"),
            kind=kind,
            open_only=open_text == "true",
            since=_time(request, "since"),
            cursor=request.query.get("cursor"),
            limit=limit,
        )
    return web.json_response(page)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/orders", get_orders)
    app.router.add_get("/api/v1/orders/{partner_id}/{po_number}", get_order)
    app.router.add_get("/api/v1/exceptions", get_exceptions)
