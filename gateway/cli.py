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
that module exists; see :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gateway.translate_cli import UsageError  # one line, exit 2 (light: standard library only)

# Imports are lazy on purpose: `gateway translate` must start in well under a second,
# so this module imports nothing of the service stack (SQLAlchemy, aiohttp,
# cryptography) and the commands import what they use when they run.
if TYPE_CHECKING:
    from gateway.partners import PartnerDirectory
    from translators.canonical import CanonicalDocument
    from translators.profile import OurIdentity, PartnerProfile

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_UNUSABLE = 2
EXIT_INTERNAL = 3


# --------------------------------------------------------------------------- parser


# Offline commands defined here: `gateway translate ...` builds a parser with only
# these, so it never imports the modules that register the service's commands.
OFFLINE_COMMANDS = frozenset({"translate", "ack", "render"})


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


def _add_settings_options(parser: argparse.ArgumentParser, *, partners: bool = True) -> None:
    parser.add_argument(
        "--config", type=Path, help="gateway settings TOML (default: $GATEWAY_CONFIG or ./gateway.toml)"
    )
    if partners:
        parser.add_argument(
            "--partners", type=Path, metavar="DIR", help="partners directory (default: from settings)"
        )


def _add_envelope_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now", type=_timestamp, help="ISO date-time for ISA09/ISA10 and GS04/GS05 (default: now)"
    )
    parser.add_argument(
        "--control-number",
        type=_control_number,
        default=1,
        metavar="N",
        help="first interchange/group control number (default 1)",
    )


def _add_duplicates_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="do not reject an interchange repeating the sender and ISA13 of an earlier one in the file "
        "(TA1 025; by default rejected unless the partner profile sets x12.reject_duplicates = false)",
    )


def add_partners_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    partners = commands.add_parser("partners", help="partner profiles")
    sub = partners.add_subparsers(dest="partners_command", required=True, metavar="SUBCOMMAND")
    check = sub.add_parser("check", help="validate every partner profile")
    check.add_argument(
        "dir", nargs="?", type=Path, metavar="DIR", help="partners directory (default: from settings)"
    )
    _add_settings_options(check, partners=False)
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
        type=_jobs,
        metavar="N",
        help="processes translating a big file's interchanges in parallel, output in input order "
        "(default: one per processor; 1: this process only)",
    )
    _add_duplicates_option(translate)
    _add_all_errors_option(translate)
    _add_settings_options(translate)
    translate.set_defaults(func=run_translate)


def add_ack_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ack = commands.add_parser("ack", help="the acknowledgments the gateway would send for an X12 file")
    ack.add_argument("file", metavar="FILE", help="X12 input ('-' for stdin)")
    ack.add_argument("--partner", metavar="ID", help="partner id (default: found from each ISA sender)")
    _add_duplicates_option(ack)
    _add_all_errors_option(ack)
    _add_settings_options(ack)
    _add_envelope_options(ack)
    ack.set_defaults(func=run_ack)


def _add_all_errors_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all-errors",
        action="store_true",
        help="print every segment and element error of a rejected set (default: the first three)",
    )


def _rejection(item: Any, args: argparse.Namespace) -> str:
    """Why a set was rejected: the engine's line, or every error with --all-errors."""
    from gateway.translate_cli import rejection

    return rejection(item, getattr(args, "all_errors", False))


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
    _add_settings_options(render)
    _add_envelope_options(render)
    render.set_defaults(func=run_render)


def _timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time, e.g. 2024-03-01T12:30: {text!r}") from None


def _jobs(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 64: {text!r}")
    return int(text)


def _control_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 999_999_999:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 999999999: {text!r}")
    return int(text)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_first_command(argv)).parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        _err(f"gateway: {exc}")
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
            _err(
                f"gateway: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
            )
        return EXIT_INTERNAL


def _err(line: str) -> None:
    print(line, file=sys.stderr)


# --------------------------------------------------------------------------- settings


def _settings(args: argparse.Namespace) -> Any:
    """The settings; for the offline commands, the defaults without gateway.config when
    nothing configures them (gateway.offline_settings)."""
    from gateway.offline_settings import ConfigError, unconfigured

    if args.command in OFFLINE_COMMANDS and (defaults := unconfigured(args.config)) is not None:
        return defaults
    try:
        from gateway.config import default_config_path, load_settings

        return load_settings(args.config if args.config is not None else default_config_path())
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _receivers(args: argparse.Namespace, settings: Any, partners: PartnerDirectory) -> Any:
    """Our ISA addresses for the receiver check, or None for no check. Offline
    commands check only against an identity someone configured (a configuration
    file is in use) and, like the service, not with ``[identity] check_receiver = false``."""
    from gateway.offline_settings import default_config_path

    configured = args.config is not None or default_config_path() is not None
    if not configured or not settings.identity.check_receiver:
        return None
    return partners.receivers


def _identity(settings: Any) -> OurIdentity:
    # Validated with the settings (gateway.config.IdentitySettings is the engine's model).
    return settings.identity.ours  # type: ignore[no-any-return]


