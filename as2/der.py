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

from dataclasses import dataclass

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


# --- SignedData and EnvelopedData fields, for the receive path's fast reader ---------
# These return the few fields that cms_read needs as bytes (or views), or None as soon
# as anything is not the plain DER shape expected; the caller then uses asn1crypto.

SET, OCTET_STRING, OID, INTEGER = 0x31, 0x04, 0x06, 0x02
SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")  # 1.2.840.113549.1.7.2


def _sequence(
    data: bytes, start: int, end: int, tag: int = SEQUENCE
) -> list[tuple[int, int, int, int]] | None:
    """The children of the TLV tagged ``tag`` that spans exactly [start, end)."""
    header = _header(data, start, end)
    if header is None or header[0] != tag or header[2] != end:
        return None
    return _children(data, header[1], header[2])


def _content(der: bytes, oid: bytes) -> tuple[int, int] | None:
    """(start, end) of the inner SEQUENCE of a ContentInfo of type ``oid``."""
    outer = _header(der, 0, len(der))
    if outer is None or outer[0] != SEQUENCE:
        return None
    top = _children(der, outer[1], outer[2])
    if top is None or len(top) != 2 or der[top[0][1] : top[0][3]] != oid or top[1][0] != EXPLICIT_0:
        return None
    inner = _children(der, top[1][2], top[1][3])
    if inner is None or len(inner) != 1 or inner[0][0] != SEQUENCE:
        return None
    return inner[0][1], inner[0][3]


def _algorithm(der: bytes, field: tuple[int, int, int, int]) -> tuple[bytes, bytes | None] | None:
    """(OID content, parameters TLV or None) of an AlgorithmIdentifier."""
    if field[0] != SEQUENCE:
        return None
    parts = _children(der, field[2], field[3])
    if parts is None or not 1 <= len(parts) <= 2 or parts[0][0] != OID:
        return None
    params = der[parts[1][1] : parts[1][3]] if len(parts) == 2 else None
    return der[parts[0][2] : parts[0][3]], params


Identifier = tuple[bytes, int] | bytes
"""(issuer Name DER, serial) for IssuerAndSerialNumber, or a subject key identifier."""


def _identifier(der: bytes, field: tuple[int, int, int, int]) -> Identifier | None:
    if field[0] == PRIMITIVE_0:
        return der[field[2] : field[3]]
    if field[0] != SEQUENCE:
        return None
    parts = _children(der, field[2], field[3])
    if parts is None or len(parts) != 2 or parts[0][0] != SEQUENCE or parts[1][0] != INTEGER:
        return None
    serial = int.from_bytes(der[parts[1][2] : parts[1][3]], "big", signed=True)
    return der[parts[0][1] : parts[0][3]], serial


@dataclass(frozen=True, slots=True)
class SignerFields:
    sid: Identifier
    digest_oid: bytes
    signed_attrs: bytes | None  # the [0] TLV as sent (its tag to be made a SET to check)
    message_digests: tuple[bytes, ...]  # the first value of each messageDigest attribute
    signature_oid: bytes
    signature_params: bytes | None
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedFields:
    content: bytes | None  # the encapsulated content, None when detached
    signers: tuple[SignerFields, ...]


_MESSAGE_DIGEST_OID = bytes.fromhex("2a864886f70d010904")


def _signer(der: bytes, start: int, end: int) -> SignerFields | None:
    fields = _sequence(der, start, end)
    if fields is None or len(fields) < 5 or fields[0][0] != INTEGER:
        return None
    sid = _identifier(der, fields[1])
    digest_alg = _algorithm(der, fields[2])
    rest = fields[3:]
    attrs: bytes | None = None
    digests: list[bytes] = []
    if rest[0][0] == EXPLICIT_0:  # [0] IMPLICIT SET OF Attribute
        attrs = der[rest[0][1] : rest[0][3]]
        members = _children(der, rest[0][2], rest[0][3])
        if members is None:
            return None
        for member in members:
            attr = _sequence(der, member[1], member[3])
            if attr is None or len(attr) != 2 or attr[0][0] != OID or attr[1][0] != SET:
                return None
            if der[attr[0][2] : attr[0][3]] == _MESSAGE_DIGEST_OID:
                values = _children(der, attr[1][2], attr[1][3])
                if not values or values[0][0] != OCTET_STRING:
                    return None
                digests.append(der[values[0][2] : values[0][3]])
        rest = rest[1:]
    if len(rest) < 2 or rest[1][0] != OCTET_STRING or sid is None or digest_alg is None:
        return None
    signature_alg = _algorithm(der, rest[0])
    if signature_alg is None:
        return None
    return SignerFields(
        sid,
        digest_alg[0],
        attrs,
        tuple(digests),
        signature_alg[0],
        signature_alg[1],
        der[rest[1][2] : rest[1][3]],
    )


