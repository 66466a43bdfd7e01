"""``gateway sftp``: SFTP helpers that need no running service.

    gateway sftp hash-password

reads a password from standard input (one line; asked twice without echo on a
terminal) and prints its hash for a hosted partner's profile::

    [sftp]
    mode = "hosted"
    password_hash = "scrypt$16384$8$1$...$..."

The password never appears on the command line, in the process list or in a log,
and the profile holds only the hash (gateway.passwords: scrypt with a random salt).
Exit codes: 0 printed, 1 refused (too short or too long).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.passwords import MAX_PASSWORD, MIN_PASSWORD, hash_password
from gateway.users_cli import read_password

EXIT_REFUSED = 1


def add_sftp_command(subparsers: Any) -> None:
    parser = subparsers.add_parser("sftp", help="SFTP helpers (hash-password)")
    sub = parser.add_subparsers(dest="sftp_command", required=True, metavar="SUBCOMMAND")
    hashing = sub.add_parser(
        "hash-password",
        help="print the password_hash of a password read from standard input, for a hosted partner's [sftp]",
    )
    hashing.set_defaults(func=run_hash_password)


def run_hash_password(args: argparse.Namespace) -> int:
    try:
        password = read_password()
    except ValueError as exc:  # the two passwords typed differ
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        print(f"gateway: the password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters", file=sys.stderr)
        return EXIT_REFUSED
    print(hash_password(password))
    return 0
