"""SSH keys for the SFTP transport: our drop box's host key, a polled partner's
private key, and public-key lines from profiles compared with what a peer presents.

Keys are compared by type and key blob, never by comment. This module never
accepts a key it was not given: there is no "learn on first use".
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

HOST_KEY_FILE = ".host_key"  # a dot: never a partner id (their boxes share the folder)


class SshKeyError(Exception):
    """A key file or line that cannot be used; the message says why."""


def load_private_key(path: Path) -> paramiko.PKey:
    """The private key in ``path`` (OpenSSH or PEM, ed25519, ECDSA or RSA, no passphrase)."""
    if not path.is_file():
        raise SshKeyError(f"{path} not found")
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise SshKeyError(
            f"{path} is protected by a passphrase; the gateway needs a key without one"
        ) from None
    except (paramiko.SSHException, OSError, ValueError, TypeError) as exc:
        raise SshKeyError(f"{path} is not a private key paramiko can read ({exc})") from None


def blob_of(line: str) -> tuple[str, bytes]:
    """(type, key blob) of an OpenSSH public-key line (validated by partner_settings)."""
    kind, b64 = line.split()[:2]
    return kind, base64.b64decode(b64)


def matches(key: paramiko.PKey, line: str) -> bool:
    """Whether ``key`` (as a peer presented it) is the key of ``line``."""
    _, blob = blob_of(line)
    return key.asbytes() == blob


def describe(key: paramiko.PKey) -> str:
    """A key as an OpenSSH line, for log lines that show what a peer presented."""
    return f"{key.get_name()} {key.get_base64()}"


def host_key_types(line: str) -> list[str]:
    """The host-key algorithms to offer so the server presents the pinned key's type."""
    kind, _ = blob_of(line)
    if kind == "ssh-rsa":
        return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    return [kind]


def ensure_host_key(directory: Path) -> paramiko.PKey:
    """Our drop box's ed25519 host key, made on first start and kept in ``directory``
    (mode 0600): partners pin it, so it must survive restarts."""
    path = directory / HOST_KEY_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # someone made it at the same moment: use theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
    return load_private_key(path)
