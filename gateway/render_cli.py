"""``gateway render``: canonical JSON document(s) to X12 for a partner, offline
(no server, no database), with the partner's outbound hooks and the envelope the
service would write (control numbers from ``--control-number``, clock ``--now``).

An offline command: it imports what it uses when it runs (gateway.cli_shared).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.cli_shared import (
    EXIT_OK,
    EXIT_REJECTED,
    add_envelope_options,
    add_settings_options,
    err,
    fixed_partner,
    identity_of,
    open_input,
    partners_of,
    settings_of,
)
from gateway.translate_cli import UsageError  # one line, exit 2 (light: standard library only)

if TYPE_CHECKING:
    from translators.canonical import CanonicalDocument


def add_render_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    render = commands.add_parser("render", help="canonical JSON document(s) to X12 for a partner")
    render.add_argument(
        "file", metavar="FILE.json", help="a canonical document, or JSON Lines of them ('-' for stdin)"
    )
    render.add_argument("--partner", metavar="ID", required=True, help="the receiving partner")
    from gateway.domain.interchanges import FUNCTIONAL_ID_BY_KIND

    render.add_argument(
        "--kind",
        choices=sorted(FUNCTIONAL_ID_BY_KIND),
        help="the input is a bare document of this kind (not wrapped in {kind, document})",
    )
    add_settings_options(render)
    add_envelope_options(render)
    render.set_defaults(func=run_render)


def _read_documents(args: argparse.Namespace) -> list[CanonicalDocument]:
    import json

    from pydantic import ValidationError

    from translators.canonical import CanonicalDocument

    name = "stdin" if args.file == "-" else args.file
    with open_input(args.file, binary=False) as handle:
        try:
            text = handle.read()
        except UnicodeDecodeError as exc:
            raise UsageError(f"{name}: not UTF-8 text: {exc.reason} (at byte {exc.start})") from None
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{name}: empty, expected a canonical JSON document")
    # One JSON object (possibly indented), or JSON Lines (what `gateway translate` prints).
    chunks: list[tuple[int, str]]
    try:
        json.loads(stripped)
        chunks = [(1, stripped)]
    except json.JSONDecodeError:
        chunks = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    documents: list[CanonicalDocument] = []
    for line_number, chunk in chunks:
        where = f"{name}" if len(chunks) == 1 else f"{name}:{line_number}"
        try:
            data = json.loads(chunk)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{where}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        if args.kind is not None:
            data = {"kind": args.kind, "document": data}
        elif isinstance(data, dict) and "kind" not in data:
            raise UsageError(
                f'{where}: not a canonical document: no "kind" (expected {{"kind": ..., "document": {{...}}}}, '
                "or pass --kind for a bare document)"
            )
        try:
            documents.append(CanonicalDocument.model_validate(data))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            key = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise UsageError(
                f"{where}: not a canonical document: {key}: {first['msg']} ({exc.error_count()} error(s))"
            ) from None
    return documents


def run_render(args: argparse.Namespace) -> int:
    from gateway.domain.errors import RenderRefused
    from gateway.domain.interchanges import assemble_interchange

    settings = settings_of(args)
    identity = identity_of(settings)
    partners = partners_of(args, settings, identity)
    profile = fixed_partner(args, partners)
    assert profile is not None  # --partner is required
    documents = _read_documents(args)
    control = args.control_number

    entry = partners.entry(profile.id)
    if entry is not None and entry.hooks is not None:
        from gateway.hooks import HookError, outbound_document

        try:
            documents = [
                d.model_copy(
                    update={"document": outbound_document(entry.hooks, d.document, partner_id=profile.id)}
                )
                for d in documents
            ]
        except HookError as exc:
            err(f"cannot render for {profile.id}: {exc}")
            return EXIT_REJECTED
    # One group per functional id, in first-seen order; sets numbered 0001.. per group.
    try:
        text = assemble_interchange(
            documents,
            profile,
            identity,
            interchange_control=control,
            group_control=control,
            at=args.now or datetime.now().astimezone(),
        )
    except RenderRefused as exc:
        err(f"cannot render for {profile.id}: {exc.__cause__}")
        return EXIT_REJECTED
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_OK
