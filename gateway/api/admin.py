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

import asyncio
import logging

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.api.internal import require_token
from gateway.app import OVERRIDES, PARTNERS, SETTINGS, load_partner_directory

log = logging.getLogger(__name__)


class ReloadFailed(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


async def reload_partners(app: web.Application) -> list[str]:
    """Load the directory again; on success swap it in and return the partner ids."""
    from gateway.partners import PartnersError

    loader = app[OVERRIDES].load_partners or load_partner_directory
    holder = app[PARTNERS]
    try:
        fresh = await asyncio.to_thread(loader, app[SETTINGS])
    except PartnersError as exc:
        holder.error = "\n".join(exc.errors)
        log.error("partner reload refused, keeping the profiles in use:\n  %s", "\n  ".join(exc.errors))
        raise ReloadFailed(exc.errors) from None
    holder.current, holder.error = fresh, None
    ids = sorted(p.id for p in fresh)
    log.info("reloaded %d partner profile(s)", len(ids))
    return ids


async def post_reload(request: web.Request) -> web.Response:
    require_token(request)
    try:
        ids = await reload_partners(request.app)
    except ReloadFailed as exc:
        raise ApiError(
            422, "invalid_profiles", "the partner profiles have problems; the previous ones stay in use",
            details=exc.errors,
        ) from None
    return web.json_response({"partners": ids})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/partners/reload", post_reload)
