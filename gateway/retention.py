"""Retention (``gateway prune`` and the service's periodic prune) and the data
directory: its permissions and the lock that keeps one process per SQLite data dir.

What a prune deletes, in this order:

1. Raw payload files. A file goes once *every* message referring to it (payloads are
   content-addressed: several messages may share one) is *settled* and was last
   changed more than ``storage.raw_retention_days`` ago, and the file itself was
   last written (or received again) before then. A file no message refers to (a
   crash between writing it and committing its message) goes by its age alone. When
   ``message_retention_days`` is shorter, it applies here too, so no file outlives
   its messages. A message whose payload went stays (``/raw`` answers 410, replay is
   refused) until message retention removes it. Small payloads kept as database
   rows (decision 0025) go by the same rule, aged by their messages: each row was
   committed with its message, so a row no message refers to any more (message
   retention removed them) goes at once. A row is deleted by its id, never by its
   hash: a message accepted again meanwhile brought a row of its own.
2. With ``storage.message_retention_days`` set: settled messages last changed more
   than that many days ago, with their delivery attempts, events, jobs, outbox
   items and documents (children first), a batch per transaction sized to stay
   short, so one prune never holds SQLite's write lock for long.
3. Then ``interchanges_seen`` rows older than both that and the longest duplicate
   window (``pipeline.duplicate_window_days`` and every profile's
   ``x12.duplicate_window_days``), so duplicate detection is unchanged.
4. With ``storage.order_retention_days`` set: finished orders, closed exceptions
   and sent alerts older than that (gateway.order_retention).
5. Uploads the SFTP drop box set aside unconfirmed (``<data_dir>/sftp/<partner>/.unconfirmed``,
   files no message refers to) moved there longer ago than the raw files' retention
   (gateway.transports.sftp_marks.prune_unconfirmed).

*Settled* means: in a final state (inbound: :data:`gateway.domain.states.INBOUND` final states;
outbound: :data:`OUTBOUND_FINAL`, plus ``sent`` for partners whose profile expects
no functional acknowledgment), no document still waiting for delivery (every one
in :data:`SETTLED_DOCUMENTS`), no outbox item not yet sent (:data:`UNSENT_OUTBOX`:
a failed one is a dead letter, kept for an operator) and no job queued or running.
Without loaded partner profiles (the CLI with a broken partners directory) outbound
``sent`` messages and ``interchanges_seen`` are kept.

Several pruners at once (PostgreSQL deployments, one prune per process) are safe:
each transaction re-checks its messages under a row lock, and a raw file is removed
by :meth:`gateway.rawstore.RawStore.remove_unused`, which keeps a payload received
again meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, true, tuple_
from sqlalchemy.engine import make_url

from gateway import order_retention
from gateway.config import Settings
from gateway.db.engine import Database
from gateway.db.models import (
    Document,
    InterchangeSeen,
    Job,
    JournaledPayload,
    Message,
    MessageEvent,
    OutboxItem,
    utcnow,
)
from gateway.db.models_delivery import DeliveryAttempt
from gateway.domain.states import IDLE_JOBS, INBOUND, OUTBOUND, SETTLED_DOCUMENTS, UNSENT_OUTBOX
from gateway.order_retention import OrderPruneReport
from gateway.rawstore import RawStore
from gateway.transports.sftp_marks import prune_unconfirmed

log = logging.getLogger(__name__)

LOCK_FILE = "gateway.lock"
INBOUND_FINAL = INBOUND.final
# "overdue" is not final: a late acknowledgment still sets the verdict.
OUTBOUND_FINAL = OUTBOUND.final
LOOKUP_BATCH = 500  # hashes or ids per IN (...) query
FIRST_RUN_SECONDS = 60.0  # the service's first prune, at most this long after start
TARGET_SECONDS = 0.2  # aim of one deleting transaction


# --------------------------------------------------------------------------- data dir


class DataDirLocked(Exception):
    """Another process holds ``<data_dir>/gateway.lock``."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another gateway process ({who}) is using data dir {data_dir}")
        self.data_dir = data_dir
        self.pid = pid


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file, or None when the database is not a SQLite file."""
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir 0700 and a missing SQLite file 0600 (SQLite gives its
    ``-wal`` and ``-shm`` files the database file's mode). A data dir open to others
    is made 0700 when it holds nothing of ours yet (``gateway serve`` writes the API
    token first), else left alone with a warning."""
    data_dir = settings.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        if {p.name for p in data_dir.iterdir()} <= {"api-token", LOCK_FILE}:
            os.chmod(data_dir, 0o700)
        else:
            log.warning(
                "data dir %s is open to other users (mode %04o): `chmod -R go= %s` keeps payloads private",
                data_dir.resolve(),
                mode,
                data_dir,
            )
    database = sqlite_file(settings)
    if database is not None and not database.exists():
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(
                os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            )  # an empty file is an empty database


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/gateway.lock`` (holding our pid), for as
    long as the object lives or until :meth:`release`. Only SQLite needs one: it
    has one writer, and a second service would take over the first one's running
    jobs at start. PostgreSQL deployments run several processes on purpose."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, settings: Settings) -> DataDirLock:
        """Prepare the data dir and lock it (a no-op lock for a non-SQLite database);
        raises :class:`DataDirLocked` at once when another process holds it."""
        prepare_data_dir(settings)
        path = settings.data_dir / LOCK_FILE
        if sqlite_file(settings) is None:
            return cls(path, None)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            finally:
                os.close(fd)
            raise DataDirLocked(settings.data_dir.resolve(), int(text) if text.isdigit() else None) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # the lock goes with the last descriptor; the file stays

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------- report


