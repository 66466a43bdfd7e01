"""MIME entities on exact bytes: parse headers and bodies, split multiparts, build them.

This is the hot path of receiving, so it works on ``bytes`` with ``find`` and never
re-serialises what it read: a part's ``raw`` is the very bytes the sender put on the
wire, which is what a detached signature and the MIC are computed over. It accepts
LF or CRLF line ends, folded headers, quoted or bare parameters, and the transfer
encodings binary, 7bit, 8bit, base64 and quoted-printable.

It must never use the stdlib ``email`` package (slow, and it rewrites line ends and
headers) and never decode a body as text.
"""

from __future__ import annotations

import binascii
import functools
import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from as2.errors import LimitExceeded, MimeError

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_COUNT = 256

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed Content-Type: ``media_type`` is lower-cased ``type/subtype``; parameter
    names are lower-cased, values kept as sent (quotes removed)."""

    media_type: str
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.params:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Headers:
    """Header fields in order; look-ups are case-insensitive, values are unfolded text."""

    fields: tuple[tuple[str, str], ...] = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.fields:
            if key.lower() == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class MimeEntity:
    """One MIME entity: ``raw`` is headers + blank line + body exactly as received
    (empty header section allowed); ``body`` is the undecoded body, from
    ``body_start`` in ``raw``. The body is sliced when asked for, not kept beside
    ``raw``: on a 100 MB message every copy counts."""

    headers: Headers
    raw: bytes
    body_start: int = 0

    @property
    def body(self) -> bytes:
        return self.raw[self.body_start :] if self.body_start else self.raw

    @property
    def content_type(self) -> ContentType:
        return parse_content_type(self.headers.get("content-type") or "text/plain")

    def decoded_body(self) -> bytes:
        return decode_transfer_encoding(self.body, self.headers.get("content-transfer-encoding"))

    @property
    def filename(self) -> str | None:
        disposition = self.headers.get("content-disposition")
        if disposition:
            name = parse_content_type("x/x;" + disposition.partition(";")[2]).param("filename")
            if name:
                return name
        return self.content_type.param("name")


HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]]


def as_headers(value: HeadersLike) -> Headers:
    """Headers from a ``Headers``, a mapping (HTTP headers) or (name, value) pairs."""
    if isinstance(value, Headers):
        return value
    if isinstance(value, Mapping):
        return Headers(tuple((str(k), str(v)) for k, v in value.items()))
    return Headers(tuple((str(k), str(v)) for k, v in value))


@functools.lru_cache(maxsize=64)  # asked several times per entity; small and immutable
def parse_content_type(value: str) -> ContentType:
    """Parse ``type/subtype; a=b; c="d; e"``. Unparseable parameters are skipped."""
    media, _, rest = value.partition(";")
    params: list[tuple[str, str]] = []
    i, n = 0, len(rest)
    while i < n:
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip(" \t\r\n;").lower()
        j = eq + 1
        while j < n and rest[j] in " \t\r\n":
            j += 1
        if j < n and rest[j] == '"':
            out: list[str] = []
            j += 1
            while j < n and rest[j] != '"':
                if rest[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(rest[j])
                j += 1
            param_value = "".join(out)
            end = rest.find(";", j)
        else:
            end = rest.find(";", j)
            param_value = rest[j : n if end < 0 else end].strip()
        if name:
            params.append((name, param_value))
        i = n if end < 0 else end + 1
    return ContentType(media.strip().lower(), tuple(params))


def format_params(media_type: str, params: Sequence[tuple[str, str]], *, quote: bool = True) -> str:
    """Render a Content-Type-like value; values are quoted when ``quote`` or when needed."""
    parts = [media_type]
    for name, value in params:
        if quote or not _TOKEN.match(value):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{name}={value}")
    return "; ".join(parts)


def _header_end(data: bytes) -> tuple[int, int]:
    """(end of header section, start of body); raises when no blank line is found."""
    if data.startswith(b"\r\n"):
        return 0, 2
    if data.startswith(b"\n"):
        return 0, 1
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf < 0 and lf < 0:
        if len(data) > MAX_HEADER_BYTES:
            raise LimitExceeded(f"no end of headers within {MAX_HEADER_BYTES} bytes")
        raise MimeError("no blank line ends the MIME headers")
    if lf < 0 or (0 <= crlf < lf):
        return crlf, crlf + 4
    return lf, lf + 2


def parse_headers(block: bytes, *, max_count: int = MAX_HEADER_COUNT) -> Headers:
    """Parse a header section (no trailing blank line needed); folded lines are joined."""
    fields: list[tuple[str, str]] = []
    for line in block.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        text = line.decode("latin-1")
        if text[0] in " \t":
            if not fields:
                raise MimeError("header section starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, (value + " " + text.strip()).strip())
            continue
        name, colon, value = text.partition(":")
        name = name.strip()
        if not colon or not name or not _TOKEN.match(name):
            raise MimeError(f"malformed header line {text[:60]!r}")
        fields.append((name, value.strip()))
        if len(fields) > max_count:
            raise LimitExceeded(f"more than {max_count} header fields")
    return Headers(tuple(fields))


def parse_entity(data: bytes, *, max_header_bytes: int = MAX_HEADER_BYTES) -> MimeEntity:
    """Split ``data`` into headers and body, keeping the exact bytes."""
    end, body_start = _header_end(data[: max_header_bytes + 4])
    if end > max_header_bytes:
        raise LimitExceeded(f"MIME headers exceed {max_header_bytes} bytes")
    return MimeEntity(parse_headers(data[:end]), data, body_start)


def entity_from_headers(headers: Headers, body: bytes) -> MimeEntity:
    """An entity whose headers came separately (an HTTP request): ``raw`` is the body."""
    return MimeEntity(headers, body)


def split_multipart(
    body: bytes, boundary: str, *, max_header_bytes: int = MAX_HEADER_BYTES, start: int = 0
) -> list[MimeEntity]:
    """The parts of a multipart body, each with its exact bytes; the body is
    ``body[start:]`` (an entity's ``raw`` and ``body_start``: no copy of it).

    A part ends before the line break that precedes the next delimiter (CRLF, or a
    bare LF for LF-only senders). Preamble and epilogue are dropped.
    """
    if not boundary or len(boundary) > 200:
        raise MimeError("multipart without a usable boundary")
    delim = b"--" + boundary.encode("latin-1")
    positions: list[int] = []
    pos = start
    while True:
        hit = body.find(delim, pos)
        if hit < 0:
            break
        if hit == start or body[hit - 1 : hit] == b"\n":
            positions.append(hit)
            if body[hit + len(delim) : hit + len(delim) + 2] == b"--":
                break
        pos = hit + len(delim)
    if len(positions) < 2 or body[positions[-1] + len(delim) : positions[-1] + len(delim) + 2] != b"--":
        raise MimeError("multipart body has no closing boundary (truncated?)")
    parts: list[MimeEntity] = []
    for start, nxt in itertools.pairwise(positions):
        line_end = body.find(b"\n", start + len(delim))
        if line_end < 0 or line_end >= nxt:
            raise MimeError("malformed boundary line")
        part_end = nxt - 1
        if part_end > line_end and body[part_end - 1 : part_end] == b"\r":
            part_end -= 1
        part = body[line_end + 1 : max(part_end, line_end + 1)]
        parts.append(parse_entity(part, max_header_bytes=max_header_bytes))
    return parts


def decode_transfer_encoding(body: bytes, encoding: str | None) -> bytes:
    cte = (encoding or "binary").strip().lower()
    if cte in ("binary", "7bit", "8bit", ""):
        return body
    if cte == "base64":
        try:
            return binascii.a2b_base64(body)
        except (binascii.Error, ValueError) as exc:
            raise MimeError(f"bad base64 body: {exc}") from None
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    raise MimeError(f"unsupported Content-Transfer-Encoding {cte!r}")


def encode_base64(data: bytes) -> bytes:
    """Base64 in 76-character CRLF lines, as MIME wants."""
    return b"".join(
        binascii.b2a_base64(data[i : i + 57]).replace(b"\n", b"\r\n") for i in range(0, len(data), 57)
    )


def to_crlf(data: bytes) -> bytes:
    """Canonical line ends: every bare LF becomes CRLF."""
    return _BARE_LF.sub(b"\r\n", data) if b"\n" in data else data


def has_bare_lf(data: bytes) -> bool:
    return _BARE_LF.search(data) is not None


def build_entity(headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    """Headers (CRLF), a blank line, the body as given."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("latin-1") + b"\r\n" + body


def build_multipart(parts: Sequence[bytes], boundary: str) -> bytes:
    """A multipart body from whole part entities."""
    delim = b"--" + boundary.encode("ascii")
    out = bytearray()
    for part in parts:
        out += delim + b"\r\n" + part + b"\r\n"
    out += delim + b"--\r\n"
    return bytes(out)


def make_boundary() -> str:
    return "----=_Part_" + os.urandom(12).hex()
