"""Service settings: one pydantic model, read from a TOML file plus ``GATEWAY_*``
environment overrides.

Precedence, lowest first: embedded defaults, the TOML file, the environment.
Environment names are ``GATEWAY_`` + the key path in upper case, sections joined
by a double underscore::

    GATEWAY_DATABASE_URL=postgresql+asyncpg://gw@db/gw
    GATEWAY_SERVER__PORT=9090
    GATEWAY_API__TOKEN=...

Unknown keys (in the file or in a ``GATEWAY_`` variable) are errors, so a typo never
silently falls back to a default. This module never reads anything at import time:
call :func:`load_settings`. Secrets are ``SecretStr`` so they never show in logs or
reprs.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from translators.profile import GroupId, InterchangeId, OurIdentity, Qualifier

ENV_PREFIX = "GATEWAY_"
API_TOKEN_FILE = "api-token"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # aiohttp's access log (logger "aiohttp.access", level INFO) in ACCESS_LOG_FORMAT,
    # which names no request header but User-Agent: never the Authorization header.
    access_log: bool = False


class IdentitySettings(OurIdentity):
    """Who we are in the ISA/GS envelopes we write: the engine's
    :class:`~translators.profile.OurIdentity` (modelled once, validated the same
    way), with the service's defaults and its receiver-check switch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interchange_qualifier: Qualifier = "ZZ"
    interchange_id: InterchangeId = "GATEWAY"
    group_id: GroupId = "GATEWAY"
    # Reject interchanges whose ISA receiver is neither us nor one of the sender's
    # profile ``our_ids`` (TA1 009, nothing forwarded). Off only behind a hub that
    # rewrites envelopes.
    check_receiver: bool = True

    @property
    def ours(self) -> OurIdentity:
        """The identity alone, as the engine takes it."""
        return OurIdentity(
            interchange_qualifier=self.interchange_qualifier,
            interchange_id=self.interchange_id,
            group_id=self.group_id,
        )


class ApiSettings(_Section):
    # None: a token is generated on first start and kept under data_dir (see ensure_api_token).
    token: SecretStr | None = None


class ErpSettings(_Section):
    mode: Literal["feed", "webhook"] = "feed"
    url: str | None = None
    secret: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    # webhook retries (5xx, 429, timeouts): exponential backoff with jitter, Retry-After
    # honoured; past either limit the document is dead-lettered (see gateway.erp).
    max_attempts: int = Field(default=12, ge=1)
    max_age_hours: float = Field(default=24.0, gt=0)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=900.0, gt=0)
    # Webhook mode without a secret sends unsigned requests: only when this says so.
    allow_unsigned: bool = False

    @model_validator(mode="after")
    def _webhook_needs_url_and_secret(self) -> ErpSettings:
        if self.mode != "webhook":
            return self
        if not self.url:
            raise ValueError('erp.url is required when erp.mode = "webhook"')
        if not self.url.lower().startswith(("http://", "https://")):
            raise ValueError(f"erp.url must be an http:// or https:// URL (got {self.url!r})")
        if (self.secret is None or not self.secret.get_secret_value()) and not self.allow_unsigned:
            raise ValueError(
                'erp.secret is required when erp.mode = "webhook" (the HMAC key that signs every'
                " request); set erp.allow_unsigned = true to send unsigned requests on purpose"
            )
        return self


class OutboundSettings(_Section):
    """Sending to partners (gateway.delivery) and watching their acks (gateway.reconcile)."""

    workers: int = Field(default=2, ge=0)  # concurrent REST deliveries in this process; 0 = none
    max_attempts: int = Field(default=10, ge=1)
    max_age_hours: float = Field(default=48.0, gt=0)
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=1800.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0)  # a claimed outbox item is retried after this
    poll_seconds: float = Field(default=1.0, gt=0)
    overdue_check_seconds: float = Field(default=60.0, gt=0)  # how often acks are checked for lateness


class LimitSettings(_Section):
    max_edi_bytes: int = Field(default=64 * 1024 * 1024, gt=0)  # one posted X12 body
    max_json_bytes: int = Field(default=8 * 1024 * 1024, gt=0)  # one posted canonical document