@dataclass(slots=True)
class PruneReport:
    dry_run: bool = False
    raw_files: int = 0
    raw_bytes: int = 0
    raw_in_use: int = 0  # old files kept because an unsettled or newer message refers to them
    raw_rows: int = 0  # small payloads kept as database rows (decision 0025)
    raw_row_bytes: int = 0
    messages: int = 0
    events: int = 0
    documents: int = 0
    outbox: int = 0
    jobs: int = 0
    delivery_attempts: int = 0
    interchanges_seen: int = 0
    messages_enabled: bool = False  # storage.message_retention_days is set
    seen_skipped: bool = False  # partner profiles unknown: interchanges_seen kept
    orders: OrderPruneReport | None = None  # storage.order_retention_days is set (gateway.order_retention)
    unconfirmed: tuple[int, int] | None = None  # SFTP uploads set aside: (files, bytes); None: no drop box
    seconds: float = 0.0

    def orders_line(self, would: str) -> str:
        """What ``gateway prune`` prints about the order rows."""
        if self.orders is None:
            return "orders: kept forever (storage.order_retention_days is not set)"
        return f"orders: {self.orders.summary()} {would}"

    def summary(self) -> str:
        """One line, for the log."""
        verb = "would delete" if self.dry_run else "deleted"
        parts = [
            f"{self.raw_files} raw file(s) ({format_size(self.raw_bytes)})",
            f"{self.raw_rows} raw row(s) ({format_size(self.raw_row_bytes)})",
        ]
        if self.messages_enabled:
            parts.append(
                f"{self.messages} message(s) with {self.events} event(s), {self.documents} document(s), "
                f"{self.outbox} outbox item(s), {self.jobs} job(s), {self.delivery_attempts} delivery attempt(s)"
            )
            parts.append(
                f"{self.interchanges_seen} interchanges_seen row(s)"
                + (" (skipped)" if self.seen_skipped else "")
            )
        if self.orders is not None:
            parts.append(self.orders.summary())
        if self.unconfirmed is not None and self.unconfirmed[0]:
            parts.append(
                f"{self.unconfirmed[0]} unconfirmed SFTP upload(s) ({format_size(self.unconfirmed[1])})"
            )
        kept = f"; {self.raw_in_use} old raw file(s) still in use" if self.raw_in_use else ""
        return f"prune {verb} " + ", ".join(parts) + f"{kept} ({self.seconds:.2f} s)"


