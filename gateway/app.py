"""The HTTP entry point: :func:`build_app` puts an aiohttp application in front of
the parts :mod:`gateway.bootstrap` builds (the one composition root).

One ``cleanup_ctx`` runs :func:`gateway.bootstrap.running` for the life of the app
and publishes its parts under the typed ``web.AppKey`` constants of
:mod:`gateway.api.keys`; route modules read them from there. Importing this module
opens nothing and registers nothing. Tests call ``build_app`` too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway import bootstrap, console, openapi
from gateway.api import (
    admin,
    as2_inbound,
    feed,
    health,
    internal,
    mailbox,
    messages,
    metrics_routes,
    orders,
    partner_inbound,
)
from gateway.api.errors import error_middleware
from gateway.api.keys import (
    BLOBS,
    DATABASE,
    DELIVERY,
    GATEWAY,
    INTAKE,
    METRICS,
    OVERRIDES,
    PARTNERS,
    PIPELINE,
    RAWSTORE,
    SETTINGS,
)
from gateway.bootstrap import Overrides, PartnersHolder, load_partner_directory
from gateway.config import Settings
from gateway.metrics import Metrics

__all__ = [
    "BLOBS",
    "DATABASE",
    "DELIVERY",
    "GATEWAY",
    "INTAKE",
    "OVERRIDES",
    "PARTNERS",
    "PIPELINE",
    "RAWSTORE",
    "SETTINGS",
    "Overrides",
    "PartnersHolder",
    "build_app",
    "load_partner_directory",
]


def build_app(
    settings: Settings, *, overrides: Overrides | None = None, sighup: bool = True
) -> web.Application:
    largest = max(settings.limits.max_edi_bytes, settings.limits.max_json_bytes)
    app = web.Application(middlewares=[error_middleware], client_max_size=largest)
    app[SETTINGS] = settings
    app[OVERRIDES] = overrides or Overrides()
    app[PARTNERS] = PartnersHolder()
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_gateway)
    app.cleanup_ctx.append(internal.token_ctx)
    if sighup:
        app.cleanup_ctx.append(internal.sighup_ctx)
    health.add_routes(app)
    partner_inbound.add_routes(app)
    as2_inbound.add_routes(app)
    internal.add_routes(app)
    feed.add_routes(app)
    messages.add_routes(app)
    mailbox.add_routes(app)
    admin.add_routes(app)
    metrics_routes.add_routes(app)
    orders.add_routes(app)
    openapi.add_routes(app)
    console.add_routes(app)
    return app


async def _gateway(app: web.Application) -> AsyncIterator[None]:
    async with bootstrap.running(
        app[SETTINGS], app[OVERRIDES], role="serve", partners=app[PARTNERS], metrics=app[METRICS]
    ) as gw:
        app[GATEWAY] = gw
        app[DATABASE] = gw.db
        app[RAWSTORE] = gw.rawstore
        app[BLOBS] = gw.blobs
        app[PIPELINE] = gw.pipeline
        app[DELIVERY] = gw.sender
        assert gw.intake is not None
        app[INTAKE] = gw.intake
        yield