def read_signed(der: bytes) -> SignedFields | None:
    """The signer infos (and the content, if carried) of a plain-DER SignedData."""
    span = _content(der, SIGNED_DATA_OID)
    if span is None:
        return None
    fields = _sequence(der, *span)
    # version, digestAlgorithms, encapContentInfo, [0] certificates?, [1] crls?, signerInfos
    if fields is None or len(fields) < 4 or fields[2][0] != SEQUENCE or fields[-1][0] != SET:
        return None
    encap = _children(der, fields[2][2], fields[2][3])
    if encap is None or not 1 <= len(encap) <= 2 or encap[0][0] != OID:
        return None
    content = None
    if len(encap) == 2:
        inner = _sequence(der, encap[1][1], encap[1][3], EXPLICIT_0)
        if inner is None or len(inner) != 1 or inner[0][0] != OCTET_STRING:
            return None  # e.g. a constructed (BER) OCTET STRING
        content = der[inner[0][2] : inner[0][3]]
    members = _children(der, fields[-1][2], fields[-1][3])
    if not members:
        return None
    signers = []
    for member in members:
        signer = _signer(der, member[1], member[3])
        if signer is None:
            return None
        signers.append(signer)
    return SignedFields(content, tuple(signers))


@dataclass(frozen=True, slots=True)
class RecipientFields:
    rid: Identifier
    key_transport_oid: bytes
    key_transport_params: bytes | None
    encrypted_key: bytes


@dataclass(frozen=True, slots=True)
class EnvelopeFields:
    recipients: tuple[RecipientFields, ...]  # the key-transport ones (others skipped)
    cipher_oid: bytes
    cipher_params: bytes | None
    ciphertext: memoryview


def read_enveloped(der: bytes) -> EnvelopeFields | None:
    """Recipients, content cipher and a view of the ciphertext of a plain-DER
    EnvelopedData (not AuthEnvelopedData) whose encrypted content is primitive."""
    span = _content(der, ENVELOPED_DATA_OID)
    if span is None:
        return None
    fields = _sequence(der, *span)
    if fields is None or len(fields) < 3 or fields[0][0] != INTEGER:
        return None
    rest = fields[1:]
    if rest[0][0] == EXPLICIT_0:  # originator info
        rest = rest[1:]
    if len(rest) < 2 or rest[0][0] != SET or rest[1][0] != SEQUENCE:
        return None
    recipients = []
    for member in _children(der, rest[0][2], rest[0][3]) or ():
        if member[0] != SEQUENCE:
            continue  # kari [1], kekri [2], pwri [3], ori [4]: not key transport
        parts = _children(der, member[2], member[3])
        if parts is None or len(parts) != 4 or parts[3][0] != OCTET_STRING:
            return None
        rid, kta = _identifier(der, parts[1]), _algorithm(der, parts[2])
        if rid is None or kta is None:
            return None
        recipients.append(RecipientFields(rid, kta[0], kta[1], der[parts[3][2] : parts[3][3]]))
    eci = _children(der, rest[1][2], rest[1][3])
    if eci is None or len(eci) != 3 or eci[2][0] != PRIMITIVE_0:
        return None
    cipher = _algorithm(der, eci[1])
    if cipher is None:
        return None
    return EnvelopeFields(tuple(recipients), cipher[0], cipher[1], memoryview(der)[eci[2][2] : eci[2][3]])
