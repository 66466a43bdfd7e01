"""The Message Integrity Check (RFC 4130 §7.3.1) and micalg names.

Senders spell digest names in two generations: RFC 3851 ``sha1``/``sha256`` and
RFC 5751 ``sha-1``/``sha-256``; some in upper case. This module maps every spelling
to one internal name and back, reads ``Disposition-Notification-Options`` and computes
MIC values. It must never decide *what* bytes the MIC covers: unwrap and build do.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import StrEnum

from as2.cms import HASHES, digest


class MicalgSpelling(StrEnum):
    RFC5751 = "rfc5751"  # sha-256
    RFC3851 = "rfc3851"  # sha256


DEFAULT_ALGORITHM = "sha256"


def normalize_algorithm(name: str) -> str | None:
    """``SHA-256`` / ``sha256`` / ``rsa-sha256`` → ``sha256``; None when unknown."""
    key = name.strip().strip('"').lower().replace("-", "").replace("_", "")
    key = key.removeprefix("rsa")
    return key if key in HASHES else None


def spell(algorithm: str, spelling: MicalgSpelling = MicalgSpelling.RFC5751) -> str:
    """The micalg token for an internal name (``sha256`` → ``sha-256`` in RFC 5751)."""
    if spelling is MicalgSpelling.RFC5751 and algorithm.startswith("sha"):
        return "sha-" + algorithm[3:]
    return algorithm


@dataclass(frozen=True, slots=True)
class Mic:
    """A MIC: base64 ``value`` and the ``algorithm`` token as it goes on the wire."""

    value: str
    algorithm: str

    def header_value(self) -> str:
        return f"{self.value}, {self.algorithm}"

    def matches(self, other: Mic) -> bool:
        """Same digest, whatever spelling each side used for the algorithm."""
        return self.value == other.value and normalize_algorithm(self.algorithm) == normalize_algorithm(
            other.algorithm
        )


def compute(data: bytes, algorithm: str = DEFAULT_ALGORITHM, token: str | None = None) -> Mic:
    """MIC of ``data``; ``token`` is the spelling to report (defaults to RFC 5751)."""
    name = normalize_algorithm(algorithm) or DEFAULT_ALGORITHM
    return Mic(base64.b64encode(digest(name, data)).decode("ascii"), token or spell(name))


def parse_mic(value: str) -> Mic | None:
    """Read a Received-Content-MIC field (``value, algorithm``)."""
    mic, _, algorithm = value.partition(",")
    if not mic.strip():
        return None
    return Mic(mic.strip(), algorithm.strip() or DEFAULT_ALGORITHM)


@dataclass(frozen=True, slots=True)
class ReceiptRequest:
    """What Disposition-Notification-Options asks for: a signed receipt, and the
    micalg tokens in the sender's order of preference (as spelled by the sender)."""

    signed: bool
    micalgs: tuple[str, ...]
    required: bool = False

    def chosen_micalg(self) -> str:
        """The first token we support, as the sender spelled it (default sha-256)."""
        for token in self.micalgs:
            if normalize_algorithm(token):
                return token
        return spell(DEFAULT_ALGORITHM)


def parse_disposition_options(value: str | None) -> ReceiptRequest:
    """Parse ``signed-receipt-protocol=optional, pkcs7-signature;
    signed-receipt-micalg=optional, sha-256, sha1`` (case and spacing tolerant)."""
    signed, required = False, False
    micalgs: tuple[str, ...] = ()
    for clause in (value or "").split(";"):
        name, eq, rest = clause.partition("=")
        if not eq:
            continue
        items = [item.strip() for item in rest.split(",") if item.strip()]
        importance = items[0].lower() if items else ""
        if importance in ("required", "optional"):
            items = items[1:]
        key = name.strip().lower()
        if key == "signed-receipt-protocol":
            signed = any(i.lower() == "pkcs7-signature" for i in items)
            required = required or importance == "required"
        elif key == "signed-receipt-micalg":
            micalgs = tuple(items)
    return ReceiptRequest(signed, micalgs, required)


def disposition_options(micalg: str = "sha-256", *, importance: str = "optional") -> str:
    """The Disposition-Notification-Options value asking for a signed receipt."""
    return (
        f"signed-receipt-protocol={importance}, pkcs7-signature; signed-receipt-micalg={importance}, {micalg}"
    )
