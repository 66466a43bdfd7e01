"""Certificates and keys: load PEM or DER, read validity, pick the newest valid one.

Partners rotate certificates by sending the new one weeks ahead, so a partnership
holds several. Receiving tries every one valid now; sending always uses the newest
valid one and never an expired or not-yet-valid certificate. This module must never
read files or settings: callers pass bytes and the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from as2.errors import CertificateError


@dataclass(frozen=True, slots=True)
class KeyPair:
    """One of our RSA private keys with the certificate that carries its public half."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True, slots=True)
class Validity:
    subject: str
    serial_number: int
    not_before: dt.datetime
    not_after: dt.datetime


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data`` (one or more PEM blocks, or one DER)."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CertificateError(f"cannot load certificate: {exc}") from None
    return list(certs)


def load_private_key(data: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM or DER (PKCS#1 or PKCS#8, optionally encrypted)."""
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password)
        else:
            key = serialization.load_der_private_key(data, password)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"cannot load private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("only RSA keys are supported for AS2")
    return key


def load_key_pair(key: bytes, certificate: bytes, password: bytes | None = None) -> KeyPair:
    """A key and its certificate; raises when the certificate is not the key's."""
    private = load_private_key(key, password)
    cert = load_certificates(certificate)[0]
    public = cert.public_key()
    if (
        not isinstance(public, rsa.RSAPublicKey)
        or public.public_numbers() != private.public_key().public_numbers()
    ):
        raise CertificateError("certificate does not match the private key")
    return KeyPair(private, cert)


def validity(cert: x509.Certificate) -> Validity:
    return Validity(
        cert.subject.rfc4514_string(), cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc
    )


def is_valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def valid_certificates(
    certs: Sequence[x509.Certificate], now: dt.datetime | None = None
) -> list[x509.Certificate]:
    now = now or utcnow()
    return [c for c in certs if is_valid_at(c, now)]


def newest_valid(certs: Sequence[x509.Certificate], now: dt.datetime | None = None) -> x509.Certificate:
    """The valid certificate that started last (ties: the one that ends last)."""
    usable = valid_certificates(certs, now)
    if not usable:
        raise CertificateError("no certificate is valid now")
    return max(usable, key=lambda c: (c.not_valid_before_utc, c.not_valid_after_utc))


def newest_valid_key(pairs: Sequence[KeyPair], now: dt.datetime | None = None) -> KeyPair:
    chosen = newest_valid([p.certificate for p in pairs], now)
    return next(p for p in pairs if p.certificate is chosen)


def days_until_expiry(cert: x509.Certificate, now: dt.datetime | None = None) -> int:
    """Whole days left (negative once expired)."""
    return (cert.not_valid_after_utc - (now or utcnow())).days


def generate_self_signed(
    common_name: str,
    *,
    days: int = 365,
    key_size: int = 2048,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A fresh RSA key and a self-signed certificate for it (for ``certs new`` and tests)."""
    now = now or utcnow()
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert)


def key_pair_pem(pair: KeyPair, password: bytes | None = None) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM); the key is encrypted when ``password`` is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    key = pair.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return key, pair.certificate.public_bytes(serialization.Encoding.PEM)
