"""The composition root: the one place that builds and wires the gateway's parts.

:func:`running` opens, in order, the data dir (and on SQLite its lock), the
database (schema checked), the raw store, the partner profiles, this process's
instance and heartbeat, the ERP sink and partner transports, the pipeline, the
outbox sender, the intake (``serve`` only) and the scheduler (retention, the
overdue-ack check); it closes them backwards, so the intake commits what it holds
before the pipeline and the database go away.

Three entry points use it and nothing else builds these objects:

- ``gateway serve`` (gateway.app wraps it in an aiohttp app: HTTP in front);
- ``gateway worker`` (:func:`run_worker`): the same runner, transports and
  schedules without HTTP: what a second instance on PostgreSQL runs;
- tests, through either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway import heap, orders
from gateway.blobs import Blobs
from gateway.config import Settings
from gateway.db import jobs
from gateway.db.engine import Database, open_database
from gateway.db.models import utcnow
from gateway.db.schema import prepare_schema
from gateway.delivery import OutboxSender
from gateway.intake import Intake
from gateway.metrics import Metrics
from gateway.pipeline import Pipeline
from gateway.ports import ErpSink, PartnerTransport
from gateway.raw_journal import RawJournal
from gateway.rawstore import RawStore
from gateway.runner import Instance, Scheduler, Task

log = logging.getLogger(__name__)
ORDER_CHECK_SECONDS = 300.0  # time-based order exceptions (gateway.orders.check_orders)


@dataclass(slots=True)
class PartnersHolder:
    """The loaded partner directory, replaceable at runtime (a reload swaps ``current``)."""

    current: Any = None  # gateway.partners.PartnerDirectory once loaded
    error: str | None = None

    def __call__(self) -> Any:
        return self.current


@dataclass(slots=True)
class Overrides:
    """Test and embedding seams: a different ERP sink, clock, partners loader or
    partner transports (keyed by channel)."""

    sink: ErpSink | None = None
    clock: Callable[[], datetime] = utcnow
    load_partners: Callable[[Settings], Any] | None = None
    transports: dict[str, PartnerTransport] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class ReloadFailed(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(slots=True)
class Gateway:
    """The running parts of one process."""

    settings: Settings
    overrides: Overrides
    role: str
    partners: PartnersHolder
    metrics: Metrics
    db: Database = field(init=False)
    rawstore: RawStore = field(init=False)
    raw_journal: RawJournal = field(init=False)
    blobs: Blobs = field(init=False)  # the BlobStore port: rows and files (gateway.blobs)
    instance: Instance = field(init=False)
    sink: ErpSink = field(init=False)
    transports: dict[str, PartnerTransport] = field(init=False)
    pipeline: Pipeline = field(init=False)
    sender: OutboxSender = field(init=False)
    scheduler: Scheduler = field(init=False)
    intake: Intake | None = None
    as2: Any = None  # gateway.as2_settings.As2Local: our AS2 name and keys, None without [as2]
    as2_mdn: Any = None  # gateway.as2_async_mdn.AsyncMdnSender when [as2] is set
    as2_pool: Any = None  # gateway.as2_pool.As2Pool: [as2] receive_processes (serve)
    sftp_server: Any = None  # gateway.transports.sftp_process.DropBoxProcess when [sftp] is set (serve)
    sftp_poller: Any = None  # gateway.transports.sftp_poll.Poller (serve)
    alerts: Any = None  # gateway.alerts.Alerts: the [[alerts]] webhooks

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.overrides.clock

    async def reload_partners(self) -> list[str]:
        """Load the profiles again; on success swap them in and return the partner ids.
        A refusal keeps the profiles in use and is kept for /readyz and /metrics."""
        from gateway.partners import PartnersError

        loader = self.overrides.load_partners or load_partner_directory
        try:
            fresh = await asyncio.to_thread(loader, self.settings)
        except PartnersError as exc:
            self.partners.error = "\n".join(exc.errors)
            log.error("partner reload refused, keeping the profiles in use:\n  %s", "\n  ".join(exc.errors))
            raise ReloadFailed(exc.errors) from None
        self.partners.current, self.partners.error = fresh, None
        self.sender.wake()
        from gateway.transports.sftp_poll import follow_profiles

        follow_profiles(self)
        if self.sftp_server is not None:
            await self.sftp_server.partners_changed()  # its process logs partners in by them
        ids = sorted(p.id for p in fresh)
        log.info("reloaded %d partner profile(s)", len(ids))
        return ids


def load_partner_directory(settings: Settings, *, allow_empty: bool = False) -> Any:
    """The partners under ``settings.partners_dir``. A missing or empty directory is a
    :class:`~gateway.partners.PartnersError` (a service started in the wrong directory
    must not run on a new empty database) unless ``allow_empty`` (``--allow-empty``);
    any problem in a profile stops the start."""
    from gateway.partners import PartnerDirectory, PartnersError, load_partners

    missing = partners_missing(settings)
    if missing and not allow_empty:
        raise PartnersError([missing])
    if not settings.partners_dir.exists():
        log.warning("partners directory %s does not exist: no partner can connect", settings.partners_dir)
        return PartnerDirectory()
    directory = load_partners(settings.partners_dir, identity=settings.identity.ours)
    if not settings.identity.check_receiver:
        directory.receivers = None
    return directory


def partners_missing(settings: Settings) -> str | None:
    """Why ``partners_dir`` holds no partner at all (None: it has partner folders)."""
    folder = settings.partners_dir
    if not folder.is_dir():
        return f"partners directory {folder.resolve()} does not exist"
    if not any(p.is_dir() and not p.name.startswith((".", "_")) for p in folder.iterdir()):
        return f"partners directory {folder.resolve()} has no partner folders"
    return None


def default_transports(
    clock: Callable[[], datetime],
    settings: Settings | None = None,
    metrics: Metrics | None = None,
    *,
    as2: Any = None,
) -> dict[str, PartnerTransport]:
    from gateway.transports.as2 import As2Transport
    from gateway.transports.mailbox import MailboxTransport
    from gateway.transports.rest import RestTransport
    from gateway.transports.sftp import SftpTransport

    sftp_root = (settings.data_dir if settings is not None else Path("var")) / "sftp"
    return {
        "rest": RestTransport(clock),
        "mailbox": MailboxTransport(),
        "sftp": SftpTransport(clock, sftp_root, metrics),
        "as2": As2Transport(clock, as2),
    }


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    overrides: Overrides | None = None,
    *,
    role: str = "serve",
    partners: PartnersHolder | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[Gateway]:
    """Open every part in order, yield the running :class:`Gateway`, close backwards."""
    from gateway import erp, reconcile, retention

    overrides = overrides or Overrides()
    gw = Gateway(settings, overrides, role, partners or PartnersHolder(), metrics or Metrics())
    clock = overrides.clock
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(_data_dir_lock(settings))

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        gw.db = open_database(settings.effective_database_url)
        stack.push_async_callback(gw.db.close)
        log.info("%s", await prepare_schema(gw.db))

        gw.rawstore = RawStore(settings.raw_dir, use_syncfs=settings.storage.raw_sync == "syncfs")
        gw.rawstore.open_store()
        stack.callback(gw.rawstore.close)
        # Journal rows from before migration 0014 a crash left: replayed to their files
        # before anything reads them. Small payloads since are kept rows (decision 0025).
        gw.raw_journal = RawJournal(gw.db, gw.rawstore)
        await gw.raw_journal.recover()
        gw.blobs = Blobs(gw.db, gw.rawstore)

        loader = overrides.load_partners or load_partner_directory
        gw.partners.current = loader(settings)
        log.info("loaded %d partner profile(s) from %s", len(gw.partners.current), settings.partners_dir)

        gw.instance = Instance(
            gw.db,
            clock,
            role=role,
            heartbeat_seconds=settings.pipeline.heartbeat_seconds,
            lease_seconds=max(settings.pipeline.lease_seconds, 3 * settings.pipeline.heartbeat_seconds),
            dead_after_seconds=settings.pipeline.instance_dead_seconds,
        )
        if gw.db.is_sqlite:
            # One process per SQLite file (the data-dir lock): whatever ran died with the last one.
            async with gw.db.write() as conn:
                released = await jobs.release_all_running(conn, now=clock())
                from gateway.runner import release_instances

                await release_instances(conn, await _all_instances(conn), now=clock())
            if released:
                log.info("resumed %d job(s) interrupted by the previous run", released)
        await gw.instance.start()
        stack.push_async_callback(gw.instance.stop)

        gw.sink = overrides.sink or erp.build_sink(settings.erp, gw.db, metrics=gw.metrics, clock=clock)
        stack.push_async_callback(gw.sink.close)
        gw.as2 = _load_as2(settings, gw.partners.current)
        gw.transports = {
            **default_transports(clock, settings, gw.metrics, as2=gw.as2),
            **overrides.transports,
        }
        for transport in gw.transports.values():
            stack.push_async_callback(transport.close)

        pool = None
        if settings.pipeline.translate_processes and settings.pipeline.workers:
            from gateway.translate_pool import TranslatePool

            pool = TranslatePool(settings.pipeline.translate_processes, settings.raw_dir)
            stack.push_async_callback(asyncio.to_thread, pool.close)
        gw.pipeline = Pipeline(
            gw.db,
            gw.blobs,
            partners=gw.partners,
            sink=gw.sink,
            settings=settings.pipeline,
            identity=settings.identity,
            clock=clock,
            translate_pool=pool,
            worker_id=gw.instance.id,
        )
        await gw.pipeline.start()
        stack.push_async_callback(gw.pipeline.stop)
        if not gw.db.is_sqlite and settings.pipeline.workers:
            # Woken by other processes' intake commits (LISTEN/NOTIFY), not only by the poll.
            from gateway.db.notify import JobsListener

            listener = JobsListener(gw.db.engine.url, gw.pipeline.wake)
            await listener.start()
            stack.push_async_callback(listener.stop)

        gw.sender = OutboxSender(
            gw.db,
            gw.partners,
            settings.outbound,
            gw.transports,
            metrics=gw.metrics,
            clock=clock,
            worker_id=gw.instance.id,
        )
        await gw.sender.start()
        stack.push_async_callback(gw.sender.stop)

        if role == "serve":
            gw.intake = Intake(
                gw.db,
                gw.rawstore,
                max_batch=settings.storage.max_batch,
                clock=clock,
                on_enqueued=gw.pipeline.wake,
                handoff=gw.pipeline.handoff,  # steady state: no claim (gateway.handoff)
                journal=gw.raw_journal,  # small payloads kept as rows (decisions 0018, 0025)
            )
            await gw.intake.start()
            stack.push_async_callback(gw.intake.stop)
            if gw.as2 is not None and settings.as2 is not None and settings.as2.receive_processes:
                from gateway.as2_pool import As2Pool

                gw.as2_pool = As2Pool(settings.as2.receive_processes, gw.as2)
                stack.callback(gw.as2_pool.close)
            if settings.sftp is not None:
                from gateway.transports.sftp_process import drop_box_for

                gw.sftp_server = drop_box_for(gw)
                await gw.sftp_server.start()
                stack.push_async_callback(gw.sftp_server.aclose)

        gw.scheduler = Scheduler(gw.db, gw.instance, clock)
        if settings.storage.prune_interval_minutes > 0:

            async def prune() -> None:
                await retention.prune_and_log(
                    gw.db, gw.rawstore, settings, partners=gw.partners(), now=clock()
                )

            gw.scheduler.add(
                Task(
                    "retention",
                    settings.storage.prune_interval_minutes * 60,
                    prune,
                    first_delay=min(
                        settings.storage.prune_interval_minutes * 60, retention.FIRST_RUN_SECONDS
                    ),
                )
            )

        if gw.as2 is not None:
            from gateway.as2_async_mdn import AsyncMdnSender

            gw.as2_mdn = AsyncMdnSender(gw.db, clock, gw.sender.backoff)
            stack.push_async_callback(gw.as2_mdn.close)
            gw.scheduler.add(Task("as2-mdn", settings.outbound.poll_seconds * 5, gw.as2_mdn.run))

        async def overdue() -> None:
            late = await reconcile.mark_overdue(gw.db, gw.partners, now=clock())
            if late:
                log.warning("%d outbound message(s) have overdue acknowledgments", len(late))

        gw.scheduler.add(
            Task(
                "overdue-acks",
                settings.outbound.overdue_check_seconds,
                overdue,
                first_delay=settings.outbound.overdue_check_seconds,
            )
        )

        async def order_check() -> None:
            await orders.check_orders(gw.db, gw.partners, now=clock())

        gw.scheduler.add(
            Task("order-check", ORDER_CHECK_SECONDS, order_check, first_delay=ORDER_CHECK_SECONDS)
        )

        _add_alerts(gw, stack)

        from gateway.transports.sftp_poll import follow_profiles

        follow_profiles(gw)
        await gw.scheduler.start()
        stack.push_async_callback(gw.scheduler.stop)
        yield gw
    log.info("gateway %s stopped", role)


def _add_alerts(gw: Gateway, stack: contextlib.AsyncExitStack) -> None:
    """The [[alerts]] webhooks: a watch for dead letters, certificates and silent
    partners, and the sender (which also marks events dispatched when none is set)."""
    from gateway.alerts import Alerts, build_targets

    rules = gw.settings.alerting
    gw.alerts = Alerts(
        gw.db,
        build_targets(gw.settings.alerts),
        rules,
        clock=gw.clock,
        partners=gw.partners,
        as2=gw.as2,
    )
    stack.push_async_callback(gw.alerts.close)
    gw.scheduler.add(Task("alerts-send", rules.send_seconds, gw.alerts.run))
    if gw.settings.alerts:
        gw.scheduler.add(
            Task("alerts-watch", rules.watch_seconds, gw.alerts.watch, first_delay=rules.watch_seconds)
        )


def _load_as2(settings: Settings, partners: Any) -> Any:
    """Our AS2 keys, loaded once at start (a bad key file stops the start); a warning
    for every certificate, ours or a partner's, with less than 30 days left."""
    from gateway.as2_settings import EXPIRY_WARNING_DAYS, As2ConfigError, certificate_expiry, load_local
    from gateway.config import ConfigError

    try:
        local = load_local(settings.as2)
    except As2ConfigError as exc:
        raise ConfigError("; ".join(exc.errors)) from None
    if local is None and partners is not None and any(e.transport.as2 for e in partners.entries.values()):
        log.warning("partner profiles have [as2] tables but the gateway settings have no [as2]: AS2 is off")
    for owner, subject, days in certificate_expiry(local, partners):
        if days < EXPIRY_WARNING_DAYS:
            log.warning(
                "AS2 certificate %s (%s) %s",
                subject,
                owner,
                "has expired" if days < 0 else f"expires in {days} day(s)",
            )
    return local