class StorageSettings(_Section):
    raw_retention_days: int = Field(default=365, ge=1)  # raw payloads older than this may be pruned
    # Message rows (with their events, documents, jobs, sent outbox items and delivery
    # attempts) in a final state and older than this are deleted; None keeps them forever.
    message_retention_days: int | None = Field(default=None, ge=1)
    # How often the service prunes (gateway.retention); 0 = never (run `gateway prune`).
    prune_interval_minutes: float = Field(default=60.0, ge=0)
    # How a batch of raw files is made durable: one syncfs(2) per batch (Linux; falls
    # back to fsync elsewhere) or one fsync per file and directory.
    raw_sync: Literal["syncfs", "fsync"] = "syncfs"
    # Group commit: concurrent accepts share one transaction of at most this many messages.
    max_batch: int = Field(default=512, ge=1)
    # /readyz answers 503 when the disk under data_dir (or raw/) has less free space than this.
    min_free_mb: int = Field(default=64, ge=0)


class PipelineSettings(_Section):
    workers: int = Field(default=4, ge=0)  # concurrent jobs in this process; 0 = accept only
    duplicate_window_days: float = Field(default=30.0, ge=0)  # same sender + ISA13 inside = duplicate
    max_attempts: int = Field(default=8, ge=1)  # transient failures before a message is failed
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)  # a claimed job is reclaimable after this
    # Every instance renews the leases it holds this often (gateway.runner), and a peer
    # silent for instance_dead_seconds is dead: its leases are released at once.
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    instance_dead_seconds: float = Field(default=20.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)  # idle workers look for due retries this often
    # Jobs one worker claims (and commits) together; on SQLite each commit is an fsync.
    batch_size: int = Field(default=64, ge=1, le=10_000)
    # Translation runs in this many worker processes (gateway.translate_pool), so it never
    # holds the event loop's GIL; 0 translates in a thread of this process (tests, debugging).
    translate_processes: int = Field(default=1, ge=0)
    # TA1 segments one acknowledgment interchange carries; a message of more interchanges
    # gets one answer per partner address and the rest counted in its reason (gateway.domain.acks).
    max_ta1_per_ack: int = Field(default=100, ge=1)


class Settings(_Section):
    data_dir: Path = Path("var")
    partners_dir: Path = Path("partners")
    database_url: str | None = None  # default: SQLite at <data_dir>/gateway.db
    server: ServerSettings = ServerSettings()
    identity: IdentitySettings = IdentitySettings()
    api: ApiSettings = ApiSettings()
    erp: ErpSettings = ErpSettings()
    limits: LimitSettings = LimitSettings()
    storage: StorageSettings = StorageSettings()
    pipeline: PipelineSettings = PipelineSettings()
    outbound: OutboundSettings = OutboundSettings()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"


def load_settings(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``path`` (None: embedded defaults) overlaid with ``GATEWAY_*``
    variables from ``environ`` (default ``os.environ``). Relative ``data_dir`` and
    ``partners_dir`` stay relative to the working directory, like every CLI path."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        try:
            with file.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file {file} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == "GATEWAY_CONFIG":
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        target = data
        for key in keys[:-1]:
            node = target.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {key} is not a section")
            target = node
        target[keys[-1]] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        where = f" in {path}" if path is not None else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc


def _problem(err: Any) -> str:
    """One validation error as ``key.path: message``; the checks across keys in this
    module (model validators) already name their keys in the message."""
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "value_error" and "error" in err.get("ctx", {}):
        message = str(err["ctx"]["error"])
        if message.startswith(f"{where}."):
            return message
        return f"{where}: {message}"
    return f"{where}: {err['msg']}"


def default_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$GATEWAY_CONFIG``, else ``./gateway.toml`` when it exists, else None (defaults)."""
    env = os.environ if environ is None else environ
    if env.get("GATEWAY_CONFIG"):
        return Path(env["GATEWAY_CONFIG"])
    local = Path("gateway.toml")
    return local if local.is_file() else None


def ensure_api_token(settings: Settings) -> tuple[str, bool]:
    """The internal API bearer token and whether it was generated just now.

    A configured token wins. Otherwise the token lives in ``<data_dir>/api-token``
    (mode 0600), created with a random value on first use, so a fresh install is
    never open and never shares a default secret.
    """
    if settings.api.token is not None:
        return settings.api.token.get_secret_value(), False
    path = settings.data_dir / API_TOKEN_FILE
    if path.exists():
        return path.read_text(encoding="ascii").strip(), False
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL: two processes starting at once must not both believe they generated it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip(), False
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return token, True
