"""Finding the ciphertext of a large EnvelopedData without copying it.

asn1crypto keeps every parsed value as a copy of its bytes, at each level of
nesting: opening a 100 MB envelope with it holds three copies of the ciphertext.
:func:`split_enveloped` walks the few DER headers down to the encrypted content
itself and returns a view of it, and the same envelope with that content left
empty (small, for asn1crypto to read the recipients and the algorithm).

Only definite-length DER with a primitive encrypted content is handled; for
anything else (BER indefinite lengths, a constructed OCTET STRING) it returns None
and the caller parses the whole structure as before. Pure: bytes in, values out.
"""

from __future__ import annotations

SEQUENCE, EXPLICIT_0, PRIMITIVE_0 = 0x30, 0xA0, 0x80
ENVELOPED_DATA_OID = bytes.fromhex("06092a864886f70d010703")  # 1.2.840.113549.1.7.3


def _header(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, content start, content end) of the TLV at ``pos``; None if not plain DER."""
    if pos + 2 > end:
        return None
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F or first == 0x80 or first == 0xFF:
        return None  # high tag number, indefinite or reserved length
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if count > 8 or pos + count > end:
            return None
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    if pos + length > end:
        return None
    return tag, pos, pos + length


def _encode(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]] | None:
    """(tag, TLV start, content start, content end) of each child in [start, end)."""
    found = []
    pos = start
    while pos < end:
        header = _header(data, pos, end)
        if header is None:
            return None
        tag, content_start, content_end = header
        found.append((tag, pos, content_start, content_end))
        pos = content_end
    return found


def split_enveloped(der: bytes) -> tuple[bytes, memoryview] | None:
    """(the ContentInfo with an empty encrypted content, a view of the ciphertext),
    or None when ``der`` is not a plain-DER EnvelopedData with primitive content."""
    outer = _header(der, 0, len(der))
    if outer is None or outer[0] != SEQUENCE:
        return None
    top = _children(der, outer[1], outer[2])
    if top is None or len(top) != 2 or der[top[0][1] : top[0][3]] != ENVELOPED_DATA_OID:
        return None
    if top[1][0] != EXPLICIT_0:
        return None
    inner = _children(der, top[1][2], top[1][3])
    if inner is None or len(inner) != 1 or inner[0][0] != SEQUENCE:
        return None
    fields = _children(der, inner[0][2], inner[0][3])
    # version, [0] originator info?, recipient infos, encrypted content info, [1] attributes?
    if fields is None:
        return None
    eci = next((i for i, f in enumerate(fields) if f[0] == SEQUENCE), None)
    if eci is None:
        return None
    parts = _children(der, fields[eci][2], fields[eci][3])
    if parts is None or len(parts) != 3 or parts[2][0] != PRIMITIVE_0:
        return None
    _tag, tlv_start, content_start, content_end = parts[2]
    ciphertext = memoryview(der)[content_start:content_end]
    eci_der = _encode(SEQUENCE, der[parts[0][1] : tlv_start] + bytes((PRIMITIVE_0, 0)))
    envelope = b"".join(eci_der if i == eci else der[f[1] : f[3]] for i, f in enumerate(fields))
    small = _encode(SEQUENCE, ENVELOPED_DATA_OID + _encode(EXPLICIT_0, _encode(SEQUENCE, envelope)))
    return small, ciphertext
