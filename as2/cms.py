"""CMS (RFC 5652) structures that AS2 needs, built and opened on DER bytes.

asn1crypto reads and writes the ASN.1; ``cryptography`` does every primitive (hash,
RSA, AES, 3DES). Covered: SignedData (detached or opaque; RSA PKCS#1 v1.5 and
RSASSA-PSS; SHA-1 and SHA-2), EnvelopedData (AES-CBC, 3DES-CBC; RSA PKCS#1 v1.5 or
RSAES-OAEP key transport), AuthEnvelopedData with AES-GCM (RFC 5083/5084) and
CompressedData (RFC 3274, zlib, inflated with a size cap).

Every failure leaves as one of the package's errors with its MDN disposition; this
module must never let a parser exception (ValueError, TypeError, ...) escape, and
never trust a certificate that arrives inside the message.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding

from as2.certs import KeyPair, valid_certificates
from as2.der import split_enveloped
from as2.errors import (
    AS2Error,
    AuthenticationFailed,
    DecompressionFailed,
    DecryptionFailed,
    IntegrityCheckFailed,
    LimitExceeded,
)

HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
SIGNING_DIGESTS = ("sha1", "sha224", "sha256", "sha384", "sha512")
#: cipher name -> (key bytes, block bytes)
CBC_CIPHERS: dict[str, tuple[int, int]] = {
    "aes128_cbc": (16, 16),
    "aes192_cbc": (24, 16),
    "aes256_cbc": (32, 16),
    "tripledes_3key": (24, 8),
}
#: AES-GCM cipher name -> key bytes (AuthEnvelopedData)
GCM_CIPHERS: dict[str, int] = {"aes128_gcm": 16, "aes192_gcm": 24, "aes256_gcm": 32}
KEY_TRANSPORTS = ("rsaes_pkcs1v15", "rsaes_oaep")

_OID_DATA = bytes.fromhex("2a864886f70d010701")
_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
_OID_CONTENT_TYPE = bytes.fromhex("2a864886f70d010903")
_OID_MESSAGE_DIGEST = bytes.fromhex("2a864886f70d010904")
_OID_SIGNING_TIME = bytes.fromhex("2a864886f70d010905")
_OID_RSA = bytes.fromhex("2a864886f70d010101")
_DIGEST_OIDS = {
    "sha1": bytes.fromhex("2b0e03021a"),
    "sha224": bytes.fromhex("608648016503040204"),
    "sha256": bytes.fromhex("608648016503040201"),
    "sha384": bytes.fromhex("608648016503040202"),
    "sha512": bytes.fromhex("608648016503040203"),
}
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    NotImplementedError,
)


class _GcmParameters(core.Sequence):  # type: ignore[misc]  # RFC 5084; asn1crypto does not map it
    _fields = [("aes_nonce", core.OctetString), ("aes_icv_len", core.Integer, {"default": 12})]


@dataclass(frozen=True, slots=True)
class Verified:
    """A signature that verified: who signed, with what, and the content it covers."""

    signer: x509.Certificate
    digest_algorithm: str
    signature_algorithm: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Decrypted:
    """Opened content. ``addressed`` is False when the envelope named none of our
    certificates and a key was found by trying: with RSA PKCS#1 v1.5 implicit
    rejection a wrong key yields random bytes, so such content needs more proof."""

    content: bytes
    content_algorithm: str
    key_transport: str
    addressed: bool = True


@contextmanager
def _reraise_as(error: type[AS2Error], what: str) -> Iterator[None]:
    try:
        yield
    except AS2Error:
        raise
    except _PARSE_ERRORS as exc:
        raise error(f"{what}: {type(exc).__name__}: {exc}") from None


def _content_info(der: bytes, expected: Sequence[str], error: type[AS2Error]) -> Any:
    with _reraise_as(error, "unreadable CMS structure"):
        info = cms.ContentInfo.load(der, strict=False)
        kind = info["content_type"].native
        if kind not in expected:
            raise error(f"expected CMS {' or '.join(expected)}, found {kind}")
        return info["content"]


def content_type_of(der: bytes) -> str | None:
    """The CMS content type name (``signed_data``...), or None when unreadable."""
    try:
        return str(cms.ContentInfo.load(der, strict=False)["content_type"].native)
    except _PARSE_ERRORS:
        return None


def _hash(name: str) -> hashes.HashAlgorithm:
    factory = HASHES.get(name)
    if factory is None:
        raise AuthenticationFailed(f"unsupported digest algorithm {name}")
    return factory()


def digest(name: str, data: bytes) -> bytes:
    h = hashes.Hash(_hash(name))
    h.update(data)
    return h.finalize()


@functools.lru_cache(maxsize=256)
def _cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@functools.lru_cache(maxsize=256)
def _cert_ids(cert: x509.Certificate) -> tuple[bytes, int, bytes | None]:
    """(issuer DER as encoded in the certificate, serial, subject key identifier);
    cached because every sign, verify and decrypt asks for them."""
    asn1 = asn1_x509.Certificate.load(_cert_der(cert))
    return asn1["tbs_certificate"]["issuer"].dump(), cert.serial_number, asn1.key_identifier


def _issuer_and_serial(cert: x509.Certificate) -> cms.IssuerAndSerialNumber:
    issuer, serial, _ = _cert_ids(cert)
    return cms.IssuerAndSerialNumber({"issuer": asn1_x509.Name.load(issuer), "serial_number": serial})


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (asn1crypto deep-copies an embedded certificate; this does not)."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _identifies(identifier: Any, cert: x509.Certificate) -> bool:
    """Whether a SignerIdentifier / RecipientIdentifier names ``cert``."""
    issuer, serial, key_id = _cert_ids(cert)
    if identifier.name == "issuer_and_serial_number":
        chosen = identifier.chosen
        return bool(chosen["serial_number"].native == serial and chosen["issuer"].dump() == issuer)
    return bool(key_id is not None and identifier.chosen.native == key_id)


def _set_of(attrs: Any) -> bytes:
    """DER of signed/auth attributes as the SET OF that is signed (not the [n] tag)."""
    encoded: bytes = attrs.dump()
    return b"\x31" + encoded[1:]


# --- signing ---------------------------------------------------------------


def sign(
    content: bytes,
    signer: KeyPair,
    digest_algorithm: str = "sha256",
    *,
    detached: bool = True,
    pss: bool = False,
    now: dt.datetime | None = None,
) -> bytes:
    """A SignedData ContentInfo over ``content`` (detached unless told otherwise)."""
    if digest_algorithm not in SIGNING_DIGESTS:
        raise ValueError(f"cannot sign with {digest_algorithm}")
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    # Built as DER by hand: this runs for every MDN, and asn1crypto's object building
    # cost more than the RSA signature itself. SET OF members are sorted (DER).
    attributes = sorted(
        [
            _der(0x30, _der(0x06, _OID_CONTENT_TYPE) + _der(0x31, _der(0x06, _OID_DATA))),
            _der(
                0x30,
                _der(0x06, _OID_SIGNING_TIME)
                + _der(0x31, _der(0x17, now.strftime("%y%m%d%H%M%SZ").encode())),
            ),
            _der(
                0x30,
                _der(0x06, _OID_MESSAGE_DIGEST) + _der(0x31, _der(0x04, digest(digest_algorithm, content))),
            ),
        ]
    )
    signed_attrs = b"".join(attributes)
    hash_alg = _hash(digest_algorithm)
    if pss:
        salt = hash_alg.digest_size
        signature = signer.key.sign(
            _der(0x31, signed_attrs), asym_padding.PSS(asym_padding.MGF1(hash_alg), salt), hash_alg
        )
        sig_alg: bytes = algos.SignedDigestAlgorithm(
            {
                "algorithm": "rsassa_pss",
                "parameters": algos.RSASSAPSSParams(
                    {
                        "hash_algorithm": {"algorithm": digest_algorithm},
                        "mask_gen_algorithm": {
                            "algorithm": "mgf1",
                            "parameters": {"algorithm": digest_algorithm},
                        },
                        "salt_length": salt,
                    }
                ),
            }
        ).dump()
    else:
        signature = signer.key.sign(_der(0x31, signed_attrs), asym_padding.PKCS1v15(), hash_alg)
        sig_alg = _der(0x30, _der(0x06, _OID_RSA) + b"\x05\x00")
    issuer, serial, _ = _cert_ids(signer.certificate)
    digest_alg = _der(0x30, _der(0x06, _DIGEST_OIDS[digest_algorithm]) + b"\x05\x00")
    signer_info = _der(
        0x30,
        b"\x02\x01\x01"
        + _der(0x30, issuer + _der(0x02, serial.to_bytes((serial.bit_length() + 8) // 8, "big")))
        + digest_alg
        + _der(0xA0, signed_attrs)
        + sig_alg
        + _der(0x04, signature),
    )
    encap = _der(0x06, _OID_DATA)
    if not detached:
        encap += _der(0xA0, _der(0x04, content))
    signed_data = _der(
        0x30,
        b"\x02\x01\x01"
        + _der(0x31, digest_alg)
        + _der(0x30, encap)
        + _der(0xA0, _cert_der(signer.certificate))
        + _der(0x31, signer_info),
    )
    return _der(0x30, _der(0x06, _OID_SIGNED_DATA) + _der(0xA0, signed_data))


def _check_signature(
    public_key: Any, algorithm: Any, signature: bytes, data: bytes, digest_name: str
) -> None:
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise AuthenticationFailed("only RSA signer certificates are supported")
    name = algorithm["algorithm"].native
    if name == "rsassa_pss":
        params = algorithm["parameters"]
        if isinstance(params, core.Void) or params.native is None:
            # RSASSA-PSS without parameters (pyas2lib): it hashes and masks with the
            # signer's digest; the salt length is recovered from the signature
            hash_alg = _hash(digest_name)
            pad: asym_padding.AsymmetricPadding = asym_padding.PSS(
                asym_padding.MGF1(_hash(digest_name)), asym_padding.PSS.AUTO
            )
        else:
            hash_alg = _hash(params["hash_algorithm"]["algorithm"].native)
            mgf_hash = _hash(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
            pad = asym_padding.PSS(asym_padding.MGF1(mgf_hash), int(params["salt_length"].native))
    elif name in ("rsassa_pkcs1v15", "rsa") or name.endswith("_rsa"):
        hash_alg = _hash(digest_name if not name.endswith("_rsa") else algorithm.hash_algo)
        pad = asym_padding.PKCS1v15()
    else:
        raise AuthenticationFailed(f"unsupported signature algorithm {name}")
    public_key.verify(signature, data, pad, hash_alg)


def verify(
    signature_der: bytes,
    content: bytes | None,
    trusted: Sequence[x509.Certificate],
    now: dt.datetime | None = None,
) -> Verified:
    """Check a SignedData against the trusted certificates valid at ``now``.

    ``content`` is the detached content; None means take it from inside (opaque).
    A digest mismatch raises IntegrityCheckFailed; anything else AuthenticationFailed.
    """
    signed = _content_info(signature_der, ("signed_data",), AuthenticationFailed)
    certs = valid_certificates(trusted, now)
    if not certs:
        raise AuthenticationFailed("no partner certificate is valid now")
    mismatch = False
    with _reraise_as(AuthenticationFailed, "unreadable SignedData"):
        if content is None:
            inner = signed["encap_content_info"]["content"]
            if isinstance(inner, core.Void):
                raise AuthenticationFailed("signed-data carries no content")
            content = bytes(inner.native)
        for info in signed["signer_infos"]:
            digest_name = info["digest_algorithm"]["algorithm"].native
            if digest_name not in SIGNING_DIGESTS:
                raise AuthenticationFailed(f"signatures with {digest_name} are not accepted")
            computed = digest(digest_name, content)
            attrs = info["signed_attrs"]
            if isinstance(attrs, core.Void) or not len(attrs):
                to_check = content
            else:
                sent = [a["values"][0].native for a in attrs if a["type"].native == "message_digest"]
                if sent != [computed]:
                    mismatch = True
                    continue
                to_check = _set_of(attrs)
            signature = bytes(info["signature"].native)
            ordered = sorted(certs, key=lambda c: not _identifies(info["sid"], c))
            for cert in ordered:
                try:
                    _check_signature(
                        cert.public_key(), info["signature_algorithm"], signature, to_check, digest_name
                    )
                except (InvalidSignature, ValueError):
                    continue
                return Verified(cert, digest_name, info["signature_algorithm"]["algorithm"].native, content)
    if mismatch:
        raise IntegrityCheckFailed("content does not match the signed message digest")
    raise AuthenticationFailed("signature does not verify with any trusted certificate")


# --- encryption ------------------------------------------------------------


def encrypt(
    content: bytes,
    recipient: x509.Certificate,
    cipher: str = "aes256_cbc",
    *,
    key_transport: str = "rsaes_pkcs1v15",
) -> bytes:
    """An EnvelopedData ContentInfo of ``content`` for ``recipient``'s RSA key
    (AuthEnvelopedData, RFC 5083/5084, for the AES-GCM ciphers)."""
    if cipher in CBC_CIPHERS:
        key_len, block = CBC_CIPHERS[cipher]
        cek, iv = os.urandom(key_len), os.urandom(block)
        padder = padding.PKCS7(block * 8).padder()
        padded = padder.update(content) + padder.finalize()
        encryptor = Cipher(_block_cipher(cipher, cek), modes.CBC(iv)).encryptor()
        encrypted, mac = encryptor.update(padded) + encryptor.finalize(), None
        parameters: Any = iv
    elif cipher in GCM_CIPHERS:
        cek, nonce = os.urandom(GCM_CIPHERS[cipher]), os.urandom(12)
        sealed = AESGCM(cek).encrypt(nonce, content, None)
        encrypted, mac = sealed[:-16], sealed[-16:]
        parameters = _GcmParameters({"aes_nonce": nonce, "aes_icv_len": 16})
    else:
        raise ValueError(f"cannot encrypt with {cipher}")
    public = recipient.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("recipient certificate is not RSA")
    if key_transport == "rsaes_oaep":
        # RFC 3560 default parameters (SHA-1, MGF1-SHA-1): what OpenSSL and most AS2
        # software expect; asn1crypto cannot build the empty SEQUENCE, so it is parsed
        wrapped = public.encrypt(
            cek, asym_padding.OAEP(asym_padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)
        )
        kea: dict[str, Any] = {
            "algorithm": "rsaes_oaep",
            "parameters": algos.RSAESOAEPParams.load(b"\x30\x00"),
        }
    else:
        wrapped = public.encrypt(cek, asym_padding.PKCS1v15())
        kea = {"algorithm": "rsaes_pkcs1v15"}
    recipient_info = cms.RecipientInfo(
        name="ktri",
        value=cms.KeyTransRecipientInfo(
            {
                "version": "v0",
                "rid": cms.RecipientIdentifier(
                    name="issuer_and_serial_number", value=_issuer_and_serial(recipient)
                ),
                "key_encryption_algorithm": kea,
                "encrypted_key": wrapped,
            }
        ),
    )
    content_info = {
        "content_type": "data",
        "content_encryption_algorithm": {"algorithm": cipher, "parameters": parameters},
        "encrypted_content": encrypted,
    }
    if mac is not None:
        auth = cms.AuthEnvelopedData(
            {
                "version": "v0",
                "recipient_infos": [recipient_info],
                "auth_encrypted_content_info": content_info,
                "mac": mac,
            }
        )
        sealed_info: bytes = cms.ContentInfo(
            {"content_type": "authenticated_enveloped_data", "content": auth}
        ).dump()
        return sealed_info
    enveloped = cms.EnvelopedData(
        {"version": "v0", "recipient_infos": [recipient_info], "encrypted_content_info": content_info}
    )
    result: bytes = cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()
    return result


def _block_cipher(name: str, key: bytes) -> CipherAlgorithm:
    if name == "tripledes_3key":
        return TripleDES(key)
    return algorithms.AES(key)


def _unwrap_key(info: Any, pair: KeyPair) -> bytes:
    algorithm = info["key_encryption_algorithm"]
    name = algorithm["algorithm"].native
    wrapped = bytes(info["encrypted_key"].native)
    if name == "rsaes_pkcs1v15":
        return pair.key.decrypt(wrapped, asym_padding.PKCS1v15())
    if name == "rsaes_oaep":
        params = algorithm["parameters"]
        if isinstance(params, core.Void) or params.native is None:
            oaep_hash, mgf_hash = "sha1", "sha1"
        else:
            oaep_hash = params["hash_algorithm"]["algorithm"].native
            mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
        return pair.key.decrypt(
            wrapped,
            asym_padding.OAEP(asym_padding.MGF1(HASHES[mgf_hash]()), HASHES[oaep_hash](), None),
        )
    raise DecryptionFailed(f"unsupported key transport {name}")


def open_cbc(name: str, cek: bytes, iv: bytes, encrypted: bytes | memoryview) -> bytes:
    """Decrypt and unpad; into one buffer, padding cut off in place: a large message
    costs one plaintext copy here, not four (update, join, unpad, join)."""
    block = CBC_CIPHERS[name][1]
    if len(iv) != block or not encrypted or len(encrypted) % block:
        raise DecryptionFailed("encrypted content has a bad length or IV")
    decryptor = Cipher(_block_cipher(name, cek), modes.CBC(iv)).decryptor()
    plain = bytearray(len(encrypted) + block - 1)
    size = decryptor.update_into(encrypted, plain)
    tail = decryptor.finalize()  # empty: the input is whole blocks
    plain[size : size + len(tail)] = tail
    size += len(tail)
    pad = plain[size - 1] if size else 0
    if not 1 <= pad <= block or plain[size - pad : size] != bytes([pad]) * pad:
        raise DecryptionFailed("bad padding after decryption (wrong key?)")
    del plain[size - pad :]
    return bytes(plain)


def _open_content(
    info: Any, cek: bytes, mac: bytes | None, aad: bytes, ciphertext: memoryview | None
) -> tuple[bytes, str]:
    algorithm = info["content_encryption_algorithm"]
    name = algorithm["algorithm"].native
    encrypted: bytes | memoryview | None = ciphertext
    if encrypted is None:
        encrypted = info["encrypted_content"].native
        if encrypted is None:
            raise DecryptionFailed("envelope carries no encrypted content")
        encrypted = bytes(encrypted)
    if name in CBC_CIPHERS:
        key_len = CBC_CIPHERS[name][0]
        if len(cek) != key_len:
            raise DecryptionFailed("content key has the wrong length")
        return open_cbc(name, cek, bytes(algorithm["parameters"].native), encrypted), name
    if name in GCM_CIPHERS:
        if mac is None:
            raise DecryptionFailed("GCM content outside AuthEnvelopedData")
        params = _GcmParameters.load(algorithm["parameters"].dump())
        nonce = bytes(params["aes_nonce"].native)
        if len(cek) not in (16, 24, 32) or len(mac) != int(params["aes_icv_len"].native):
            raise DecryptionFailed("GCM key or tag has the wrong length")
        try:
            return AESGCM(cek).decrypt(nonce, bytes(encrypted) + mac, aad or None), name
        except InvalidTag:
            raise DecryptionFailed("GCM authentication tag does not match") from None
    raise DecryptionFailed(f"unsupported content encryption {name}")


def decrypt(der: bytes, keys: Sequence[KeyPair]) -> Decrypted:
    """Open an EnvelopedData or AuthEnvelopedData with whichever of our keys it names.

    Keys whose certificate the recipient info identifies are tried first; others only
    when none matches (a partner may still address an old certificate of ours).
    """
    split = split_enveloped(der)  # the ciphertext as a view: no copies of it (as2.der)
    ciphertext = split[1] if split is not None else None
    head = split[0] if split is not None else der
    envelope = _content_info(head, ("enveloped_data", "authenticated_enveloped_data"), DecryptionFailed)
    if not keys:
        raise DecryptionFailed("no decryption key configured")
    with _reraise_as(DecryptionFailed, "unreadable EnvelopedData"):
        authenticated = isinstance(envelope, cms.AuthEnvelopedData)
        info = envelope["auth_encrypted_content_info" if authenticated else "encrypted_content_info"]
        mac = bytes(envelope["mac"].native) if authenticated else None
        aad = b""
        if authenticated and not isinstance(envelope["auth_attrs"], core.Void):
            aad = _set_of(envelope["auth_attrs"])
        last: Exception | None = None
        for recipient in envelope["recipient_infos"]:
            if recipient.name != "ktri":
                continue
            ktri = recipient.chosen
            matching = [k for k in keys if _identifies(ktri["rid"], k.certificate)]
            for pair in matching or list(keys):
                try:
                    cek = _unwrap_key(ktri, pair)
                    content, name = _open_content(info, cek, mac, aad, ciphertext)
                except (ValueError, DecryptionFailed) as exc:
                    last = exc
                    continue
                return Decrypted(
                    content, name, ktri["key_encryption_algorithm"]["algorithm"].native, bool(matching)
                )
    raise DecryptionFailed(
        f"none of our keys opens the envelope ({last})" if last else "no key-transport recipient"
    )


# --- compression -----------------------------------------------------------


def compress(content: bytes) -> bytes:
    """A CompressedData ContentInfo (RFC 3274, zlib)."""
    compressed = cms.CompressedData(
        {
            "version": "v0",
            "compression_algorithm": {"algorithm": "zlib"},
            "encap_content_info": {"content_type": "data", "content": zlib.compress(content)},
        }
    )
    result: bytes = cms.ContentInfo({"content_type": "compressed_data", "content": compressed}).dump()
    return result


def decompress(der: bytes, max_size: int) -> bytes:
    """Inflate a CompressedData, refusing to produce more than ``max_size`` bytes."""
    compressed = _content_info(der, ("compressed_data",), DecompressionFailed)
    with _reraise_as(DecompressionFailed, "unreadable CompressedData"):
        algorithm = compressed["compression_algorithm"]["algorithm"].native
        if algorithm != "zlib":
            raise DecompressionFailed(f"unsupported compression {algorithm}")
        data = compressed["encap_content_info"]["content"].native
        if not isinstance(data, bytes):
            raise DecompressionFailed("compressed-data carries no content")
    inflater = zlib.decompressobj()
    out = bytearray()
    chunk = data
    try:
        while chunk:
            out += inflater.decompress(chunk, max_size + 1 - len(out))
            if len(out) > max_size:
                raise LimitExceeded(f"decompressed content exceeds {max_size} bytes")
            chunk = inflater.unconsumed_tail
        out += inflater.flush()
    except zlib.error as exc:
        raise DecompressionFailed(f"zlib: {exc}") from None
    if len(out) > max_size:
        raise LimitExceeded(f"decompressed content exceeds {max_size} bytes")
    if not inflater.eof:
        raise DecompressionFailed("compressed stream is truncated")
    return bytes(out)
