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
import errno
import logging
import sys
from pathlib import Path
from typing import Any

from gateway import heap
from gateway.config import (
    API_TOKEN_FILE,
    ConfigError,
    Settings,
    default_config_path,
    ensure_api_token,
    load_settings,
)
from gateway.logsetup import configure_logging

EXIT_CONFIG = 2
EXIT_SCHEMA = 3
EXIT_PORT = 4  # serve: the listening address is taken or cannot be bound
ALLOW_EMPTY_HELP = "start even when partners_dir is missing or holds no partner (none can connect)"
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
    serve.add_argument("--allow-empty", action="store_true", help=ALLOW_EMPTY_HELP)
    serve.set_defaults(func=run_serve)

    worker = subparsers.add_parser(
        "worker",
        help="run the job runner, partner transports and schedules without HTTP (a second instance on PostgreSQL)",
    )
    worker.add_argument("--config", type=Path, help="gateway.toml (as for serve)")
    worker.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    worker.add_argument("--allow-empty", action="store_true", help=ALLOW_EMPTY_HELP)
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


def serve_app(settings: Settings, *, allow_empty: bool) -> Any:
    """The application ``gateway serve`` runs: :func:`gateway.app.build_app`, and once
    it has started (its cleanup contexts, which build every part, run first) what it
    holds for life is frozen out of the collector's walks (gateway.heap)."""
    from gateway.app import build_app

    app = build_app(settings, overrides=_partners_loader(allow_empty))
    app.on_startup.append(_settle_heap)
    return app


async def _settle_heap(_app: Any) -> None:
    """The service is built: what it holds for life leaves the collector's walks (gateway.heap)."""
    heap.settle()


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

    from gateway.db.schema import SchemaError
    from gateway.logsafe import SafeAccessLogger
    from gateway.partners import PartnersError

    configure_logging(args.log_level)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(args.log_level, settings.logging.format)
    host, port = settings.server.host, settings.server.port
    # Before anything touches the data dir: a taken port must not leave a fresh ./var behind.
    problem = _cannot_listen(host, port)
    if problem:
        print(f"gateway: cannot listen on {host}:{port}: {problem}", file=sys.stderr)
        return EXIT_PORT
    if _no_partners(settings, args.allow_empty):
        return EXIT_CONFIG
    token, generated = ensure_api_token(settings)
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
            serve_app(settings, allow_empty=args.allow_empty),
            host=host,
            port=port,
            print=bound,
            access_log=access_log,
            access_log_class=SafeAccessLogger,  # control characters escaped: no forged lines
            access_log_format=ACCESS_LOG_FORMAT,
            shutdown_timeout=settings.server.shutdown_timeout_seconds,
        )
    except SchemaError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    except PartnersError as exc:
        print("gateway: the partner profiles have problems:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # taken between the check above and the bind
        print(f"gateway: cannot listen on {host}:{port}: address already in use", file=sys.stderr)
        return EXIT_PORT
    return 0


def _no_partners(settings: Settings, allow_empty: bool) -> bool:
    """Refuse (True, with one message) to start without partners unless asked to:
    checked before the data dir is touched, so a start in the wrong directory leaves
    nothing behind."""
    from gateway.bootstrap import partners_missing

    missing = None if allow_empty else partners_missing(settings)
    if missing:
        print(
            f"gateway: {missing}: no partner could connect. Add partners/<id>/profile.toml"
            " (docs/partners.md), set partners_dir (gateway.toml or GATEWAY_PARTNERS_DIR),"
            " or start without partners with --allow-empty",
            file=sys.stderr,
        )
    return missing is not None


def _partners_loader(allow_empty: bool) -> Any:
    """Overrides whose partner loader (start and every reload) honours --allow-empty."""
    from functools import partial

    from gateway.bootstrap import Overrides, load_partner_directory

    return Overrides(load_partners=partial(load_partner_directory, allow_empty=allow_empty))


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound right now (None: it can), by binding a socket
    to every address the host resolves to, as the server will, and closing it."""
    import socket

    if port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"unknown host ({exc.strerror})"
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # as the server binds: SO_REUSEADDR, so a port in TIME_WAIT is not "taken"
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return "address already in use (another process listens there; choose another with --port or server.port)"
                return exc.strerror or str(exc)
    return None


def run_worker(args: argparse.Namespace) -> int:
    from gateway.bootstrap import run_worker as work
    from gateway.db.schema import SchemaError
    from gateway.partners import PartnersError

    configure_logging(args.log_level)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(args.log_level, settings.logging.format)
    if _no_partners(settings, args.allow_empty):
        return EXIT_CONFIG
    _fast_event_loop()
    try:
        asyncio.run(work(settings, _partners_loader(args.allow_empty)))
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
