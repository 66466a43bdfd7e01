"""Certificate loading, validity windows and choosing the newest valid one."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from as2 import (
    CertificateError,
    SendOptions,
    build_message,
    days_until_expiry,
    generate_self_signed,
    key_pair_pem,
    load_certificates,
    load_key_pair,
    load_private_key,
    newest_valid,
    newest_valid_key,
    unwrap,
    valid_certificates,
    validity,
)

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def generations():
    """Three certificates of one partner: expired, current, newer current."""
    old = generate_self_signed("p", now=NOW - dt.timedelta(days=500), days=365, key_size=1024)
    current = generate_self_signed("p", now=NOW - dt.timedelta(days=100), days=365, key_size=1024)
    newer = generate_self_signed("p", now=NOW - dt.timedelta(days=10), days=365, key_size=1024)
    return old, current, newer


def test_load_pem_bundle_and_der(us, them):
    pem = key_pair_pem(us)[1] + key_pair_pem(them)[1]
    assert load_certificates(pem) == [us.certificate, them.certificate]
    assert load_certificates(us.certificate.public_bytes(Encoding.DER)) == [us.certificate]
    with pytest.raises(CertificateError):
        load_certificates(b"not a certificate")


def test_load_keys_with_and_without_password(us, them):
    key, cert = key_pair_pem(us, b"secret")
    pair = load_key_pair(key, cert, b"secret")
    assert pair.certificate == us.certificate
    with pytest.raises(CertificateError):
        load_private_key(key, b"wrong")
    with pytest.raises(CertificateError, match="does not match"):
        load_key_pair(key, key_pair_pem(them)[1], b"secret")


def test_validity_and_newest(generations):
    old, current, newer = generations
    certs = [old.certificate, newer.certificate, current.certificate]
    assert valid_certificates(certs, NOW) == [newer.certificate, current.certificate]
    assert newest_valid(certs, NOW) == newer.certificate
    assert newest_valid_key([old, current, newer], NOW) is newer
    assert days_until_expiry(current.certificate, NOW) == 265
    assert days_until_expiry(old.certificate, NOW) < 0
    window = validity(current.certificate)
    assert window.subject == "CN=p" and window.not_after - window.not_before == dt.timedelta(
        days=365, minutes=5
    )
    with pytest.raises(CertificateError):
        newest_valid([old.certificate], NOW)


def test_send_uses_newest_valid_key_and_never_an_expired_one(generations, them):
    old, current, newer = generations
    out = build_message(b"x", options=SendOptions(encrypt=False), our_keys=[old, current, newer], now=NOW)
    msg = unwrap(
        out.headers,
        out.body,
        partner_certs=[old.certificate, current.certificate, newer.certificate],
        now=NOW,
    )
    assert msg.signer == newer.certificate
    with pytest.raises(CertificateError):
        build_message(b"x", options=SendOptions(encrypt=False), our_keys=[old], now=NOW)
    with pytest.raises(CertificateError):
        build_message(b"x", options=SendOptions(sign=False), partner_certs=[old.certificate], now=NOW)
