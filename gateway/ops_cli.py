"""Operator commands against a running gateway's internal API:

    gateway messages search QUERY [--partner P] [--status S]
    gateway messages show ID
    gateway replay ID [--from translate|deliver|acknowledge] [--redeliver]
    gateway dead-letters list [--partner P] [--type T] [--kind K] [--older-than-hours N]
    gateway dead-letters replay ID | --partner P [--from translate|deliver]

The instance is ``--url`` (default ``http://<server.host>:<server.port>`` of the
configuration) and the token ``[api] token`` or the one the service generated in the
data dir. Replays need the service (its pipeline does the work); for the same reason
these commands never open the database behind a running service's back. Output is
a table for people; ``--json`` prints the API's JSON for scripts. Exit codes: 0 ok,
1 refused or not found (the API's answer is printed), 2 usage or no gateway there.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  gateway messages search PO-4500098765
  gateway messages show 01JEXAMPLE0000000000000000
  gateway replay 01JEXAMPLE0000000000000000
  gateway replay 01JEXAMPLE0000000000000000 --from deliver
  gateway dead-letters list --partner holdretail
  gateway dead-letters list --kind 856 --older-than-hours 4
  gateway dead-letters replay --partner holdretail
"""


class Unreachable(Exception):
    pass


def add_ops_commands(commands: Any) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--config", type=Path, help="gateway.toml (default: $GATEWAY_CONFIG, ./gateway.toml)"
        )
        parser.add_argument("--url", help="the gateway's base URL (default: from the configuration)")
        parser.add_argument("--json", action="store_true", help="print the API's JSON")

    messages = commands.add_parser(
        "messages",
        help="find and show messages of a running gateway",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = messages.add_subparsers(dest="messages_command", required=True)
    search = sub.add_parser(
        "search", help="messages by PO, shipment, invoice or control number, newest first"
    )
    search.add_argument("query", nargs="?", help="the number to look for (none: the latest messages)")
    search.add_argument("--partner")
    search.add_argument("--status")
    search.add_argument("--limit", type=int, default=50)
    common(search)
    search.set_defaults(func=run_search)
    show = sub.add_parser("show", help="one message with its timeline, documents and acknowledgments")
    show.add_argument("id")
    show.add_argument(
        "--documents", type=int, metavar="N", help="documents per page (API default 20; 0: none)"
    )
    show.add_argument("--documents-after", metavar="CURSOR", help="the page of documents after CURSOR")
    show.add_argument("--events", type=int, metavar="N", help="timeline events per page (API default 100)")
    show.add_argument("--events-after", metavar="CURSOR", help="the page of events after CURSOR")
    common(show)
    show.set_defaults(func=run_show)

    replay = commands.add_parser(
        "replay",
        help="run an inbound message again from its stored bytes",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("id")
    replay.add_argument(
        "--from",
        dest="stage",
        choices=("translate", "deliver", "acknowledge"),
        help="the stage to run again from (default translate: the stored raw bytes)",
    )
    replay.add_argument(
        "--redeliver", action="store_true", help="with --from deliver: also documents the ERP already has"
    )
    common(replay)
    replay.set_defaults(func=run_replay)

    dead = commands.add_parser(
        "dead-letters",
        help="list or replay what was given up on",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dsub = dead.add_subparsers(dest="dead_command", required=True)
    listing = dsub.add_parser("list", help="documents the ERP refused and outbox items a partner never took")
    listing.add_argument("--partner")
    listing.add_argument("--type", choices=("erp_document", "partner_delivery"))
    listing.add_argument("--kind", help="a transaction set (850, 856, 810, 997...) or a canonical kind")
    listing.add_argument("--older-than-hours", type=float, metavar="N")
    common(listing)
    listing.set_defaults(func=run_dead_list)
    again = dsub.add_parser("replay", help="replay one dead letter, or every one of a partner")
    again.add_argument("id", nargs="?")
    again.add_argument("--partner")
    again.add_argument(
        "--from",
        dest="stage",
        choices=("translate", "deliver"),
        help="an ERP document: translate again (default) or deliver the stored documents again",
    )
    common(again)
    again.set_defaults(func=run_dead_replay)
    from gateway.sftp_cli import add_sftp_command  # offline: no database, no API
    from gateway.users_cli import add_users_command  # console users: the database, not the API

    add_users_command(commands)
    add_sftp_command(commands)


# --------------------------------------------------------------------------- HTTP


def _target(args: argparse.Namespace) -> tuple[str, str]:
    from gateway.config import API_TOKEN_FILE, default_config_path, load_settings

    settings = load_settings(args.config if args.config is not None else default_config_path())
    host = settings.server.host
    url = args.url or f"http://{f'[{host}]' if ':' in host else host}:{settings.server.port}"
    if settings.api.token is not None:
        return url.rstrip("/"), settings.api.token.get_secret_value()
    path = settings.data_dir / API_TOKEN_FILE
    try:
        return url.rstrip("/"), path.read_text(encoding="utf-8").strip()
    except OSError:
        raise Unreachable(
            f"no API token: set [api] token or start the gateway once (it writes {path})"
        ) from None


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    base, token = _target(args)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        base + path,
        method=method,
        headers=headers,
        data=json.dumps(body).encode() if body is not None else b"" if method == "POST" else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, {"error": {"message": body.decode("utf-8", "replace")[:500]}}
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(
            f"no gateway answers at {base} ({getattr(exc, 'reason', exc)}); start it or pass --url"
        ) from None


def _command(func: Any) -> Any:
    """A command's body; no gateway answering (or no token) is exit 2 with one line."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except Unreachable as exc:
            print(f"gateway: {exc}", file=sys.stderr)
            return 2

    return run


def _refused(status: int, body: Any) -> int:
    message = (body or {}).get("error", {}).get("message", "") if isinstance(body, dict) else str(body)
    print(f"gateway: HTTP {status}: {message}", file=sys.stderr)
    return 1


def _query(**params: Any) -> str:
    from urllib.parse import urlencode

    given = {k: v for k, v in params.items() if v is not None}
    return f"?{urlencode(given)}" if given else ""


# --------------------------------------------------------------------------- commands


@_command
def run_search(args: argparse.Namespace) -> int:
    status, body = _call(
        args,
        "GET",
        "/api/v1/messages" + _query(q=args.query, partner=args.partner, status=args.status, limit=args.limit),
    )
    if status != 200:
        return _refused(status, body)
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    items = body.get("items", [])
    for m in items:
        print(
            f"{m['id']}  {m['direction']:<3} {m.get('partner_id') or '-':<16} {m['channel']:<5} "
            f"{m['kind']:<9} {m['status']:<16} {m['received_at'][:19]}  {(m.get('reason') or '')[:60]}"
        )
    if not items:
        print("no messages found", file=sys.stderr)
    return 0


@_command
def run_show(args: argparse.Namespace) -> int:
    query = _query(
        documents_limit=args.documents,
        documents_cursor=args.documents_after,
        events_limit=args.events,
        events_cursor=args.events_after,
    )
    status, body = _call(args, "GET", f"/api/v1/messages/{args.id}{query}")
    if status != 200:
        return _refused(status, body)
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    for line in _message_lines(body):
        print(line)
    return 0


def _message_lines(m: dict[str, Any]) -> list[str]:
    """A message's detail for people: one page of timeline and documents, and the
    command that shows the next page."""
    counts = m.get("counts", {})
    lines = [
        f"{m['id']}  {m['direction']} {m.get('partner_id') or '-'}  {m['channel']}  {m['kind']}  "
        f"{m['status']}  {m.get('size', 0)} bytes  received {m['received_at'][:19]}"
    ]
    if m.get("reason"):
        lines.append(f"reason: {m['reason']}")
    progress = m.get("progress")
    if progress:
        total = progress.get("sets_total")
        lines.append(
            f"progress: {progress['sets_translated']} of {total if total is not None else '?'} sets translated"
        )
    step = m.get("next_step")
    if step:
        error = f": {step['last_error']}" if step.get("last_error") else ""
        lines.append(f"next step: {step['step']} ({step['state']}, attempt {step['attempts']}){error}")
    timeline = m.get("timeline", [])
    lines.append(f"timeline ({len(timeline)} of {counts.get('events', len(timeline))}):")
    lines += [f"  {e['at'][:19]}  {e['state']}" for e in timeline]
    if m.get("events_next"):
        lines.append(f"  more: gateway messages show {m['id']} --events-after {m['events_next']}")
    documents = m.get("documents", [])
    lines.append(f"documents ({len(documents)} of {counts.get('documents', len(documents))}):")
    lines += [
        f"  {d['seq']:>5}  {d['kind']:<9} {d.get('business_number') or '-':<24} {d['status']:<10} "
        f"{(d.get('last_error') or '')[:60]}"
        for d in documents
    ]
    if m.get("documents_next"):
        lines.append(f"  more: gateway messages show {m['id']} --documents-after {m['documents_next']}")
    issued = m.get("acks", {}).get("issued", [])
    if issued:
        lines.append("acks issued: " + ", ".join(f"{a['kind']} {a['status']}" for a in issued))
    return lines


@_command
def run_replay(args: argparse.Namespace) -> int:
    if args.redeliver and args.stage != "deliver":
        print("gateway replay: --redeliver goes with --from deliver", file=sys.stderr)
        return 2
    ask = {"from": args.stage, **({"redeliver": True} if args.redeliver else {})} if args.stage else None
    status, body = _call(args, "POST", f"/api/v1/messages/{args.id}/replay", ask)
    if status not in (200, 202):
        return _refused(status, body)
    said = f"{args.id}: replaying" + (f" from {args.stage}" if args.stage else "")
    print(json.dumps(body) if args.json else said)
    return 0


def _dead_letters(args: argparse.Namespace) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    while True:
        query = _query(
            after=after,
            limit=500,
            partner=args.partner,
            type=getattr(args, "type", None),
            kind=getattr(args, "kind", None),
            older_than_hours=getattr(args, "older_than_hours", None),
        )
        status, body = _call(args, "GET", "/api/v1/dead-letters" + query)
        if status != 200:
            raise Unreachable(f"the dead-letter list answered HTTP {status}")
        items += body.get("items", [])
        after = body.get("next")
        if not after:
            break
    return items


@_command
def run_dead_list(args: argparse.Namespace) -> int:
    items = _dead_letters(args)
    if args.json:
        print(json.dumps({"items": items}, indent=2))
        return 0
    for i in items:
        what = i.get("business_number") or i.get("kind") or ""
        print(
            f"{i['id']}  {i.get('partner_id') or '-':<16} {i.get('type', '')[:8]:<8} {what!s:<24} "
            f"{(i.get('last_error') or '')[:80]}"
        )
    if not items:
        print("no dead letters", file=sys.stderr)
    return 0


@_command
def run_dead_replay(args: argparse.Namespace) -> int:
    if bool(args.id) == bool(args.partner):
        print("gateway dead-letters replay: give one dead letter's ID or --partner P", file=sys.stderr)
        return 2
    ids = [args.id] if args.id else [i["id"] for i in _dead_letters(args)]
    failed = 0
    for item_id in ids:
        ask = {"from": args.stage} if args.stage else None
        status, body = _call(args, "POST", f"/api/v1/dead-letters/{item_id}/replay", ask)
        if status not in (200, 202):
            failed += _refused(status, body)
        else:
            print(f"{item_id}: {body.get('status', 'replaying')}")
    return 1 if failed else 0