def format_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class _Rules:
    cutoff: datetime
    no_ack_partners: frozenset[str]

    def statuses(self) -> list[str]:
        wanted = set(INBOUND_FINAL) | OUTBOUND_FINAL
        if self.no_ack_partners:
            wanted.add("sent")
        return sorted(wanted)

    def settled(self, row: Any) -> bool:
        if row.direction == "in":
            final = row.status in INBOUND_FINAL
        else:
            final = row.status in OUTBOUND_FINAL or (
                row.status == "sent" and row.partner_id in self.no_ack_partners
            )
        return final and row.received_at < self.cutoff and row.updated_at < self.cutoff and not row.blocked


def _columns() -> list[Any]:
    blocked = or_(
        exists().where(Document.message_id == Message.id, Document.status.not_in(SETTLED_DOCUMENTS)),
        exists().where(OutboxItem.message_id == Message.id, OutboxItem.status.in_(UNSENT_OUTBOX)),
        exists().where(Job.message_id == Message.id, Job.state.not_in(IDLE_JOBS)),
    )
    return [
        Message.id,
        Message.raw_sha256,
        Message.direction,
        Message.status,
        Message.partner_id,
        Message.received_at,
        Message.updated_at,
        blocked.label("blocked"),
    ]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for at in range(0, len(items), size):
        yield items[at : at + size]


# --------------------------------------------------------------------------- prune


