"""Opening the database: the async engine, its session factory and the SQLite
settings that make a commit durable.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit survives power loss),
a busy timeout instead of immediate "database is locked" errors, and every write
transaction starts with ``BEGIN IMMEDIATE`` so two writers queue on the lock rather
than failing on a stale snapshot. Read-only work can ask for a plain ``BEGIN`` with
``execution_options(sqlite_deferred=True)``.

PostgreSQL: a pooled connection is checked for life when it is taken from the pool
without a round trip (:func:`_configure_postgresql`). Never create an engine at
import time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gateway.db.writer import ReadWork, SessionWork, SqliteWriter, Work, sqlite_path

T = TypeVar("T")


class StorageUnavailable(Exception):
    """The database (or the raw store's disk) cannot take writes right now.

    The HTTP layer answers 503; nothing has been acknowledged."""


@dataclass(slots=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # SQLite has one writer. Writers of this process queue here, in order, instead of
    # on SQLite's busy handler, which sleeps in steps of up to 100 ms between tries and
    # turned lock contention between pipeline workers and the intake into idle time.
    # Other processes (a CLI next to the service) still meet the busy timeout.
    _write_gate: asyncio.Lock | None = field(default=None, repr=False)
    _gate_holder: asyncio.Task[Any] | None = field(default=None, repr=False)
    # SQLite files: the lean write path's thread (gateway.db.writer); None on PostgreSQL.
    writer: SqliteWriter | None = field(default=None, repr=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction: committed on success, rolled back on error."""
        async with self._gate(), self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one write transaction (Core statements, no ORM session)."""
        async with self._gate(), self.engine.begin() as conn:
            yield conn

    async def lean_write(self, work: Work[T]) -> T:
        """Run ``work`` (plain sqlite3 statements) as one write transaction in the
        writer thread, queued with this process's other writers (SQLite files only)."""
        if self.writer is None:
            raise RuntimeError("the lean write path needs an SQLite file database")
        async with self._gate():
            return await self.writer.run(work)

    async def lean_session(self, work: SessionWork[T]) -> T:
        """Run ``work(session)`` as one write transaction in the writer thread, on a
        sync session that never suspends (gateway.db.writer.SqliteWriter.run_session)."""
        if self.writer is None:
            raise RuntimeError("the lean write path needs an SQLite file database")
        async with self._gate():
            return await self.writer.run_session(work)

    async def lean_read(self, work: ReadWork[T]) -> T:
        """Run ``work(connection)`` (reads only) in one read transaction: in the writer
        thread on SQLite files (no aiosqlite hop per statement), else as :meth:`read`."""
        if self.writer is None or self.writer.engine is None:
            async with self.read() as conn:
                return await work(conn)
        return await self.writer.run_read(work)

    @asynccontextmanager
    async def _gate(self) -> AsyncIterator[None]:
        if not self.is_sqlite:
            yield
            return
        if self._write_gate is None:
            self._write_gate = asyncio.Lock()
        task = asyncio.current_task()
        if task is not None and task is self._gate_holder:
            # Waiting here would wait for ourselves: fail loudly instead of hanging.
            raise RuntimeError("a write transaction was opened inside another one on SQLite")
        async with self._write_gate:
            self._gate_holder = task
            try:
                yield
            finally:
                self._gate_holder = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that never takes SQLite's write lock."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(sqlite_deferred=True)
            async with conn.begin():
                yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        await self.engine.dispose()


def open_database(url: str, *, echo: bool = False, pool_size: int = 10) -> Database:
    """An engine for ``url``; for SQLite, creates the file's directory."""
    parsed = make_url(url)
    # A failed statement's error text leaves out its parameters: they carry partners'
    # payloads (a whole accept batch's on PostgreSQL), which are never logged.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_size"] = pool_size
    # orjson for the JSON columns (canonical documents, event details): 10-15x cheaper
    # than the json module on this path (docs/decisions/0005-orjson-uvloop.md).
    kwargs["json_serializer"] = _json_text
    kwargs["json_deserializer"] = orjson.loads
    engine = create_async_engine(url, **kwargs)
    writer = None
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine.sync_engine)
        path = sqlite_path(parsed.database)
        if path:
            # The writer thread's own sync engine on the same file, set up alike.
            sync = create_engine(
                parsed.set(drivername="sqlite"),
                pool_size=1,
                hide_parameters=True,
                connect_args={"timeout": 30},
                json_serializer=_json_text,
                json_deserializer=orjson.loads,
            )
            _configure_sqlite(sync)
            writer = SqliteWriter(path, timeout=30, engine=sync)
    else:
        _configure_postgresql(engine.sync_engine)
    return Database(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False), writer=writer)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN IMMEDIATE is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        deferred = conn.get_execution_options().get("sqlite_deferred", False)
        conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def _configure_postgresql(engine: Engine) -> None:
    """A connection taken from the pool is checked for life locally: asyncpg knows a
    connection is closed once its socket was (a PostgreSQL restart, a terminated
    backend), so the pool replaces it before use. SQLAlchemy's ``pool_pre_ping`` did
    this with three round trips per transaction (BEGIN, an empty query, ROLLBACK
    with the asyncpg dialect), on the event loop, before every intake commit,
    translate write and delivery record. A connection whose end is not yet known
    fails its statement instead: SQLAlchemy invalidates it, and the caller answers
    503 or retries, as for a database that goes away mid-transaction."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the pooled connection was closed by the server")


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable, read-only or full (503),
    as opposed to a bug or a constraint violation."""
    if isinstance(exc, StorageUnavailable | OperationalError | OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        # Constraint violations and bad SQL are ours to fix; anything else the driver
        # reports (refused connection, database not accepting connections, server
        # shutting down) is the database being unavailable.
        return exc.connection_invalidated or not isinstance(
            exc, IntegrityError | ProgrammingError | DataError
        )
    return type(exc).__module__.startswith("asyncpg") and "Connection" in type(exc).__name__


def data_error(exc: BaseException) -> str | None:
    """When ``exc`` is the database refusing a value (SQLSTATE class 22, "data
    exception": too long, a NUL in text, out of range, not a date...), its SQLSTATE
    and the server's message, without the statement or any value; else None. The same
    on PostgreSQL's two paths: SQLAlchemy's asyncpg adapter raises these as a plain
    DBAPIError (which is_storage_error counts as the database being unavailable),
    gateway.db.pg_steps as DataError; SQLite's driver raises DataError."""
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if not (isinstance(exc, DataError) or (isinstance(state, str) and state.startswith("22"))):
        return None
    text = str(orig.args[0]) if orig is not None and orig.args else type(orig).__name__
    text = text.splitlines()[0] if text else ""
    return f"SQLSTATE {state}: {text}" if state else text
