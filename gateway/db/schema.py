"""Schema revisions: upgrading, reading the current revision and the start-up check.

Start-up policy (``prepare_schema``):

- an empty database (none of our tables, no revision) is upgraded to the latest
  revision automatically, so a first start needs no extra command;
- a database at the latest revision is used as is;
- a database at an older known revision is refused: back up, then run
  ``gateway db upgrade`` (migrating live data is an operator's decision);
- a database at a revision this gateway does not know (written by a newer version)
  or with our tables but no revision is refused with a message saying so.

Alembic runs synchronously on the connection handed to it through
``run_sync``, so it works the same inside the service's event loop and in the CLI.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from gateway.db.engine import Database
from gateway.db.models import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class _DialectChatter(logging.Filter):
    """Alembic announces its dialect ("Context impl SQLiteImpl.", "Will assume
    non-transactional DDL.") at INFO on every migration context, four times per start;
    the revisions it runs stay in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl", "Will assume"))


_DIALECT_CHATTER = _DialectChatter()


def _quiet_alembic() -> None:
    logging.getLogger("alembic.runtime.migration").addFilter(_DIALECT_CHATTER)  # once: addFilter dedupes


class SchemaError(Exception):
    """The database schema is not one this gateway can run on."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, target: str = "head") -> None:
    command.upgrade(alembic_config(connection), target)


def _has_our_tables(connection: Connection) -> bool:
    existing = set(inspect(connection).get_table_names())
    return bool(existing & set(Base.metadata.tables))


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database, target: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``target``; returns (revision before, revision after)."""
    _quiet_alembic()
    async with db.engine.begin() as conn:
        before = await conn.run_sync(_current)
        if before is not None and before not in known_revisions():
            raise SchemaError(_unknown(before))
        await conn.run_sync(_upgrade, target)
        after = await conn.run_sync(_current)
    return before, after


async def prepare_schema(db: Database) -> str:
    """Apply the start-up policy above; returns what was done, for the log."""
    _quiet_alembic()
    async with db.engine.connect() as conn:
        current = await conn.run_sync(_current)
        has_tables = await conn.run_sync(_has_our_tables)
    head = head_revision()
    if current == head:
        return f"schema at revision {head}"
    if current is None:
        if has_tables:
            raise SchemaError(
                "the database holds gateway tables but no schema revision; "
                "it was not created by `gateway db upgrade` and cannot be trusted"
            )
        await upgrade(db)
        return f"empty database: created schema at revision {head}"
    if current not in known_revisions():
        raise SchemaError(_unknown(current))
    raise SchemaError(
        f"the database schema is at revision {current}, this gateway needs {head}: "
        "back up the data directory, then run `gateway db upgrade`"
    )


def _unknown(revision: str) -> str:
    return (
        f"the database schema is at revision {revision!r}, which this gateway version does not "
        f"know (latest known: {head_revision()}); it was probably written by a newer gateway. "
        "Refusing to start: run the matching gateway version or restore a backup."
    )
