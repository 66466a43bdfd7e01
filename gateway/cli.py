"""The ``gateway`` command line (also ``python -m gateway``).

Offline commands, no server and no database needed:

    gateway partners check [DIR]                  validate every partner profile
    gateway translate FILE [--partner ID]         canonical JSON Lines on stdout
    gateway ack FILE [--partner ID]               the TA1/997/999 the gateway would send
    gateway render --partner ID FILE.json         X12 for canonical document(s)
    gateway certs new --cn NAME [--days N] [--out DIR]   an AS2 key and self-signed certificate
    gateway certs show                            our and partners' AS2 certificates, days to expiry

Maintenance (reads the service's database and raw store):

    gateway prune [--dry-run]                     apply the retention settings once

Exit codes: 0 all accepted / valid, 1 something was rejected or invalid (explained on
stderr, one line each), 2 unusable input or arguments (one line on stderr saying
what and where, never a traceback), 3 an internal error (a bug: rerun with
``--debug`` for the traceback).

Our own identity and the partners directory come from the gateway settings
(``--config``, else ``$GATEWAY_CONFIG``, else ``./gateway.toml``, else the embedded
defaults), exactly as the service reads them, so ``gateway ack`` prints what the
service would answer. Offline there is no control-number store: interchange and
group control numbers start at 1 (``--control-number``) and the clock is the current
time unless ``--now`` pins it (for reproducible output).

Service commands (``serve``, ``db``) are registered by ``gateway.service_cli`` when
that module exists; see :func:`build_parser`. ``render`` is gateway.render_cli,
``prune`` gateway.prune_cli, and what the offline commands share (exit codes,
options, settings, input) gateway.cli_shared.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gateway.cli_shared import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNUSABLE,
    OFFLINE_COMMANDS,
    add_all_errors_option,
    add_duplicates_option,
    add_envelope_options,
    add_settings_options,
    err,
    fixed_partner,
    identity_of,
    job_count,
    open_input,
    partners_of,
    receivers_of,
    settings_of,
)
from gateway.prune_cli import add_prune_command
from gateway.render_cli import add_render_command
from gateway.translate_cli import UsageError  # one line, exit 2 (light: standard library only)

# Imports are lazy on purpose: `gateway translate` must start in well under a second,
# so this module imports nothing of the service stack (SQLAlchemy, aiohttp,
# cryptography) and the commands import what they use when they run.
if TYPE_CHECKING:
    from gateway.partners import PartnerDirectory

__all__ = ["EXIT_INTERNAL", "EXIT_OK", "EXIT_REJECTED", "EXIT_UNUSABLE", "build_parser", "main"]


# --------------------------------------------------------------------------- parser


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; with ``command`` one of :data:`OFFLINE_COMMANDS`,
    only those (what `main` does for a fast start)."""
    parser = argparse.ArgumentParser(prog="gateway", description="B2B/EDI partner gateway")
    parser.add_argument("--debug", action="store_true", help="show the traceback of internal errors")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command in OFFLINE_COMMANDS:
        add_translate_command(commands)
        add_ack_command(commands)
        add_render_command(commands)
        return parser
    add_partners_command(commands)
    add_translate_command(commands)
    add_ack_command(commands)
    add_render_command(commands)
    add_service_commands(commands)
    add_prune_command(commands)
    from gateway.as2_cli import add_certs_command
    from gateway.coverage_cli import add_coverage_command
    from gateway.ops_cli import add_ops_commands

    for add in (add_ops_commands, add_certs_command, add_coverage_command):
        add(commands)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        print(f"gateway {_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def _first_command(argv: list[str]) -> str | None:
    """The command word of ``argv`` (its first argument not starting with '-')."""
    return next((a for a in argv if not a.startswith("-")), None)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edi-gateway")
    except PackageNotFoundError:
        return "unknown (not installed)"


def add_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The place where ``serve`` and ``db`` join: ``gateway/service_cli.py`` (owned by
    the service engineer) defines ``add_service_commands(subparsers)``; each command it
    adds sets ``func`` (``args -> int``) with ``set_defaults``."""
    if importlib.util.find_spec("gateway.service_cli") is None:
        return
    service_cli = importlib.import_module("gateway.service_cli")
    service_cli.add_service_commands(commands)


def add_partners_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    partners = commands.add_parser("partners", help="partner profiles")
    sub = partners.add_subparsers(dest="partners_command", required=True, metavar="SUBCOMMAND")
    check = sub.add_parser("check", help="validate every partner profile")
    check.add_argument(
        "dir", nargs="?", type=Path, metavar="DIR", help="partners directory (default: from settings)"
    )
    add_settings_options(check, partners=False)
    check.set_defaults(func=run_partners_check)


def add_translate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    translate = commands.add_parser("translate", help="X12 file to canonical JSON Lines")
    translate.add_argument("file", metavar="FILE", help="X12 input ('-' for stdin)")
    translate.add_argument("--partner", metavar="ID", help="partner id (default: found from each ISA sender)")
    translate.add_argument(
        "--unknown-senders",
        action="store_true",
        help="map the sets of senders no profile matches with default rules (partner_id null): "
        "a first look at a new partner's samples",
    )
    translate.add_argument(
        "--jobs",
        type=job_count,
        metavar="N",
        help="processes translating a big file's interchanges in parallel, output in input order "
        "(default: one per processor; 1: this process only)",
    )
    add_duplicates_option(translate)
    add_all_errors_option(translate)
    add_settings_options(translate)
    translate.set_defaults(func=run_translate)


def add_ack_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ack = commands.add_parser("ack", help="the acknowledgments the gateway would send for an X12 file")
    ack.add_argument("file", metavar="FILE", help="X12 input ('-' for stdin)")
    ack.add_argument("--partner", metavar="ID", help="partner id (default: found from each ISA sender)")
    add_duplicates_option(ack)
    add_all_errors_option(ack)
    add_settings_options(ack)
    add_envelope_options(ack)
    ack.set_defaults(func=run_ack)


def _rejection(item: Any, args: argparse.Namespace) -> str:
    """Why a set was rejected: the engine's line, or every error with --all-errors."""
    from gateway.translate_cli import rejection

    return rejection(item, getattr(args, "all_errors", False))


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_first_command(argv)).parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        err(f"gateway: {exc}")
        return EXIT_UNUSABLE
    except BrokenPipeError:
        # `gateway translate big.edi | head`: the reader went away; not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            import traceback

            traceback.print_exc()
        else:
            err(
                f"gateway: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
            )
        return EXIT_INTERNAL


