"""Operations: reloading partner profiles without a restart.

``POST /api/v1/partners/reload`` (internal token) and SIGHUP both call
:func:`reload_partners`: the whole partners directory is read and checked again;
only a directory without a single problem replaces the one in use (``200
{"partners": [ids]}``). Otherwise the running profiles stay as they were and the
endpoint answers ``422 {"error": {"code": "invalid_profiles", "details": [lines]}}``
(SIGHUP logs the lines). A reload never drops a request: handlers read the
current directory once per request.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.api.internal import require_token
from gateway.api.keys import GATEWAY
from gateway.bootstrap import ReloadFailed

log = logging.getLogger(__name__)


async def post_reload(request: web.Request) -> web.Response:
    require_token(request)
    try:
        ids = await request.app[GATEWAY].reload_partners()
    except ReloadFailed as exc:
        raise ApiError(
            422,
            "invalid_profiles",
            "the partner profiles have problems; the previous ones stay in use",
            details=exc.errors,
        ) from None
    return web.json_response({"partners": ids})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/partners/reload", post_reload)
