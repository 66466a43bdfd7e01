"""``gateway orders show PARTNER PO [--config FILE] [--json] [--at TIME]``: an order's chain,
state, quantities per line and exceptions, read from the configured database
(the same answer as ``GET /api/v1/orders/{partner}/{po}``, see docs/orders.md).

It only reads: safe while the service runs, on SQLite too. Exit 0 with the order,
1 when no document names that PO for that partner, 2 for a bad configuration,
3 when the database schema is not at this gateway's revision.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

EXIT_NOT_FOUND, EXIT_CONFIG, EXIT_SCHEMA = 1, 2, 3


def add_orders_command(subparsers: Any) -> None:
    orders = subparsers.add_parser(
        "orders", help="the order lifecycle (an order's documents, state, exceptions)"
    )
    sub = orders.add_subparsers(dest="orders_command", required=True, metavar="SUBCOMMAND")
    show = sub.add_parser("show", help="one order of one partner")
    show.add_argument("partner_id")
    show.add_argument("po_number")
    show.add_argument("--config", type=Path, help="gateway.toml (default: $GATEWAY_CONFIG, ./gateway.toml)")
    show.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    show.add_argument(
        "--at", type=_when, help="derive the time-based exceptions as of this ISO date-time (default: now)"
    )
    show.set_defaults(func=run_orders_show)


def run_orders_show(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, default_config_path, load_settings

    try:
        settings = load_settings(args.config if args.config is not None else default_config_path())
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        view = asyncio.run(_view(settings, args.partner_id, args.po_number, args.at))
    except _SchemaProblem as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    if view is None:
        print(f"gateway: no order {args.po_number!r} of partner {args.partner_id!r}", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(json.dumps(view, indent=2) if args.json else render_table(view))
    return 0


class _SchemaProblem(Exception):
    pass


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("needs a time zone (e.g. 2024-03-15T12:00:00Z)")
    return value


async def _view(settings: Any, partner_id: str, po: str, at: datetime | None) -> dict[str, Any] | None:
    from gateway import orders
    from gateway.bootstrap import load_partner_directory
    from gateway.db.engine import open_database
    from gateway.db.models import utcnow
    from gateway.db.schema import current_revision, head_revision

    db = open_database(settings.effective_database_url)
    try:
        revision, head = await current_revision(db), head_revision()
        if revision != head:
            raise _SchemaProblem(
                f"the database schema is at revision {revision or 'empty'}, this gateway needs {head}"
            )
        try:
            directory = load_partner_directory(settings)
        except Exception:  # thresholds fall back to the defaults; the chain is still worth showing
            directory = None
        policy = orders.policy_of(directory, partner_id)
        async with db.read() as conn:
            return await orders.order_view(conn, partner_id, po, now=at or utcnow(), policy=policy)
    finally:
        await db.close()


def render_table(view: dict[str, Any]) -> str:
    """The order for a terminal: header, lines, documents, acknowledgments, exceptions."""
    out = [f"order {view['po_number']} of {view['partner_id']}: {view['state']}", ""]
    out += _table(
        ["line", "product ids", "ordered", "shipped", "invoiced"],
        [
            [
                line["line_number"] or "-",
                ", ".join(f"{k}={v}" for k, v in line["product_ids"].items()) or "-",
                line["ordered"],
                line["shipped"],
                line["invoiced"],
            ]
            for line in view["lines"]
        ],
    )
    out.append("")
    out += _table(
        ["at", "document", "dir", "number", "status", "message"],
        [
            [
                d["at"],
                d["kind"],
                d["direction"],
                d["business_number"] or "-",
                d.get("message_status") or d.get("status", ""),
                d["message_id"],
            ]
            for d in view["documents"]
        ],
    )
    if view["acknowledgments"]:
        out.append("")
        out += _table(
            ["at", "ack", "dir", "about message", "status"],
            [
                [a["at"], a["kind"] or "-", a["direction"], a["about_message_id"], a["status"]]
                for a in view["acknowledgments"]
            ],
        )
    out += [""]
    if view["exceptions"]:
        out += _table(
            ["exception", "open", "since", "subject", "documents"],
            [
                [
                    e["kind"],
                    "yes" if e["open"] else "closed",
                    e["since"],
                    e.get("subject") or "-",
                    " ".join(e["documents"]),
                ]
                for e in view["exceptions"]
            ],
        )
    else:
        out.append("no exceptions")
    return "\n".join(out)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    return [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
