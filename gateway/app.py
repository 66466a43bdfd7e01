"""The composition root: :func:`build_app` wires settings, storage, partners,
intake and pipeline into one aiohttp application.

Every resource is opened and closed in a ``cleanup_ctx`` generator, in order:
database (schema checked, see gateway.db.schema) -> raw store -> partners ->
pipeline -> intake; closing runs backwards, so the intake commits what it holds
before the pipeline and the database go away. Shared objects are reached through
the typed ``web.AppKey`` constants below; route modules import them from here and
are themselves imported inside :func:`build_app`, so importing this module opens
nothing and registers nothing.

Nothing else in the gateway builds these objects: tests call ``build_app`` too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.api.errors import error_middleware
from gateway.config import Settings
from gateway.db.engine import Database, open_database
from gateway.db.models import utcnow
from gateway.db.schema import prepare_schema
from gateway.intake import Intake
from gateway.pipeline import Pipeline
from gateway.ports import ErpSink
from gateway.rawstore import RawStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PartnersHolder:
    """The loaded partner directory, replaceable at runtime (a reload swaps ``current``)."""

    current: Any = None  # gateway.partners.PartnerDirectory once loaded
    error: str | None = None

    def __call__(self) -> Any:
        return self.current


@dataclass(slots=True)
class Overrides:
    """Test and embedding seams: a different ERP sink, clock or partners loader."""

    sink: ErpSink | None = None
    clock: Callable[[], datetime] = utcnow
    load_partners: Callable[[Settings], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
RAWSTORE = web.AppKey("rawstore", RawStore)
PARTNERS = web.AppKey("partners", PartnersHolder)
INTAKE = web.AppKey("intake", Intake)
PIPELINE = web.AppKey("pipeline", Pipeline)
OVERRIDES = web.AppKey("overrides", Overrides)


def build_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    from gateway.api import health, partner_inbound

    largest = max(settings.limits.max_edi_bytes, settings.limits.max_json_bytes)
    app = web.Application(middlewares=[error_middleware], client_max_size=largest)
    app[SETTINGS] = settings
    app[OVERRIDES] = overrides or Overrides()
    app[PARTNERS] = PartnersHolder()
    app.cleanup_ctx.append(_data_dir)  # first: nothing opens before the data dir is ours
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_rawstore)
    app.cleanup_ctx.append(_partners)
    app.cleanup_ctx.append(_pipeline)
    app.cleanup_ctx.append(_intake)
    app.cleanup_ctx.append(_retention)  # last: stops first
    health.add_routes(app)
    partner_inbound.add_routes(app)
    # Part 2 (ERP forwarding, outbound, mailbox, messages API, metrics, reload, OpenAPI).
    from gateway.api.internal import setup_internal_api

    setup_internal_api(app)
    return app


async def _data_dir(app: web.Application) -> AsyncIterator[None]:
    """The data dir, made private, and on SQLite its lock (gateway.retention.DataDirLock)
    for the life of the app: a second process exits 2 with one line instead of taking
    over the first one's jobs."""
    import sys

    from gateway.retention import DataDirLock, DataDirLocked

    try:
        lock = DataDirLock.acquire(app[SETTINGS])
    except DataDirLocked as exc:
        print(f"gateway: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    with lock:
        yield


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.effective_database_url)
    try:
        log.info("%s", await prepare_schema(db))
    except BaseException:
        await db.close()
        raise
    app[DATABASE] = db
    yield
    await db.close()


async def _rawstore(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = RawStore(settings.raw_dir, use_syncfs=settings.storage.raw_sync == "syncfs")
    store.open_store()
    app[RAWSTORE] = store
    yield
    store.close()


async def _partners(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    holder = app[PARTNERS]
    loader = app[OVERRIDES].load_partners or load_partner_directory
    holder.current = loader(settings)
    log.info("loaded %d partner profile(s) from %s", len(holder.current), settings.partners_dir)
    yield


def load_partner_directory(settings: Settings) -> Any:
    """The partners under ``settings.partners_dir``; a missing directory means no
    partners yet (a fresh install), any other problem stops the start."""
    from gateway.partners import PartnerDirectory, load_partners
    from translators.profile import OurIdentity

    if not settings.partners_dir.exists():
        log.warning("partners directory %s does not exist: no partner can connect", settings.partners_dir)
        return PartnerDirectory()
    identity = OurIdentity.model_validate(settings.identity.model_dump(exclude={"check_receiver"}))
    directory = load_partners(settings.partners_dir, identity=identity)
    if not settings.identity.check_receiver:
        directory.receivers = None
    return directory


async def _pipeline(app: web.Application) -> AsyncIterator[None]:
    from gateway import erp, metrics

    settings = app[SETTINGS]
    overrides = app[OVERRIDES]
    sink = overrides.sink or erp.build_sink(
        settings.erp, app[DATABASE], metrics=metrics.of(app), clock=overrides.clock
    )
    pool = None
    if settings.pipeline.translate_processes and settings.pipeline.workers:
        from gateway.translate_pool import TranslatePool

        pool = TranslatePool(settings.pipeline.translate_processes, settings.raw_dir)
    pipeline = Pipeline(
        app[DATABASE],
        app[RAWSTORE],
        partners=app[PARTNERS],
        sink=sink,
        settings=settings.pipeline,
        identity=settings.identity,
        clock=overrides.clock,
        translate_pool=pool,
    )
    app[PIPELINE] = pipeline
    await pipeline.start()
    yield
    await pipeline.stop()
    if pool is not None:
        await asyncio.to_thread(pool.close)
    await sink.close()


async def _intake(app: web.Application) -> AsyncIterator[None]:
    pipeline = app[PIPELINE]
    intake = Intake(
        app[DATABASE],
        app[RAWSTORE],
        max_batch=app[SETTINGS].storage.max_batch,
        clock=app[OVERRIDES].clock,
        on_enqueued=pipeline.wake,
    )
    app[INTAKE] = intake
    await intake.start()
    yield
    await intake.stop()


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """The periodic prune (gateway.retention), unless ``storage.prune_interval_minutes`` is 0."""
    import contextlib

    from gateway.retention import run_periodically

    settings = app[SETTINGS]
    task = None
    if settings.storage.prune_interval_minutes > 0:
        task = asyncio.create_task(
            run_periodically(
                app[DATABASE], app[RAWSTORE], settings, partners=app[PARTNERS], clock=app[OVERRIDES].clock
            ),
            name="gateway-prune",
        )
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