async def _all_instances(conn: Any) -> list[str]:
    from sqlalchemy import select

    from gateway.db.models import Instance as InstanceRow

    return list((await conn.execute(select(InstanceRow.id))).scalars().all())


@contextlib.contextmanager
def _data_dir_lock(settings: Settings) -> Any:
    """The data dir, made private, and on SQLite its lock (gateway.retention.DataDirLock)
    for the life of the process: a second process exits 2 with one line instead of
    taking over the first one's jobs."""
    from gateway.retention import DataDirLock, DataDirLocked

    try:
        lock = DataDirLock.acquire(settings)
    except DataDirLocked as exc:
        print(f"gateway: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    with lock:
        yield


async def run_worker(settings: Settings, overrides: Overrides | None = None) -> None:
    """``gateway worker``: the runner, transports and schedules without HTTP, until
    SIGTERM or SIGINT. SIGHUP reloads the partner profiles."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    async with running(settings, overrides, role="worker") as gw:
        heap.settle()  # built: what it holds for life leaves the collector's walks
        reloads: set[asyncio.Task[Any]] = set()

        def on_sighup() -> None:
            task = asyncio.ensure_future(_reload_quietly(gw))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        for signum, handler in (
            (signal.SIGTERM, stop.set),
            (signal.SIGINT, stop.set),
            (signal.SIGHUP, on_sighup),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, handler)
        print(
            f"gateway worker {gw.instance.id}: data in {settings.data_dir.resolve()}, partners from {settings.partners_dir.resolve()}",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
        log.info("gateway worker %s stopping", gw.instance.id)


async def _reload_quietly(gw: Gateway) -> None:
    with contextlib.suppress(ReloadFailed):
        await gw.reload_partners()
