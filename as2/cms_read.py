"""The receive path's fast reader of SignedData and EnvelopedData.

Reading a signature and an envelope with asn1crypto cost as much CPU as the two RSA
operations of a message. For the shapes AS2 software sends nearly always (plain
DER; RSA PKCS#1 v1.5 signatures with signed attributes; RSA PKCS#1 v1.5 key
transport; AES or 3DES in CBC mode) the few fields needed are read with the DER
walker of :mod:`as2.der`, and the cryptography is the same calls as :mod:`as2.cms`.

Anything else, and every failure, goes to :func:`as2.cms.verify` /
:func:`as2.cms.decrypt` unchanged: they decide the error and its disposition, so
this module only ever returns what the full reader would have returned. Pure.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa

from as2 import cms
from as2.certs import KeyPair, valid_certificates
from as2.der import Identifier, read_enveloped, read_signed
from as2.errors import DecryptionFailed

_DIGESTS = {oid: name for name, oid in cms._DIGEST_OIDS.items()}
_RSA = bytes.fromhex("2a864886f70d010101")
#: signature algorithm OID -> (asn1crypto's name, digest it implies or None)
_SIGNATURES = {
    _RSA: ("rsassa_pkcs1v15", None),
    bytes.fromhex("2a864886f70d010105"): ("sha1_rsa", "sha1"),
    bytes.fromhex("2a864886f70d01010e"): ("sha224_rsa", "sha224"),
    bytes.fromhex("2a864886f70d01010b"): ("sha256_rsa", "sha256"),
    bytes.fromhex("2a864886f70d01010c"): ("sha384_rsa", "sha384"),
    bytes.fromhex("2a864886f70d01010d"): ("sha512_rsa", "sha512"),
}
_CIPHERS = {
    bytes.fromhex("608648016503040102"): "aes128_cbc",
    bytes.fromhex("608648016503040116"): "aes192_cbc",
    bytes.fromhex("60864801650304012a"): "aes256_cbc",
    bytes.fromhex("2a864886f70d0307"): "tripledes_3key",
}
_PKCS1 = asym_padding.PKCS1v15()


@functools.lru_cache(maxsize=256)
def _public_key(cert: x509.Certificate) -> Any:
    return cert.public_key()


def _identifies(identifier: Identifier, cert: x509.Certificate) -> bool:
    issuer, serial, key_id = cms._cert_ids(cert)
    if isinstance(identifier, tuple):
        return identifier[1] == serial and identifier[0] == issuer
    return key_id is not None and identifier == key_id


def _verify_fast(
    der: bytes, content: bytes | None, trusted: Sequence[x509.Certificate], now: dt.datetime | None
) -> cms.Verified | None:
    fields = read_signed(der)
    if fields is None:
        return None
    if content is None:
        content = fields.content
    certs = valid_certificates(trusted, now)
    if content is None or not certs:
        return None
    for signer in fields.signers:
        digest_name = _DIGESTS.get(signer.digest_oid)
        algorithm = _SIGNATURES.get(signer.signature_oid)
        if digest_name is None or algorithm is None or signer.signed_attrs is None:
            return None
        if signer.message_digests != (cms.digest(digest_name, content),):
            return None
        name, implied = algorithm
        hash_alg = cms._hash(implied or digest_name)
        to_check = b"\x31" + signer.signed_attrs[1:]
        for cert in sorted(certs, key=lambda c: not _identifies(signer.sid, c)):
            key = _public_key(cert)
            if not isinstance(key, rsa.RSAPublicKey):
                return None
            try:
                key.verify(signer.signature, to_check, _PKCS1, hash_alg)
            except (InvalidSignature, ValueError):
                continue
            return cms.Verified(cert, digest_name, name, content)
        return None
    return None


def verify(
    signature_der: bytes,
    content: bytes | None,
    trusted: Sequence[x509.Certificate],
    now: dt.datetime | None = None,
) -> cms.Verified:
    """:func:`as2.cms.verify`, reading the common shapes without asn1crypto."""
    try:
        fast = _verify_fast(signature_der, content, trusted, now)
    except cms._PARSE_ERRORS:
        fast = None
    return fast or cms.verify(signature_der, content, trusted, now)


def _decrypt_fast(der: bytes, keys: Sequence[KeyPair]) -> cms.Decrypted | None:
    fields = read_enveloped(der)
    if fields is None or not keys:
        return None
    name = _CIPHERS.get(fields.cipher_oid)
    params = fields.cipher_params
    if name is None or params is None or params[0] != 0x04 or params[1] != len(params) - 2:
        return None  # the IV: a short OCTET STRING
    iv = params[2:]
    key_len = cms.CBC_CIPHERS[name][0]
    for recipient in fields.recipients:
        if recipient.key_transport_oid != _RSA:
            return None
        matching = [k for k in keys if _identifies(recipient.rid, k.certificate)]
        for pair in matching or list(keys):
            try:
                cek = pair.key.decrypt(recipient.encrypted_key, _PKCS1)
                if len(cek) != key_len:
                    continue
                content = cms.open_cbc(name, cek, iv, fields.ciphertext)
            except (ValueError, DecryptionFailed):
                continue
            return cms.Decrypted(content, name, "rsaes_pkcs1v15", bool(matching))
    return None


def decrypt(der: bytes, keys: Sequence[KeyPair]) -> cms.Decrypted:
    """:func:`as2.cms.decrypt`, reading the common shapes without asn1crypto."""
    try:
        fast = _decrypt_fast(der, keys)
    except cms._PARSE_ERRORS:
        fast = None
    return fast or cms.decrypt(der, keys)
