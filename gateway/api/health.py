"""Liveness and readiness probes.

``GET /healthz``: the process answers (no dependency is touched, so a slow
database never gets the process restarted). ``GET /readyz``: the database answers
and the partner profiles are loaded; 503 otherwise, so a load balancer stops sending
partners here. Neither needs authentication nor reveals configuration.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from gateway.app import DATABASE, PARTNERS

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(request.app[DATABASE].ping(), timeout=5)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say what, not how
        log.warning("readiness: database check failed: %s", exc)
        checks["database"] = "unavailable"
    checks["partners"] = "ok" if request.app[PARTNERS].current is not None else "not loaded"
    ready = all(value == "ok" for value in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