# --------------------------------------------------------------------------- partners check


def run_partners_check(args: argparse.Namespace) -> int:
    from gateway.partners import check_partners, load_partners

    settings = settings_of(args)
    identity = identity_of(settings)
    directory: Path = args.dir if args.dir is not None else Path(settings.partners_dir)
    errors = check_partners(directory, identity=identity)
    if errors:
        for line in errors:
            err(line)
        err(f"{len(errors)} error(s) in {directory}")
        return EXIT_REJECTED
    partners = load_partners(directory, identity=identity)
    names = ", ".join(p.id for p in partners) or "none"
    print(f"{directory}: {len(partners)} partner profile(s) OK ({names})")
    from gateway.as2_cli import certificate_lines

    certificates, problems = certificate_lines(settings, partners)
    for line in certificates:
        print(f"  certificate {line}")
    for line in problems:
        err(line)
    return EXIT_REJECTED if problems else EXIT_OK


# --------------------------------------------------------------------------- translate


def _where(item: Any) -> str:
    from gateway.translate_cli import where

    return where(item)


def _options(args: argparse.Namespace) -> Any:
    from gateway.translate_cli import TranslateOptions

    return TranslateOptions(
        name="stdin" if args.file == "-" else args.file,
        partner=args.partner,
        allow_duplicates=args.allow_duplicates,
        unknown_senders=getattr(args, "unknown_senders", False),
        all_errors=args.all_errors,
    )


def _translated(
    args: argparse.Namespace,
    partners: PartnerDirectory,
    source: IO[bytes],
    receivers: Any = None,
) -> Iterator[Any]:
    """The engine's results (gateway.translate_cli.translated)."""
    from gateway.translate_cli import translated

    return translated(source, _options(args), partners, receivers)  # type: ignore[arg-type]


def run_translate(args: argparse.Namespace) -> int:
    from gateway.grammar_cache import use_grammar_cache
    from gateway.translate_cli import default_jobs, stdout_bytes, translate_file

    use_grammar_cache()  # compiled maps kept between runs: a small file starts fast
    settings = settings_of(args)
    partners = partners_of(args, settings, identity_of(settings))
    fixed_partner(args, partners)
    receivers = receivers_of(args, settings, partners)
    out = stdout_bytes()
    with open_input(args.file) as source:
        rejected = translate_file(
            source,  # type: ignore[arg-type]  # a binary file object, read like BinaryIO
            _options(args),
            partners,
            receivers,
            out=out,
            err=err,
            jobs=args.jobs if args.jobs is not None else default_jobs(),
        )
    out.flush()
    return EXIT_REJECTED if rejected else EXIT_OK


# --------------------------------------------------------------------------- ack


def run_ack(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    identity = identity_of(settings)
    partners = partners_of(args, settings, identity)
    fixed_partner(args, partners)
    now = args.now or datetime.now().astimezone()
    control = args.control_number
    rejected = 0
    with open_input(args.file) as source:
        from gateway.domain.acks import AckDue, ack_receiver, ack_sender, assemble_acks
        from translators.engine import TranslatedInterchange

        receivers = receivers_of(args, settings, partners)
        for item in _translated(args, partners, source, receivers):
            if not isinstance(item, TranslatedInterchange):
                if not item.outcome.accepted:
                    rejected += 1
                    if args.all_errors:
                        err(f"{_where(item)}: {_rejection(item, args)}")
                continue
            header = item.outcome.header
            sender = f"{header.sender_qualifier.strip()}/{header.sender_id.strip()}"
            if item.outcome.notes or any(g.errors for g in item.outcome.groups):
                rejected += 1
            if item.profile is None:
                # The service quarantines an unknown sender and answers nothing.
                err(
                    f"interchange {header.control_number.strip()}: no partner profile for sender {sender}: "
                    "the gateway quarantines it and sends no acknowledgment (use --partner to pick one)"
                )
                continue
            x12 = item.profile.x12
            # Each interchange of the file is answered on its own, numbered from
            # --control-number (the service answers a whole message at once).
            us = ack_sender(header, item.profile)  # one of the profile's our_ids, or None
            acks = assemble_acks(
                [AckDue.of(item)],
                ta1=x12.ta1,
                sender=us or (identity.interchange_qualifier, identity.interchange_id),
                # --partner may pick a profile for a file from another ISA address (a
                # sample from their test system, say): then the partner's own address.
                receiver=ack_receiver(header, item.profile),
                group_sender=us[1] if us else identity.group_id,
                group_receiver=x12.group_id,
                interchange_control=control,
                group_control=control,
                now=now,
            ).ack
            if acks is None:
                err(f"interchange {header.control_number.strip()} from {sender}: no acknowledgment due")
                continue
            sys.stdout.write(acks.text)
            control += 1
    sys.stdout.flush()
    return EXIT_REJECTED if rejected else EXIT_OK