async def prune(
    db: Database,
    store: RawStore,
    settings: Settings,
    *,
    partners: Iterable[Any] | None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Apply the retention settings once (see the module doc). ``partners``: the
    loaded profiles, or None when unknown."""
    started = time.monotonic()
    now = now or utcnow()
    storage = settings.storage
    profiles = list(partners) if partners is not None else None
    no_ack = frozenset(p.id for p in profiles or () if not p.x12.expect_functional_ack)
    report = PruneReport(dry_run=dry_run, messages_enabled=storage.message_retention_days is not None)
    days = storage.raw_retention_days
    if storage.message_retention_days is not None:
        days = min(days, storage.message_retention_days)
    await _prune_raw(db, store, _Rules(now - timedelta(days=days), no_ack), report, dry_run)
    await _prune_raw_rows(db, _Rules(now - timedelta(days=days), no_ack), report, dry_run)
    if storage.message_retention_days is not None:
        message_cutoff = now - timedelta(days=storage.message_retention_days)
        await _prune_messages(db, _Rules(message_cutoff, no_ack), report, dry_run)
        if profiles is None:
            report.seen_skipped = True
        else:
            windows = [settings.pipeline.duplicate_window_days]
            windows += [
                p.x12.duplicate_window_days for p in profiles if p.x12.duplicate_window_days is not None
            ]
            await _prune_seen(db, min(message_cutoff, now - timedelta(days=max(windows))), report, dry_run)
    if storage.order_retention_days is not None:
        report.orders = await order_retention.prune_orders(
            db, now - timedelta(days=storage.order_retention_days), dry_run=dry_run
        )
    report.unconfirmed = await asyncio.to_thread(
        prune_unconfirmed,
        settings.data_dir / "sftp",
        (now - timedelta(days=days)).timestamp(),
        dry_run=dry_run,
    )
    report.seconds = time.monotonic() - started
    return report


async def _prune_raw(
    db: Database, store: RawStore, rules: _Rules, report: PruneReport, dry_run: bool
) -> None:
    old_before = rules.cutoff.timestamp()
    for bucket in await asyncio.to_thread(store.buckets):
        old = await asyncio.to_thread(store.payloads_older_than, bucket, old_before)
        for chunk in _chunks(old, LOOKUP_BATCH):
            sizes = dict(chunk)
            async with db.read() as conn:
                rows = (
                    await conn.execute(select(*_columns()).where(Message.raw_sha256.in_(list(sizes))))
                ).all()
            unused = set(sizes)
            for row in rows:
                if row.raw_sha256 in unused and not rules.settled(row):
                    unused.discard(row.raw_sha256)
            report.raw_in_use += len(sizes) - len(unused)
            if dry_run:
                report.raw_files += len(unused)
                report.raw_bytes += sum(sizes[s] for s in unused)
                continue
            freed = await asyncio.to_thread(_remove_all, store, sorted(unused), old_before)
            report.raw_files += len(freed)
            report.raw_bytes += sum(freed)


async def _prune_raw_rows(db: Database, rules: _Rules, report: PruneReport, dry_run: bool) -> None:
    """The small payloads kept as rows (module doc, 1.): a pass over ``raw_journal``
    by id, a batch of rows and their messages at a time, up to the first batch whose
    payloads' messages were all received after the cutoff. Ids follow acceptance (a
    row is committed with its message), so the rows after it are newer still and none
    could go: each prune reads the rows it may delete, those an unsettled message
    holds, and one batch more, not the whole table. A row the pass stops before (an
    id out of step with its message's time by a batch's commit) goes on a later
    prune, once the cutoff passed that batch."""
    after = -1
    while True:
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(JournaledPayload.id, JournaledPayload.sha256, func.length(JournaledPayload.data))
                    .where(JournaledPayload.id > after, JournaledPayload.kept == true())
                    .order_by(JournaledPayload.id)
                    .limit(LOOKUP_BATCH)
                )
            ).all()
            if not rows:
                return
            after = rows[-1][0]
            shas = sorted({row[1] for row in rows})
            found = (await conn.execute(select(*_columns()).where(Message.raw_sha256.in_(shas)))).all()
        unused = set(shas)
        for message in found:
            if message.raw_sha256 in unused and not rules.settled(message):
                unused.discard(message.raw_sha256)
        if _all_newer(shas, found, rules.cutoff):
            return
        gone = {row_id: size for row_id, sha, size in rows if sha in unused}
        if not gone:
            continue
        if not dry_run:
            gone = await _delete_rows(db, rules, gone, sorted({sha for _, sha, _ in rows if sha in unused}))
        report.raw_rows += len(gone)
        report.raw_row_bytes += sum(gone.values())


def _all_newer(shas: list[str], messages: Sequence[Any], cutoff: datetime) -> bool:
    """Whether every payload of ``shas`` has messages, all received after ``cutoff``."""
    has_messages = {m.raw_sha256 for m in messages} >= set(shas)  # else an orphan row: it may go
    return has_messages and all(m.received_at >= cutoff for m in messages)


async def _delete_rows(db: Database, rules: _Rules, gone: dict[int, int], shas: list[str]) -> dict[int, int]:
    """Delete the rows ``gone`` (id -> size) unless a message of their payload changed
    since they were read (a replay); returns those deleted. The messages of ``shas``
    are locked first (PostgreSQL; SQLite's write transaction is exclusive already): a
    replay holds its message's lock from before it checks the payload is there until
    it commits, so it either committed before (its ``updated_at`` keeps the row here)
    or looks after this commit and finds the payload gone (refused)."""
    changed = exists().where(
        Message.raw_sha256 == JournaledPayload.sha256, Message.updated_at >= rules.cutoff
    )
    async with db.write() as conn:
        if not db.is_sqlite:
            await conn.execute(
                select(Message.id)
                .where(Message.raw_sha256.in_(shas))
                .order_by(Message.id)
                .with_for_update(read=True)
            )
        deleted = await conn.execute(
            delete(JournaledPayload)
            .where(JournaledPayload.id.in_(list(gone)), ~changed)
            .returning(JournaledPayload.id)
        )
        return {row_id: gone[row_id] for row_id in deleted.scalars()}


def _remove_all(store: RawStore, hashes: list[str], untouched_since: float) -> list[int]:
    freed = []
    for sha in hashes:
        size = store.remove_unused(sha, untouched_since=untouched_since)
        if size is not None:
            freed.append(size)
    return freed


_CHILDREN: tuple[tuple[str, Any], ...] = (
    ("delivery_attempts", DeliveryAttempt),
    ("events", MessageEvent),
    ("jobs", Job),
    ("outbox", OutboxItem),
    ("documents", Document),
)


async def _prune_messages(db: Database, rules: _Rules, report: PruneReport, dry_run: bool) -> None:
    batch = 100
    after: tuple[datetime, str] | None = None
    while True:
        query = (
            select(*_columns())
            .where(Message.received_at < rules.cutoff, Message.updated_at < rules.cutoff)
            .where(Message.status.in_(rules.statuses()))
            .order_by(Message.received_at, Message.id)
            .limit(batch)
        )
        if after is not None:
            query = query.where(
                or_(
                    Message.received_at > after[0],
                    and_(Message.received_at == after[0], Message.id > after[1]),
                )
            )
        async with db.read() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return
        after = (rows[-1].received_at, rows[-1].id)
        ids = [r.id for r in rows if rules.settled(r)]
        if not ids:
            continue
        started = time.monotonic()
        if dry_run:
            async with db.read() as conn:
                report.messages += len(ids)
                for name, table in _CHILDREN:
                    found = await conn.execute(
                        select(func.count()).select_from(table).where(table.message_id.in_(ids))
                    )
                    setattr(report, name, getattr(report, name) + int(found.scalar_one()))
        else:
            async with db.write() as conn:
                # Again under the lock (SQLite: the write lock; PostgreSQL: the rows'):
                # a replay or another pruner may have come in between.
                locked = (
                    await conn.execute(
                        select(*_columns()).where(Message.id.in_(ids)).with_for_update(of=Message)
                    )
                ).all()
                ids = [r.id for r in locked if rules.settled(r)]
                if ids:
                    for name, table in _CHILDREN:
                        result = await conn.execute(delete(table).where(table.message_id.in_(ids)))
                        setattr(report, name, getattr(report, name) + result.rowcount)
                    result = await conn.execute(delete(Message).where(Message.id.in_(ids)))
                    report.messages += result.rowcount
        took = time.monotonic() - started
        if took > 2 * TARGET_SECONDS:
            batch = max(10, batch // 2)
        elif took < TARGET_SECONDS / 2:
            batch = min(1000, batch * 2)
        await asyncio.sleep(0)  # let queued writers have the gate between batches


async def _prune_seen(db: Database, cutoff: datetime, report: PruneReport, dry_run: bool) -> None:
    if dry_run:
        async with db.read() as conn:
            found = await conn.execute(
                select(func.count()).select_from(InterchangeSeen).where(InterchangeSeen.seen_at < cutoff)
            )
            report.interchanges_seen += int(found.scalar_one())
        return
    key = (InterchangeSeen.partner_id, InterchangeSeen.sender, InterchangeSeen.control_number)
    while True:
        async with db.write() as conn:
            rows = (
                await conn.execute(select(*key).where(InterchangeSeen.seen_at < cutoff).limit(LOOKUP_BATCH))
            ).all()
            if not rows:
                return
            result = await conn.execute(
                delete(InterchangeSeen).where(
                    tuple_(*key).in_([tuple(r) for r in rows]), InterchangeSeen.seen_at < cutoff
                )
            )
            report.interchanges_seen += result.rowcount
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- the service's task


async def prune_and_log(
    db: Database, store: RawStore, settings: Settings, *, partners: Any, now: datetime
) -> None:
    """One scheduled prune (gateway.bootstrap runs it every
    ``storage.prune_interval_minutes``, the first at most a minute after start, on one
    instance at a time), logging one line; an error is logged and tried next time."""
    try:
        report = await prune(db, store, settings, partners=partners, now=now)
    except Exception as exc:
        log.error(
            "prune failed (next try in %.0f s): %s: %s",
            settings.storage.prune_interval_minutes * 60,
            type(exc).__name__,
            exc,
        )
        return
    log.info("%s", report.summary())