def _partners(args: argparse.Namespace, settings: Any, identity: OurIdentity) -> PartnerDirectory:
    from gateway.partners import PartnerDirectory, PartnersError, load_partners

    directory: Path = args.partners if args.partners is not None else Path(settings.partners_dir)
    if args.partners is None and not directory.exists():
        return PartnerDirectory()  # no partners yet: translation still reads and validates
    try:
        return load_partners(directory, identity=identity)
    except PartnersError as exc:
        raise UsageError(
            f"the partners directory has {len(exc.errors)} error(s); run 'gateway partners check {directory}': "
            + exc.errors[0]
        ) from None


def _fixed_partner(args: argparse.Namespace, partners: PartnerDirectory) -> PartnerProfile | None:
    if args.partner is None:
        return None
    profile = partners.get(args.partner)
    if profile is None:
        known = ", ".join(sorted(p.id for p in partners)) or "none"
        raise UsageError(f"unknown partner {args.partner!r} (known: {known})")
    return profile


@contextmanager
def _open_input(name: str, *, binary: bool = True) -> Iterator[IO[Any]]:
    if name == "-":
        yield sys.stdin.buffer if binary else sys.stdin
        return
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"{name}: is a directory, not a file")
    try:
        handle = path.open("rb" if binary else "r", encoding=None if binary else "utf-8")
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot open: {exc.strerror or exc}") from None
    with handle:
        yield handle


# --------------------------------------------------------------------------- partners check


def run_partners_check(args: argparse.Namespace) -> int:
    from gateway.partners import check_partners, load_partners

    settings = _settings(args)
    identity = _identity(settings)
    directory: Path = args.dir if args.dir is not None else Path(settings.partners_dir)
    errors = check_partners(directory, identity=identity)
    if errors:
        for line in errors:
            _err(line)
        _err(f"{len(errors)} error(s) in {directory}")
        return EXIT_REJECTED
    partners = load_partners(directory, identity=identity)
    names = ", ".join(p.id for p in partners) or "none"
    print(f"{directory}: {len(partners)} partner profile(s) OK ({names})")
    from gateway.as2_cli import certificate_lines

    certificates, problems = certificate_lines(settings, partners)
    for line in certificates:
        print(f"  certificate {line}")
    for line in problems:
        _err(line)
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
    settings = _settings(args)
    partners = _partners(args, settings, _identity(settings))
    _fixed_partner(args, partners)
    receivers = _receivers(args, settings, partners)
    out = stdout_bytes()
    with _open_input(args.file) as source:
        rejected = translate_file(
            source,  # type: ignore[arg-type]  # a binary file object, read like BinaryIO
            _options(args),
            partners,
            receivers,
            out=out,
            err=_err,
            jobs=args.jobs if args.jobs is not None else default_jobs(),
        )
    out.flush()
    return EXIT_REJECTED if rejected else EXIT_OK


# --------------------------------------------------------------------------- ack


def run_ack(args: argparse.Namespace) -> int:
    settings = _settings(args)
    identity = _identity(settings)
    partners = _partners(args, settings, identity)
    _fixed_partner(args, partners)
    now = args.now or datetime.now().astimezone()
    control = args.control_number
    rejected = 0
    with _open_input(args.file) as source:
        from gateway.domain.acks import AckDue, ack_receiver, ack_sender, assemble_acks
        from translators.engine import TranslatedInterchange

        receivers = _receivers(args, settings, partners)
        for item in _translated(args, partners, source, receivers):
            if not isinstance(item, TranslatedInterchange):
                if not item.outcome.accepted:
                    rejected += 1
                    if args.all_errors:
                        _err(f"{_where(item)}: {_rejection(item, args)}")
                continue
            header = item.outcome.header
            sender = f"{header.sender_qualifier.strip()}/{header.sender_id.strip()}"
            if item.outcome.notes or any(g.errors for g in item.outcome.groups):
                rejected += 1
            if item.profile is None:
                # The service quarantines an unknown sender and answers nothing.
                _err(
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
                _err(f"interchange {header.control_number.strip()} from {sender}: no acknowledgment due")
                continue
            sys.stdout.write(acks.text)
            control += 1
    sys.stdout.flush()
    return EXIT_REJECTED if rejected else EXIT_OK


# --------------------------------------------------------------------------- prune


def add_prune_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prune = commands.add_parser("prune", help="delete what the retention settings ([storage]) let go, once")
    prune.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    _add_settings_options(prune, partners=False)
    prune.set_defaults(func=run_prune)


def run_prune(args: argparse.Namespace) -> int:
    """Prune once (gateway.retention). On SQLite it takes the data dir lock, so it
    refuses (exit 2) while ``gateway serve`` runs there (the service prunes itself
    every ``storage.prune_interval_minutes``); ``--dry-run`` only reads and never
    needs the lock."""
    import asyncio

    from gateway import retention

    settings = _settings(args)
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
    print(report.orders_line(would))
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
            _err(
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


# --------------------------------------------------------------------------- render


def _read_documents(args: argparse.Namespace) -> list[CanonicalDocument]:
    import json

    from pydantic import ValidationError

    from translators.canonical import CanonicalDocument

    name = "stdin" if args.file == "-" else args.file
    with _open_input(args.file, binary=False) as handle:
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

    settings = _settings(args)
    identity = _identity(settings)
    partners = _partners(args, settings, identity)
    profile = _fixed_partner(args, partners)
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
            _err(f"cannot render for {profile.id}: {exc}")
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
        _err(f"cannot render for {profile.id}: {exc.__cause__}")
        return EXIT_REJECTED
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_OK
