"""Helpers for the AS2 tests: files for openssl, raw HTTP messages, pyas2lib objects."""

from __future__ import annotations

import subprocess
from pathlib import Path

from as2 import KeyPair, key_pair_pem
from as2.mime import parse_entity


def write_pair(directory: Path, name: str, pair: KeyPair) -> tuple[Path, Path]:
    key, cert = key_pair_pem(pair)
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(key)
    cert_path.write_bytes(cert)
    return key_path, cert_path


def openssl(*args: str | Path, data: bytes | None = None) -> bytes:
    """Run ``openssl cms``; returns stdout, fails the test with stderr on error."""
    result = subprocess.run(["openssl", "cms", *map(str, args)], input=data, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def entity_bytes(headers: dict[str, str], body: bytes) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n" + body


def split_http(raw: bytes) -> tuple[dict[str, str], bytes]:
    """An S/MIME file (headers, blank line, body) as HTTP headers and body."""
    entity = parse_entity(raw)
    return dict(entity.headers.fields), entity.body


def pyas2_key(pair: KeyPair) -> bytes:
    key, cert = key_pair_pem(pair, b"test")
    return key + cert


def pyas2_cert(pair: KeyPair) -> bytes:
    return key_pair_pem(pair)[1]
