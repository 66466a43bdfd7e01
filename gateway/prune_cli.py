"""``gateway prune``: apply the retention settings once (gateway.retention), from
the command line, against the service's database and raw store.

Maintenance, not an offline command: it needs the database. Its imports of the
service stack happen when it runs, so building the parser stays light.
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli_shared import EXIT_OK, add_settings_options, err, settings_of
from gateway.translate_cli import UsageError  # one line, exit 2 (light: standard library only)


def add_prune_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prune = commands.add_parser("prune", help="delete what the retention settings ([storage]) let go, once")
    prune.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    add_settings_options(prune, partners=False)
    prune.set_defaults(func=run_prune)


def run_prune(args: argparse.Namespace) -> int:
    """Prune once (gateway.retention). On SQLite it takes the data dir lock, so it
    refuses (exit 2) while ``gateway serve`` runs there (the service prunes itself
    every ``storage.prune_interval_minutes``); ``--dry-run`` only reads and never
    needs the lock."""
    import asyncio

    from gateway import retention

    settings = settings_of(args)
    database = retention.sqlite_file(settings)
    if database is not None and not database.exists():
        print(f"nothing to prune: no database at {database}")
        return EXIT_OK
    lock = None
    if not args.dry_run:
        try:
            lock = retention.DataDirLock.acquire(settings)
        except retention.DataDirLocked as exc:
            raise UsageError(
                f"{exc} (it prunes by itself; `gateway prune --dry-run` shows what it would do)"
            ) from None
    try:
        report = asyncio.run(_prune(args, settings))
    finally:
        if lock is not None:
            lock.release()
    if report is None:
        print("nothing to prune: the database has no gateway schema yet")
        return EXIT_OK
    would = "would be deleted" if args.dry_run else "deleted"
    if args.dry_run:
        print("dry run: nothing deleted")
    kept = f"; {report.raw_in_use} older file(s) still in use" if report.raw_in_use else ""
    print(
        f"raw payloads: {report.raw_files} file(s), {report.raw_bytes} bytes "
        f"({retention.format_size(report.raw_bytes)}) {would}{kept}"
    )
    print(
        f"raw payloads in the database: {report.raw_rows} row(s), {report.raw_row_bytes} bytes "
        f"({retention.format_size(report.raw_row_bytes)}) {would}"
    )
    print(report.orders_line(would))
    if report.unconfirmed is not None:
        files, size = report.unconfirmed
        print(f"sftp uploads set aside (.unconfirmed): {files} file(s), {size} bytes {would}")
    if settings.storage.message_retention_days is None:
        print("messages: kept forever (storage.message_retention_days is not set)")
        return EXIT_OK
    print(
        f"messages: {report.messages} {would}, with {report.events} event(s), {report.documents} document(s), "
        f"{report.outbox} outbox item(s), {report.jobs} job(s), {report.delivery_attempts} delivery attempt(s)"
    )
    if report.seen_skipped:
        print("interchanges_seen: kept (the partner profiles could not be loaded)")
    else:
        print(f"interchanges_seen: {report.interchanges_seen} row(s) {would}")
    return EXIT_OK


async def _prune(args: argparse.Namespace, settings: Any) -> Any:
    from gateway import retention
    from gateway.bootstrap import load_partner_directory
    from gateway.db.engine import open_database
    from gateway.db.schema import current_revision, head_revision
    from gateway.rawstore import RawStore

    db = open_database(settings.effective_database_url)
    try:
        revision, head = await current_revision(db), head_revision()
        if revision is None:
            return None
        if revision != head:
            raise UsageError(
                f"the database schema is at revision {revision}, this gateway needs {head}: "
                "run `gateway db upgrade` first; nothing pruned"
            )
        try:
            partners = load_partner_directory(settings, allow_empty=True)
        except Exception as exc:  # a broken profile must not stop retention of the rest
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            err(
                f"gateway prune: partner profiles not loaded ({first}): outbound 'sent' messages and "
                "interchanges_seen are kept"
            )
            partners = None
        store = RawStore(settings.raw_dir, io_threads=1)
        try:
            return await retention.prune(db, store, settings, partners=partners, dry_run=args.dry_run)
        finally:
            store.close()
    finally:
        await db.close()
