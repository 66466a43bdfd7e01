"""What the offline commands of ``gateway`` (gateway.cli, gateway.render_cli,
gateway.prune_cli) share: their exit codes, their common options, and how they
read the settings, the partners directory and their input file.

Like gateway.cli, it imports nothing of the service stack at module level: the
settings and partners modules are imported when a command runs (`gateway
translate` must start fast; decision 0016).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gateway.translate_cli import UsageError  # one line, exit 2 (light: standard library only)

if TYPE_CHECKING:
    from gateway.partners import PartnerDirectory
    from translators.profile import OurIdentity, PartnerProfile

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_UNUSABLE = 2
EXIT_INTERNAL = 3

# Offline commands: `gateway translate ...` builds a parser with only these, so it
# never imports the modules that register the service's commands; without a
# configuration they run on the embedded defaults (:func:`settings_of`).
OFFLINE_COMMANDS = frozenset({"translate", "ack", "render"})


# --------------------------------------------------------------------------- options


def add_settings_options(parser: argparse.ArgumentParser, *, partners: bool = True) -> None:
    parser.add_argument(
        "--config", type=Path, help="gateway settings TOML (default: $GATEWAY_CONFIG or ./gateway.toml)"
    )
    if partners:
        parser.add_argument(
            "--partners", type=Path, metavar="DIR", help="partners directory (default: from settings)"
        )


def add_envelope_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now", type=iso_timestamp, help="ISO date-time for ISA09/ISA10 and GS04/GS05 (default: now)"
    )
    parser.add_argument(
        "--control-number",
        type=control_number_option,
        default=1,
        metavar="N",
        help="first interchange/group control number (default 1)",
    )


def add_duplicates_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="do not reject an interchange repeating the sender and ISA13 of an earlier one in the file "
        "(TA1 025; by default rejected unless the partner profile sets x12.reject_duplicates = false)",
    )


def add_all_errors_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all-errors",
        action="store_true",
        help="print every segment and element error of a rejected set (default: the first three)",
    )


def iso_timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time, e.g. 2024-03-01T12:30: {text!r}") from None


def job_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 64: {text!r}")
    return int(text)


def control_number_option(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 999_999_999:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 999999999: {text!r}")
    return int(text)


# --------------------------------------------------------------------------- output


def err(line: str) -> None:
    print(line, file=sys.stderr)


# --------------------------------------------------------------------------- settings, partners, input


def settings_of(args: argparse.Namespace) -> Any:
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


def receivers_of(args: argparse.Namespace, settings: Any, partners: PartnerDirectory) -> Any:
    """Our ISA addresses for the receiver check, or None for no check. Offline
    commands check only against an identity someone configured (a configuration
    file is in use) and, like the service, not with ``[identity] check_receiver = false``."""
    from gateway.offline_settings import default_config_path

    configured = args.config is not None or default_config_path() is not None
    if not configured or not settings.identity.check_receiver:
        return None
    return partners.receivers


def identity_of(settings: Any) -> OurIdentity:
    # Validated with the settings (gateway.config.IdentitySettings is the engine's model).
    return settings.identity.ours  # type: ignore[no-any-return]


def partners_of(args: argparse.Namespace, settings: Any, identity: OurIdentity) -> PartnerDirectory:
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


def fixed_partner(args: argparse.Namespace, partners: PartnerDirectory) -> PartnerProfile | None:
    if args.partner is None:
        return None
    profile = partners.get(args.partner)
    if profile is None:
        known = ", ".join(sorted(p.id for p in partners)) or "none"
        raise UsageError(f"unknown partner {args.partner!r} (known: {known})")
    return profile


@contextmanager
def open_input(name: str, *, binary: bool = True) -> Iterator[IO[Any]]:
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
