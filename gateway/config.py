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

import copy
import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gateway.as2_settings import As2Settings
from gateway.offline_settings import (
    DEFAULT_GROUP_ID,
    DEFAULT_INTERCHANGE_ID,
    DEFAULT_INTERCHANGE_QUALIFIER,
    DEFAULT_PARTNERS_DIR,
    ENV_PREFIX,
    is_setting,
)
from gateway.offline_settings import ConfigError as ConfigError  # re-exported
from gateway.offline_settings import default_config_path as default_config_path  # re-exported
from translators.profile import GroupId, InterchangeId, OurIdentity, Qualifier

API_TOKEN_FILE = "api-token"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # aiohttp's access log (logger "aiohttp.access", level INFO) in ACCESS_LOG_FORMAT,
    # which names no request header but User-Agent: never the Authorization header.
    access_log: bool = False
    # SIGTERM: how long requests in flight may still finish before they are cancelled
    # (bodies still arriving are cut at once with 503, see gateway.api.bodies).
    shutdown_timeout_seconds: float = Field(default=10.0, ge=0)


class IdentitySettings(OurIdentity):
    """Who we are in the ISA/GS envelopes we write: the engine's
    :class:`~translators.profile.OurIdentity` (modelled once, validated the same
    way), with the service's defaults and its receiver-check switch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interchange_qualifier: Qualifier = DEFAULT_INTERCHANGE_QUALIFIER
    interchange_id: InterchangeId = DEFAULT_INTERCHANGE_ID
    group_id: GroupId = DEFAULT_GROUP_ID
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


class ConsoleSettings(_Section):
    # The address people open the console at, when a TLS proxy sits in front: an
    # https:// URL makes the session cookie Secure even though the proxy talks http to us.
    public_url: str | None = None
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)  # a login lasts this long
    login_attempts: int = Field(default=5, ge=1)  # failed logins per user and address ...
    login_window_seconds: float = Field(default=300.0, gt=0)  # ... within this window, then 429


class ErpSettings(_Section):
    mode: Literal["feed", "webhook"] = "feed"
    url: str | None = None
    secret: SecretStr | None = None
    # Webhook mode: also "Authorization: Bearer <token>" on every request, for an ERP
    # (or the API gateway in front of it) that wants a token besides the signature.
    token: SecretStr | None = None
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
    # A request body must arrive within body_timeout_seconds of the first read, plus
    # one second per min_body_bytes_per_second received; otherwise 408 (gateway.api.bodies).
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    min_body_bytes_per_second: int = Field(default=16 * 1024, gt=0)


class StorageSettings(_Section):
    raw_retention_days: int = Field(default=365, ge=1)  # raw payloads older than this may be pruned
    # Message rows (with their events, documents, jobs, sent outbox items and delivery
    # attempts) in a final state and older than this are deleted; None keeps them forever.
    message_retention_days: int | None = Field(default=None, ge=1)
    # Orders closed or cancelled (with their exceptions and links), exceptions closed and
    # alerts sent longer ago than this are deleted (gateway.order_retention); None keeps them.
    order_retention_days: int | None = Field(default=None, ge=1)
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


class LoggingSettings(_Section):
    # "text" for a terminal, "json" (one object a line) for a log shipper (gateway.logsetup)
    format: Literal["text", "json"] = "text"


AlertEvent = Literal[
    "exception_opened", "exception_closed", "dead_letter", "certificate_expiring", "partner_silent"
]
ALERT_EVENTS: tuple[AlertEvent, ...] = (
    "exception_opened",
    "exception_closed",
    "dead_letter",
    "certificate_expiring",
    "partner_silent",
)


class AlertTarget(_Section):
    """One ``[[alerts]]`` webhook (gateway.alerts): which events it gets, how it is signed."""

    name: str = Field(default="", max_length=100)  # default: "alert-" + a hash of the url
    url: str
    # The HMAC key (Standard Webhooks signature): "env:NAME" or "file:/path" (read at
    # start), or the literal (discouraged; never logged). None: unsigned, only with
    # allow_unsigned = true.
    secret: SecretStr | None = None
    allow_unsigned: bool = False
    events: list[AlertEvent] = Field(default_factory=lambda: list(ALERT_EVENTS))
    partners: list[str] = Field(default_factory=list)  # only these partners' events; empty: all
    # Base of the order link in the payload ("https://gateway.example.com"); None: a path.
    link_base_url: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    max_age_hours: float = Field(default=24.0, gt=0)
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=900.0, gt=0)

    @model_validator(mode="after")
    def _checked(self) -> AlertTarget:
        if not self.url.lower().startswith(("http://", "https://")):
            raise ValueError(f"alerts.url must be an http:// or https:// URL (got {self.url!r})")
        if self.secret is None and not self.allow_unsigned:
            raise ValueError(
                "alerts.secret is required (the HMAC key that signs every alert, as"
                ' "env:NAME" or "file:/path"); set allow_unsigned = true to send unsigned alerts'
            )
        return self


class AlertingSettings(_Section):
    """When the watched events happen, shared by every ``[[alerts]]`` target."""

    certificate_days: int = Field(default=30, ge=0)  # alert this many days before a certificate expires
    # A partner is silent when nothing arrived from it for silence_factor times its usual
    # gap (the median gap between its last inbound messages), and at least silence_min_hours.
    silence_factor: float = Field(default=3.0, gt=1)
    silence_min_hours: float = Field(default=24.0, gt=0)
    silence_history: int = Field(default=20, ge=3)  # the last N inbound messages give the usual gap
    watch_seconds: float = Field(
        default=60.0, gt=0
    )  # dead letters, certificates, silence: checked this often
    send_seconds: float = Field(default=2.0, gt=0)  # pending alerts are sent this often


class SftpServerSettings(_Section):
    """The hosted SFTP drop box (gateway.transports.sftp_server); present = it runs
    with ``gateway serve``. Its host key is made on first start under data_dir/sftp."""

    host: str = "127.0.0.1"
    port: int = Field(default=2222, ge=0, le=65535)  # 0: any free port (tests)
    idle_timeout_seconds: float = Field(default=300.0, gt=0)  # a silent session is closed
    # Connection limits (docs/sftp.md): one partner, or anyone before logging in, must
    # not starve the others (paramiko spends a thread per connection). Logged-in
    # sessions at once, all partners together; a login beyond it is refused.
    max_connections: int = Field(default=200, ge=1)
    # Logged-in sessions of one partner at once (its profile's [sftp] max_connections
    # overrides it); a login beyond it is refused.
    max_connections_per_partner: int = Field(default=10, ge=1)
    # Connections not logged in yet (as OpenSSH's MaxStartups): a new TCP connection
    # beyond it is closed at once, before any SSH work.
    max_startups: int = Field(default=20, ge=1)
    # A connection not logged in after this long is closed (OpenSSH's LoginGraceTime).
    auth_timeout_seconds: float = Field(default=30.0, gt=0)
    # Answer an upload's CLOSE only once the file is stored durably (one disk sync and
    # one commit per file for a client that uploads one file at a time); by default the
    # CLOSE is answered when the synced file is in /inbound (see docs/sftp.md).
    close_after_store: bool = False
    # fsync each upload (and its name in /inbound) before answering its CLOSE: a file
    # the partner was told we have survives a power cut (issue 9: no file lost,
    # whatever dies when). false answers like OpenSSH (no sync), faster for a client
    # sending one file at a time; a client's fsync@openssh.com (``sftp put -f``) then
    # still asks it for one file (see docs/sftp.md).
    sync_uploads: bool = True


class Settings(_Section):
    data_dir: Path = Path("var")
    partners_dir: Path = DEFAULT_PARTNERS_DIR
    database_url: str | None = None  # default: SQLite at <data_dir>/gateway.db
    server: ServerSettings = ServerSettings()
    identity: IdentitySettings = IdentitySettings()
    api: ApiSettings = ApiSettings()
    console: ConsoleSettings = ConsoleSettings()
    erp: ErpSettings = ErpSettings()
    limits: LimitSettings = LimitSettings()
    storage: StorageSettings = StorageSettings()
    pipeline: PipelineSettings = PipelineSettings()
    outbound: OutboundSettings = OutboundSettings()
    logging: LoggingSettings = LoggingSettings()
    as2: As2Settings | None = None  # None: no AS2 (gateway.as2_settings)
    sftp: SftpServerSettings | None = None  # None: no hosted SFTP drop box
    alerts: list[AlertTarget] = Field(default_factory=list)  # [[alerts]] webhooks (gateway.alerts)
    alerting: AlertingSettings = AlertingSettings()

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
    from_file = copy.deepcopy(data)
    variables: dict[tuple[str, ...], str] = {}  # key path -> the GATEWAY_* variable that set it
    for name, value in env.items():
        if not is_setting(name):
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        target = data
        for key in keys[:-1]:
            node = target.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {key} is not a section")
            target = node
        target[keys[-1]] = value
        variables[tuple(keys)] = name
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err, path, from_file, variables) for err in exc.errors(include_url=False)]
        if len(problems) == 1:
            raise ConfigError(problems[0]) from exc
        raise ConfigError(f"{len(problems)} configuration problems:\n  " + "\n  ".join(problems)) from exc
    if settings.as2 is not None and path is not None:
        # [[as2.keys]] paths are relative to the config file's folder
        settings = settings.model_copy(update={"as2": settings.as2.resolved(Path(path).parent)})
    return settings


def _problem(
    err: Any, path: Path | str | None, from_file: dict[str, Any], variables: dict[tuple[str, ...], str]
) -> str:
    """One validation error as ``where: key: what is wrong``, like ``gateway partners
    check`` words a profile's: ``where`` is the file or the ``GATEWAY_*`` variable the
    value came from, an unknown key gets the nearest known ones of its section."""
    loc = tuple(str(p) for p in err["loc"])
    variable = next((name for keys, name in variables.items() if loc[: len(keys)] == keys), None)
    if variable is None and (path is None or not _holds(from_file, loc)):
        # a key or section only variables wrote (an unknown section, a cross-key check)
        variable = next((name for keys, name in sorted(variables.items()) if keys[: len(loc)] == loc), None)
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        near = difflib.get_close_matches(loc[-1], known, n=3, cutoff=0.6)
        what = "unknown section" if isinstance(err.get("input"), dict) else "unknown key"
        if variable is not None:
            rest = next(keys for keys, name in variables.items() if name == variable)[len(loc) :]
            spell = [ENV_PREFIX + "__".join(part.upper() for part in (*loc[:-1], n, *rest)) for n in near]
        else:
            spell = [".".join((*loc[:-1], n)) for n in near]
        hint = f" (did you mean {' or '.join(spell)}?)" if near else f" (known here: {', '.join(known)})"
        return f"{variable or path}: {key}: {what}{hint}"
    where = variable or (str(path) if path is not None else "configuration")
    message = _describe(err)
    if err["type"] == "value_error" and message.startswith(f"{key}."):
        return f"{where}: {message}"  # a check across keys (model validator) names its keys
    return f"{where}: {key or '(top level)'}: {message}"


def _holds(data: dict[str, Any], loc: tuple[str, ...]) -> bool:
    node: Any = data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _known_keys(section: tuple[str, ...]) -> list[str]:
    model: Any = Settings
    for part in section:
        if part.isdigit():  # an entry of a list of tables ([[alerts]])
            continue
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if getattr(annotation, "__origin__", None) is list:
            annotation = annotation.__args__[0]  # type: ignore[union-attr]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


_KINDS = {
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "dict_type": "a table (a [section])",
    "model_type": "a table (a [section])",
}


_SECRET_KEYS = frozenset({"token", "secret", "database_url"})  # never echoed: they may hold credentials


def _describe(err: Any) -> str:
    kind = err["type"]
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error") or err["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        message = f"must be one of {err['ctx']['expected']}"
    elif kind in _KINDS:
        message = f"must be {_KINDS[kind]}"
    else:
        message = "must be " + str(err["msg"]).removeprefix("Input should be ")
    if err["loc"] and str(err["loc"][-1]) in _SECRET_KEYS:
        return message
    return f"{message} (got {err.get('input')!r})"


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
    import secrets  # here: `gateway translate` reads settings and must start fast

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
