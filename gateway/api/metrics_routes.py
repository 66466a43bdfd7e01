"""``GET /metrics``: the Prometheus text of gateway.metrics, behind the internal token
(label values name partners: not for the open internet)."""

from __future__ import annotations

from aiohttp import web

from gateway.api.internal import require_token
from gateway.api.keys import DATABASE, GATEWAY, INTAKE, METRICS, PARTNERS
from gateway.as2_settings import certificate_expiry
from gateway.metrics import CONTENT_TYPE, render


async def metrics_handler(request: web.Request) -> web.Response:
    require_token(request)
    reload_failed = request.app[PARTNERS].error is not None
    certificates = certificate_expiry(request.app[GATEWAY].as2, request.app[PARTNERS].current)
    text = await render(
        request.app[DATABASE],
        request.app[METRICS],
        partner_reload_failed=reload_failed,
        certificates=certificates,
        intake=(intake.batches, intake.accepted) if (intake := request.app.get(INTAKE)) is not None else None,
        now=request.app[GATEWAY].clock(),
    )
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics_handler)
