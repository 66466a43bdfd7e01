"""``gateway certs new`` and ``gateway certs show``, and the certificate lines of
``gateway partners check``.

``certs new`` writes a fresh RSA key (mode 0600) and a self-signed certificate for
it, never over an existing file. ``certs show`` lists our certificates (``[as2]`` in
gateway.toml) and every partner's with the days each has left; expired and
soon-expiring ones are marked. Offline: no server, no database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from pathlib import Path
from typing import Any

import as2
from gateway.as2_settings import EXPIRY_WARNING_DAYS, As2ConfigError, load_local


def add_certs_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = commands.add_parser("certs", help="AS2 keys and certificates")
    sub = certs.add_subparsers(dest="certs_command", required=True, metavar="SUBCOMMAND")
    new = sub.add_parser("new", help="write a new key and self-signed certificate")
    new.add_argument("--cn", required=True, help="the certificate's common name (e.g. our AS2 id)")
    new.add_argument("--days", type=int, default=730, help="validity in days (default 730)")
    new.add_argument(
        "--out", type=Path, default=Path("."), metavar="DIR", help="folder to write to (default .)"
    )
    new.set_defaults(func=run_certs_new)
    show = sub.add_parser("show", help="our and every partner's certificates, with days to expiry")
    show.add_argument(
        "--config", type=Path, help="gateway settings TOML (default: $GATEWAY_CONFIG or ./gateway.toml)"
    )
    show.set_defaults(func=run_certs_show)


def run_certs_new(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("gateway: --days must be at least 1", file=sys.stderr)
        return 2
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.cn).strip("._") or "as2"
    out: Path = args.out
    key_path, cert_path = out / f"{stem}.key", out / f"{stem}.pem"
    for path in (key_path, cert_path):
        if path.exists():
            print(f"gateway: {path} exists; not overwritten", file=sys.stderr)
            return 2
    out.mkdir(parents=True, exist_ok=True)
    pair = as2.generate_self_signed(args.cn, days=args.days)
    key, cert = as2.key_pair_pem(pair)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    cert_path.write_bytes(cert)
    print(f"{key_path}: private key (keep it; mode 0600)")
    print(
        f"{cert_path}: certificate for {pair.certificate.subject.rfc4514_string()}, valid until "
        f"{pair.certificate.not_valid_after_utc:%Y-%m-%d}: send this one to partners"
    )
    return 0


def describe(cert: Any, now: dt.datetime) -> str:
    days = as2.days_until_expiry(cert, now)
    mark = " EXPIRED" if days < 0 else " (expires soon)" if days < EXPIRY_WARNING_DAYS else ""
    return (
        f"{cert.subject.rfc4514_string()}  serial {cert.serial_number:x}  until "
        f"{cert.not_valid_after_utc:%Y-%m-%d}  {days} day(s){mark}"
    )


def certificate_lines(
    settings: Any, directory: Any, now: dt.datetime | None = None
) -> tuple[list[str], list[str]]:
    """(one line per certificate, problems) for our keys and every partner's [as2]."""
    now = now or dt.datetime.now(dt.UTC)
    lines: list[str] = []
    problems: list[str] = []
    try:
        local = load_local(settings.as2)
    except As2ConfigError as exc:
        problems += [f"gateway settings: {e}" for e in exc.errors]
        local = None
    if local is not None:
        lines += [f"ours ({local.id}): {describe(pair.certificate, now)}" for pair in local.keys]
        if not local.keys:
            problems.append("gateway settings: as2.keys: no key pair: we can neither sign nor decrypt")
    for entry in directory.entries.values() if directory is not None else ():
        settings_as2 = entry.transport.as2
        if settings_as2 is None:
            continue
        if settings.as2 is None:
            problems.append(
                f"{entry.folder}: as2: partner {entry.profile.id!r} uses AS2 but gateway settings have "
                "no [as2] table (our AS2 id and keys)"
            )
        for cert in settings_as2.loaded_certificates():
            lines.append(f"{entry.profile.id} ({settings_as2.id}): {describe(cert, now)}")
    return lines, problems


def run_certs_show(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, default_config_path, load_settings
    from gateway.partners import PartnersError, load_partners

    try:
        settings = load_settings(args.config if args.config is not None else default_config_path())
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    directory = None
    if Path(settings.partners_dir).is_dir():
        try:
            directory = load_partners(Path(settings.partners_dir))
        except PartnersError as exc:
            for line in exc.errors:
                print(line, file=sys.stderr)
            return 1
    lines, problems = certificate_lines(settings, directory)
    for line in lines:
        print(line)
    for line in problems:
        print(line, file=sys.stderr)
    if not lines and not problems:
        print("no AS2 certificates configured")
    return 1 if problems else 0
