"""AS2 settings of the service: our side (``[as2]`` in gateway.toml) and a partner's
(``[as2]`` in its profile), with the certificates and keys they name loaded.

Paths in gateway.toml are relative to the config file's folder, paths in a profile
to the partner folder; both are resolved and the files loaded when the settings are
loaded (start, reload, ``gateway partners check``), so a missing or expired
certificate is reported up front, naming the file and key, never at the first send.
This module reads files; it never sends, receives or touches the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from cryptography import x509

    import as2

# The as2 package (cryptography, asn1crypto) is imported where it is used, not here:
# `gateway translate` loads partner profiles through this module and must start fast.

# profile value -> as2.SendOptions.cipher
CIPHERS = {
    "aes128-cbc": "aes128_cbc",
    "aes192-cbc": "aes192_cbc",
    "aes256-cbc": "aes256_cbc",
    "3des": "tripledes_3key",
    "aes128-gcm": "aes128_gcm",
    "aes192-gcm": "aes192_gcm",
    "aes256-gcm": "aes256_gcm",
}
EXPIRY_WARNING_DAYS = 30


def _as2_name(value: str) -> str:
    import as2

    as2.quote_as2_name(value)  # raises ValueError with the rule
    return value


As2Name = Annotated[str, AfterValidator(_as2_name)]


class As2PartnerSettings(BaseModel):
    """A partner's ``[as2]`` table. ``certificates()`` are the loaded certificate
    files (set by :func:`load_partner_certificates`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: As2Name
    url: str
    certificates: list[str]
    sign: bool = True
    encrypt: bool = True
    compress: bool = False
    signature_algorithm: Literal["sha1", "sha224", "sha256", "sha384", "sha512"] = "sha256"
    encryption_algorithm: Literal[
        "aes128-cbc", "aes192-cbc", "aes256-cbc", "3des", "aes128-gcm", "aes192-gcm", "aes256-gcm"
    ] = "aes256-cbc"
    mdn: Literal["sync", "async", "none"] = "sync"
    mdn_signed: bool = True
    accept_unsigned: bool = False
    accept_unencrypted: bool = False
    ca_bundle: str | None = None  # PEM file of CAs for https://, relative to the partner folder
    # A TLS client certificate for partners that require one (PEM files, relative to the partner folder).
    client_certificate: str | None = None
    client_key: str | None = None
    timeout_seconds: float = Field(default=60.0, gt=0)
    # Compatibility switches for what we send (docs/as2.md, "Send options"):
    micalg_spelling: Literal["sha-256", "sha256"] = "sha-256"  # RFC 5751 / RFC 3851 names
    content_transfer_encoding: Literal["binary", "base64"] = "binary"
    compression_order: Literal["before-signing", "after-signing"] = "before-signing"  # with compress
    quote_parameters: bool = True
    key_transport: Literal["rsaes-pkcs1v15", "rsaes-oaep"] = "rsaes-pkcs1v15"

    _certs: tuple[x509.Certificate, ...] = PrivateAttr(default=())
    _folder: Path | None = PrivateAttr(default=None)

    @field_validator("certificates")
    @classmethod
    def _some_certificate(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one certificate file of the partner's (PEM or DER)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http:// or https:// URL (got {value!r})")
        return value

    def loaded_certificates(self) -> tuple[x509.Certificate, ...]:
        return self._certs

    def ca_bundle_path(self) -> Path | None:
        return self._path(self.ca_bundle)

    def client_cert_paths(self) -> tuple[Path, Path] | None:
        cert, key = self._path(self.client_certificate), self._path(self.client_key)
        return (cert, key) if cert is not None and key is not None else None

    def _path(self, name: str | None) -> Path | None:
        if name is None:
            return None
        path = Path(name)
        return path if path.is_absolute() or self._folder is None else self._folder / path

    @model_validator(mode="after")
    def _client_pair(self) -> As2PartnerSettings:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("client_certificate: needs client_key as well (both or neither)")
        return self

    def send_options(self) -> as2.SendOptions:
        import as2

        return as2.SendOptions(
            sign=self.sign,
            encrypt=self.encrypt,
            digest=self.signature_algorithm,
            micalg_spelling=as2.MicalgSpelling.RFC5751
            if self.micalg_spelling == "sha-256"
            else as2.MicalgSpelling.RFC3851,
            cipher=CIPHERS[self.encryption_algorithm],
            key_transport=self.key_transport.replace("-", "_"),
            compression=as2.Compression(self.compression_order) if self.compress else as2.Compression.NONE,
            transfer_encoding=as2.TransferEncoding(self.content_transfer_encoding),
            quote_parameters=self.quote_parameters,
        )


def load_partner_certificates(
    settings: As2PartnerSettings, folder: Path, source: str, now: dt.datetime | None = None
) -> tuple[list[str], list[str]]:
    """Load the certificate files of a partner's ``[as2]`` into ``settings``.
    Returns (errors, warnings), one line each naming the file and key."""
    import as2

    errors: list[str] = []
    warnings: list[str] = []
    certs: list[x509.Certificate] = []
    for n, name in enumerate(settings.certificates):
        key = f"as2.certificates[{n + 1}]"
        path = Path(name) if Path(name).is_absolute() else folder / name
        try:
            loaded = as2.load_certificates(path.read_bytes())
        except OSError as exc:
            errors.append(f"{source}: {key}: cannot read {path}: {exc.strerror or exc}")
            continue
        except as2.CertificateError as exc:
            errors.append(f"{source}: {key}: {path}: {exc.reason}")
            continue
        certs += loaded
        warnings += [f"{source}: {key}: {line}" for line in expiry_lines(loaded, now)]
    settings._folder = folder
    ca = settings.ca_bundle_path()
    if ca is not None and not ca.is_file():
        errors.append(f"{source}: as2.ca_bundle: {ca} not found")
    client = settings.client_cert_paths()
    if client is not None:
        import ssl

        try:
            ssl.create_default_context().load_cert_chain(*client)
        except (OSError, ssl.SSLError) as exc:
            errors.append(f"{source}: as2.client_certificate: {client[0]} / {client[1]}: {exc}")
    if certs and not as2.valid_certificates(certs, now):
        errors.append(f"{source}: as2.certificates: none of the certificates is valid now")
    settings._certs = tuple(certs)
    return errors, warnings


def expiry_lines(certs: Sequence[x509.Certificate], now: dt.datetime | None = None) -> list[str]:
    """A warning per certificate expired, not yet valid or expiring within 30 days."""
    import as2

    now = now or dt.datetime.now(dt.UTC)
    lines = []
    for cert in certs:
        days = as2.days_until_expiry(cert, now)
        subject = cert.subject.rfc4514_string()
        if days < 0:
            lines.append(f"certificate {subject} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        elif cert.not_valid_before_utc > now:
            lines.append(f"certificate {subject} is valid only from {cert.not_valid_before_utc:%Y-%m-%d}")
        elif days < EXPIRY_WARNING_DAYS:
            lines.append(
                f"certificate {subject} expires in {days} day(s), on {cert.not_valid_after_utc:%Y-%m-%d}"
            )
    return lines


# --------------------------------------------------------------------------- our side


class As2KeySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    key: Path
    certificate: Path


class As2Settings(BaseModel):
    """``[as2]`` in gateway.toml: our AS2 name, where partners reach us, our keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: As2Name
    public_url: str | None = None
    keys: list[As2KeySettings] = Field(default_factory=list)
    # an asynchronous MDN not read this long after the send is reported overdue
    mdn_overdue_minutes: float = Field(default=60.0, gt=0)
    # worker processes that open received messages and sign their MDNs (gateway.as2_pool);
    # 0: on the event loop (in a thread above 100 KB)
    receive_processes: int = Field(default=1, ge=0)

    def resolved(self, base: Path) -> As2Settings:
        """The same settings with relative key paths taken from ``base``."""
        keys = [
            As2KeySettings(
                key=k.key if k.key.is_absolute() else base / k.key,
                certificate=k.certificate if k.certificate.is_absolute() else base / k.certificate,
            )
            for k in self.keys
        ]
        return self.model_copy(update={"keys": keys})


@dataclass(frozen=True, slots=True)
class As2Local:
    """Our loaded AS2 identity: what receive and send use."""

    id: str
    public_url: str | None
    keys: tuple[as2.KeyPair, ...] = ()

    @property
    def domain(self) -> str:
        host = urlsplit(self.public_url).hostname if self.public_url else None
        return host or "gateway.as2"


class As2ConfigError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def load_local(settings: As2Settings | None) -> As2Local | None:
    """Our keys loaded; raises As2ConfigError naming each bad file."""
    import as2

    if settings is None:
        return None
    pairs: list[as2.KeyPair] = []
    errors: list[str] = []
    for n, entry in enumerate(settings.keys):
        where = f"as2.keys[{n + 1}]"
        try:
            pair = as2.load_key_pair(entry.key.read_bytes(), entry.certificate.read_bytes())
        except OSError as exc:
            errors.append(f"{where}: cannot read {exc.filename}: {exc.strerror or exc}")
            continue
        except as2.CertificateError as exc:
            errors.append(f"{where}: {entry.key} / {entry.certificate}: {exc.reason}")
            continue
        pairs.append(pair)
    if errors:
        raise As2ConfigError(errors)
    return As2Local(settings.id, settings.public_url, tuple(pairs))


def certificate_expiry(
    local: As2Local | None, directory: Any, now: dt.datetime | None = None
) -> list[tuple[str, str, int]]:
    """(owner, subject, days to expiry) for our certificates (owner ``ours``) and every
    partner's (owner = partner id): what /metrics and the start-up warning show."""
    import as2

    now = now or dt.datetime.now(dt.UTC)
    rows = [
        ("ours", p.certificate.subject.rfc4514_string(), as2.days_until_expiry(p.certificate, now))
        for p in (local.keys if local is not None else ())
    ]
    for entry in directory.entries.values() if directory is not None else ():
        settings = entry.transport.as2
        for cert in settings.loaded_certificates() if settings is not None else ():
            rows.append((entry.profile.id, cert.subject.rfc4514_string(), as2.days_until_expiry(cert, now)))
    return rows
