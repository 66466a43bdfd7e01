"""The lean write path on SQLite: one dedicated thread owning one plain ``sqlite3``
connection, fed a whole batch of writes as one function, run as one transaction in
one hop from the event loop.

Through SQLAlchemy and aiosqlite, every statement costs several thread hops (cursor,
execute, fetch, close) plus SQLAlchemy's compilation and per-row parameter
processing; a translated batch or an intake batch made dozens of them. Here the
caller prepares plain rows (:func:`ts`, :func:`json_text` give the exact text
SQLAlchemy stores, so both paths read each other's rows) and the thread runs
``executemany`` over them: one ``BEGIN IMMEDIATE``, the statements, one durable
``COMMIT`` (WAL, ``synchronous=FULL``, the same settings as gateway.db.engine).

The writer takes the :class:`~gateway.db.engine.Database` write gate of this
process before the hop, so it queues with the SQLAlchemy writers instead of on
SQLite's busy handler. Errors come back as SQLAlchemy's exception classes
(IntegrityError, OperationalError...), so callers and ``is_storage_error`` treat
them as before. A connection left unusable by an error (disk full, I/O error) is
closed and opened again on the next batch.

Code written against SQLAlchemy's async API can run here too: :meth:`SqliteWriter.run_session`
(a write transaction) and :meth:`SqliteWriter.run_read` (a deferred read transaction)
run a coroutine on a sync session or connection of a second, sync engine on the same
file, driven to its end in one step because nothing in it suspends (:func:`drive`).

PostgreSQL does not use this module: its batches go through the async engine.
SQLAlchemy stays the owner of the schema, the migrations and the reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

T = TypeVar("T")

# One transaction's work: runs in the writer thread with the open connection.
Work = Callable[[sqlite3.Connection], T]
# Or written against an AsyncSession (the pipeline's translate write): see run_session.
SessionWork = Callable[[AsyncSession], Coroutine[Any, Any, T]]
# Reads written against an AsyncConnection: see run_read.
ReadWork = Callable[[AsyncConnection], Coroutine[Any, Any, T]]


def ts(value: datetime | None) -> str | None:
    """A timestamp as SQLAlchemy's SQLite dialect stores a UTC column (gateway.db.models.UTCDateTime)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"


def json_text(value: Any) -> str:
    """A JSON column's text as SQLAlchemy stores it (None is the JSON ``null``)."""
    return orjson.dumps(value).decode()


class SqliteWriter:
    """The writer thread of one SQLite database file (see the module doc)."""

    def __init__(self, path: str, *, timeout: float = 30.0, engine: Engine | None = None) -> None:
        self.path = path
        self.timeout = timeout
        self.engine = engine  # a sync engine on the same file, for run_session (used in this thread only)
        self._executor: ThreadPoolExecutor | None = None  # started on first use, again after close
        self._conn: sqlite3.Connection | None = None
        self.transactions = 0  # committed, for tests and metrics

    async def run(self, work: Work[T]) -> T:
        """Run ``work(connection)`` in one write transaction in the writer thread and
        return its result once committed. The caller holds the process's write gate
        (Database.lean_write does)."""
        return await self._hop(self._transaction, work)

    async def _hop(self, step: Callable[[Any], T], work: Any) -> T:
        """``step(work)`` in the writer thread (started on first use)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        return await asyncio.get_running_loop().run_in_executor(self._executor, step, work)

    async def run_session(self, work: SessionWork[T]) -> T:
        """Run ``work(session)``, a coroutine written against an AsyncSession, as one
        transaction in the writer thread on a sync SQLAlchemy session: each
        ``await session.execute(...)`` there runs at once, with no hop and no greenlet,
        so the whole coroutine completes in one step. ``work`` may await nothing but
        the session (it runs off the event loop): anything that would suspend raises
        RuntimeError and the transaction is rolled back."""
        if self.engine is None:
            raise RuntimeError("this writer has no session engine")
        return await self._hop(self._session_transaction, work)

    def _session_transaction(self, work: SessionWork[T]) -> T:
        assert self.engine is not None
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            result = drive(work(cast(AsyncSession, _SessionShim(session))))
        self.transactions += 1
        return result

    async def run_read(self, work: ReadWork[T]) -> T:
        """Run ``work(connection)``, a coroutine of reads written against an
        AsyncConnection, in the writer thread inside one deferred (read) transaction,
        driven like :meth:`run_session`. Needs no write gate: it takes no write lock."""
        if self.engine is None:
            raise RuntimeError("this writer has no session engine")
        return await self._hop(self._read_transaction, work)

    def _read_transaction(self, work: ReadWork[T]) -> T:
        assert self.engine is not None
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_deferred=True)
            with conn.begin():
                return drive(work(cast(AsyncConnection, _SessionShim(conn))))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        return conn

    def _transaction(self, work: Work[T]) -> T:
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as exc:
            raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
        self.transactions += 1
        return result

    def _rollback(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            # The connection is not usable any more (disk full mid-commit, I/O error):
            # start from a fresh one next time; SQLite rolls back the journal itself.
            self._conn = None
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the connections and stop the thread (the next :meth:`run` starts them again)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._close)
            if self.engine is not None:
                await asyncio.get_running_loop().run_in_executor(executor, self.engine.dispose)
            executor.shutdown(wait=True)


def drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, here and now."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError("work run in the writer thread awaited something other than its session")


class _SessionShim:
    """The part of AsyncSession the pipeline's writes use, over a sync Session:
    every method completes without suspending (see SqliteWriter.run_session)."""

    def __init__(self, session: Any) -> None:  # a sync Session, or a sync Connection for reads
        self.sync_session = session

    @property
    def info(self) -> dict[Any, Any]:
        info: dict[Any, Any] = self.sync_session.info
        return info

    def get_bind(self) -> Any:
        return self.sync_session.get_bind()

    def add(self, instance: object) -> None:
        self.sync_session.add(instance)

    def add_all(self, instances: Any) -> None:
        self.sync_session.add_all(instances)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalars(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.get(*args, **kwargs)

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        self.sync_session.flush(*args, **kwargs)

    async def delete(self, instance: object) -> None:
        self.sync_session.delete(instance)


def lean_connection(session: object) -> sqlite3.Connection | None:
    """The plain ``sqlite3`` connection under ``session`` when it is a writer-thread
    session (:meth:`SqliteWriter.run_session`), in its open transaction: bulk rows can
    then be written with ``executemany`` (gateway.db.lean) instead of through the ORM.
    None for every other session (PostgreSQL, aiosqlite)."""
    if not isinstance(session, _SessionShim):
        return None
    inner = session.sync_session
    # a Session (run_session), or a Connection (run_read: its ``connection`` is an attribute)
    raw = (inner.connection() if isinstance(inner, Session) else inner).connection.driver_connection
    return raw if isinstance(raw, sqlite3.Connection) else None


def sqlite_path(url_database: str | None) -> str | None:
    """The file a writer may open for an SQLite URL's database, None for in-memory ones
    (a second connection would see another database)."""
    if not url_database or url_database == ":memory:" or url_database.startswith("file:"):
        return None
    return url_database
