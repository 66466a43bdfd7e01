"""``gateway users``: the people who may log in to the operations console.

    gateway users add NAME --role viewer|operator|admin [--config FILE]
    gateway users list [--config FILE]
    gateway users disable NAME | enable NAME [--config FILE]

``add`` reads the password from standard input (one line), or asks for it twice
without echo when standard input is a terminal. The password never appears on the
command line, in the process list or in a log. Works on the configured database
directly (an empty one gets the schema, like ``gateway serve`` would); safe while
the service runs. Each change is written to the audit log as done by ``cli``.
Exit codes: 0 done, 1 refused (the message says why), 2 bad configuration,
3 the database schema is not this gateway's.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any

EXIT_REFUSED, EXIT_CONFIG, EXIT_SCHEMA = 1, 2, 3


def add_users_command(subparsers: Any) -> None:
    parser = subparsers.add_parser("users", help="console users (add, list, disable, enable)")
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="SUBCOMMAND")

    def config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="gateway.toml (default: $GATEWAY_CONFIG, ./gateway.toml)")

    add = sub.add_parser("add", help="add a user; the password is read from standard input")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    config(add)
    add.set_defaults(func=run_users)
    listing = sub.add_parser("list", help="every user with role and state")
    config(listing)
    listing.set_defaults(func=run_users)
    for verb in ("disable", "enable"):
        p = sub.add_parser(verb, help=f"{verb} a user (disabling ends their sessions)")
        p.add_argument("name")
        config(p)
        p.set_defaults(func=run_users)


def read_password(stdin: Any = None) -> str:
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise _Refused("the two passwords differ")
        return first
    return str(stdin.readline()).rstrip("\r\n")


class _Refused(ValueError):  # gateway.sftp_cli catches it from read_password
    pass


def run_users(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, default_config_path, load_settings
    from gateway.db.schema import SchemaError

    try:
        settings = load_settings(args.config if args.config is not None else default_config_path())
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        password = read_password() if args.users_command == "add" else ""
        print(asyncio.run(_run(settings, args, password)))
    except SchemaError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    except _Refused as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


async def _run(settings: Any, args: argparse.Namespace, password: str) -> str:
    from gateway import users
    from gateway.db.engine import open_database
    from gateway.db.models import utcnow
    from gateway.db.schema import prepare_schema

    db = open_database(settings.effective_database_url)
    try:
        await prepare_schema(db)
        now = utcnow()
        command = args.users_command
        if command == "list":
            rows = await users.list_users(db)
            lines = [f"{'name':<30} {'role':<9} state"]
            lines += [
                f"{u['name']:<30} {u['role']:<9} {'disabled' if u['disabled'] else 'active'}" for u in rows
            ]
            return "\n".join(lines)
        if command == "add":
            try:
                await users.add_user(db, args.name, args.role, password, now=now)
            except users.UserError as exc:
                raise _Refused(str(exc)) from None
            await users.audit(
                db,
                actor="cli",
                action="user_add",
                target=args.name,
                outcome="ok",
                now=now,
                detail=f"role {args.role}",
            )
            return f"user {args.name} added ({args.role})"
        found = await users.set_disabled(db, args.name, command == "disable", now=now)
        if not found:
            raise _Refused(f"no user {args.name!r}")
        await users.audit(db, actor="cli", action=f"user_{command}", target=args.name, outcome="ok", now=now)
        return f"user {args.name} {command}d"
    finally:
        await db.close()
