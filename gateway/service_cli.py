"""The service's commands: ``gateway serve``, ``gateway worker``, ``gateway db upgrade``,
``gateway db current``.

``add_service_commands(subparsers)`` registers them on the main parser (see
gateway.cli); each sets ``func`` on its namespace to a callable returning the exit
code. Configuration comes from ``--config``, else ``$GATEWAY_CONFIG``, else
``./gateway.toml`` when present, else the embedded defaults; ``GATEWAY_*`` variables
override any of them. Secrets are never printed, except a freshly generated internal
API token, once, to the terminal of the operator who started the service.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from gateway.config import (
    API_TOKEN_FILE,
    ConfigError,
    Settings,
    default_config_path,
    ensure_api_token,
    load_settings,
)

EXIT_CONFIG = 2
EXIT_SCHEMA = 3
# ``[server] access_log = true``: one line per request on the "aiohttp.access" logger
# (INFO). Client address, request line, status, size, seconds, User-Agent: no other
# request header, so never the Authorization header (partner keys, the API token).
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs "%{User-Agent}i"'


def add_service_commands(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the gateway service")
    serve.add_argument(
        "--config",
        type=Path,
        help="gateway.toml (default: $GATEWAY_CONFIG, ./gateway.toml, built-in defaults)",
    )
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.set_defaults(func=run_serve)

    worker = subparsers.add_parser(
        "worker",
        help="run the job runner, partner transports and schedules without HTTP (a second instance on PostgreSQL)",
    )
    worker.add_argument("--config", type=Path, help="gateway.toml (as for serve)")
    worker.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    worker.set_defaults(func=run_worker)

    db = subparsers.add_parser("db", help="database schema commands")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="migrate the database schema to the latest revision")
    upgrade.add_argument("--config", type=Path)
    upgrade.set_defaults(func=run_db_upgrade)
    current = db_commands.add_parser("current", help="print the database schema revision")
    current.add_argument("--config", type=Path)
    current.set_defaults(func=run_db_current)

    from gateway.orders_cli import add_orders_command

    add_orders_command(subparsers)


def _fast_event_loop() -> None:
    """uvloop when it is installed (it is a dependency on Linux and macOS): about 1.1x
    on the service's request path (docs/decisions/0005-orjson-uvloop.md)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config if args.config is not None else default_config_path()
    settings = load_settings(path)
    server = settings.server
    if getattr(args, "host", None):
        server = server.model_copy(update={"host": args.host})
    if getattr(args, "port", None) is not None:
        server = server.model_copy(update={"port": args.port})
    return settings.model_copy(update={"server": server})


def run_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.app import build_app
    from gateway.db.schema import SchemaError
    from gateway.partners import PartnersError

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    token, generated = ensure_api_token(settings)
    host, port = settings.server.host, settings.server.port
    shown_host = f"[{host}]" if ":" in host else host
    print(
        f"gateway: data in {settings.data_dir.resolve()}, partners from {settings.partners_dir.resolve()}",
        flush=True,
    )
    if generated:
        print(
            f"gateway: generated the internal API token (shown once, kept in {settings.data_dir / API_TOKEN_FILE}):",
            flush=True,
        )
        print(f"gateway:   Authorization: Bearer {token}", flush=True)
    elif settings.api.token is None:
        print(
            f"gateway: internal API: Authorization: Bearer <token in {settings.data_dir / API_TOKEN_FILE}>",
            flush=True,
        )
    else:
        print("gateway: internal API: Authorization: Bearer <api.token from the configuration>", flush=True)
    print("gateway: partners post with Authorization: Bearer <partner key> to /partners/<id>/edi", flush=True)

    def bound(_aiohttp_banner: str) -> None:
        # run_app calls this once the app has started and the socket is bound.
        print(f"gateway: listening on http://{shown_host}:{port}", flush=True)

    access_log = logging.getLogger("aiohttp.access") if settings.server.access_log else None
    _fast_event_loop()
    try:
        web.run_app(
            build_app(settings),
            host=host,
            port=port,
            print=bound,
            access_log=access_log,
            access_log_format=ACCESS_LOG_FORMAT,
        )
    except SchemaError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    except PartnersError as exc:
        print("gateway: the partner profiles have problems:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return EXIT_CONFIG
    return 0


def run_worker(args: argparse.Namespace) -> int:
    from gateway.bootstrap import run_worker as work
    from gateway.db.schema import SchemaError
    from gateway.partners import PartnersError

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _fast_event_loop()
    try:
        asyncio.run(work(settings))
    except SchemaError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    except PartnersError as exc:
        print("gateway: the partner profiles have problems:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        pass
    return 0


def run_db_upgrade(args: argparse.Namespace) -> int:
    from gateway.db.engine import open_database
    from gateway.db.schema import SchemaError, upgrade

    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def run() -> tuple[str | None, str | None]:
        db = open_database(settings.effective_database_url)
        try:
            return await upgrade(db)
        finally:
            await db.close()

    from gateway.retention import DataDirLock, DataDirLocked

    try:
        # Never under a running service (SQLite): it holds the data dir's lock.
        lock = DataDirLock.acquire(settings)
    except DataDirLocked as exc:
        print(f"gateway: {exc}: stop it before upgrading the schema", file=sys.stderr)
        return EXIT_CONFIG
    try:
        before, after = asyncio.run(run())
    except SchemaError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    finally:
        lock.release()
    if before == after:
        print(f"schema already at revision {after}")
    else:
        print(f"schema upgraded from {before or 'empty'} to {after}")
    return 0


def run_db_current(args: argparse.Namespace) -> int:
    from gateway.db.engine import open_database
    from gateway.db.schema import current_revision, head_revision

    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def run() -> str | None:
        db = open_database(settings.effective_database_url)
        try:
            return await current_revision(db)
        finally:
            await db.close()

    current = asyncio.run(run())
    head = head_revision()
    note = "latest" if current == head else f"latest known is {head}"
    print(f"{current or 'empty (no schema)'} ({note})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the service commands alone: ``python -m gateway.service_cli serve``."""
    parser = argparse.ArgumentParser(prog="gateway")
    add_service_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
