"""A partner's transport settings: how it reaches us and how we reach it.

The profile file holds two things. The X12 partnership (envelope conventions,
mapping rules) is pure data the engine reads: ``translators.profile``. Everything
about channels (REST keys, where we deliver, later ``[as2]`` and ``[sftp]``) is the
service's business and is parsed here, from the same file, so the pure core never
knows a URL or a key. :func:`split_profile` takes the TOML table apart; the
partners loader validates both halves and reports problems in one list.

``[delivery]`` is a union discriminated by ``channel``: each channel has its own
keys, and a key that belongs to another channel is an error, never ignored.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
import base64
import binascii
import hashlib
import hmac
import os
import re
import string
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.as2_settings import As2PartnerSettings
from gateway.passwords import check_password_hash
from translators.profile import ProfileError, format_validation_error

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _sha256_hex(value: str) -> str:
    lowered = value.lower()
    if not _SHA256_HEX.fullmatch(lowered):
        # Never echo the value: someone may have pasted the key itself.
        raise ValueError(
            f"must be the SHA-256 of the key as 64 hex characters, never the key itself (got {len(value)} characters)"
        )
    return lowered


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"must be an environment variable name such as ACME_TOKEN (got {value!r})")
    if value.upper().startswith("GATEWAY_"):
        raise ValueError(
            f"GATEWAY_* variables are the gateway's own settings; choose another name (got {value!r})"
        )
    return value


def _basic_username(value: str) -> str:
    if not value or ":" in value:  # RFC 7617: the user-id ends at the first colon
        raise ValueError(f"must be a non-empty user name without ':' (got {value!r})")
    return value


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ValueError(f"must be an http:// or https:// URL (got {value!r})")
    return value


def _openssh_public_key(value: str) -> str:
    """One OpenSSH public-key line ("ssh-ed25519 AAAA... comment"), kept as "type base64"."""
    parts = value.split()
    if len(parts) < 2:
        raise ValueError('must be an OpenSSH public key line, "<type> <base64> [comment]"')
    kind, b64 = parts[0], parts[1]
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {kind} key is not valid base64") from None
    # The blob starts with its own type name, length-prefixed: a pasted key of another line breaks it.
    name = kind.encode("ascii", "replace")
    if blob[:4] != len(name).to_bytes(4, "big") or blob[4 : 4 + len(name)] != name:
        raise ValueError(f"the key data is not a {kind} key")
    return f"{kind} {b64}"


_FILENAME_FIELDS = frozenset({"kind", "interchange_control", "timestamp", "id", "partner"})


def _filename_template(value: str) -> str:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid file name template: {exc}") from None
    unknown = fields - _FILENAME_FIELDS
    if unknown:
        allowed = ", ".join("{" + f + "}" for f in sorted(_FILENAME_FIELDS))
        raise ValueError(f"unknown field(s) {sorted(unknown)} in the file name template; use {allowed}")
    if "/" in value or value.startswith("."):
        raise ValueError("a file name template names a file: no '/', no leading '.'")
    return value


Sha256Hex = Annotated[str, AfterValidator(_sha256_hex)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
EnvName = Annotated[str, AfterValidator(_env_name)]
OpenSshPublicKey = Annotated[str, AfterValidator(_openssh_public_key)]


def _password_hash(value: str) -> str:
    try:
        return check_password_hash(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; make one with `gateway sftp hash-password`") from None


PasswordHash = Annotated[str, AfterValidator(_password_hash)]
FilenameTemplate = Annotated[str, AfterValidator(_filename_template)]
DEFAULT_FILENAME = "{kind}_{interchange_control}_{timestamp}.edi"

# Top-level profile tables that belong to the service, not to the X12 partnership.
TRANSPORT_KEYS = ("rest", "delivery", "as2", "sftp", "orders")


class _Strict(BaseModel):
    # built when a profile is first validated, as one validator (see CanonicalModel)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class RestSettings(_Strict):
    """Inbound REST: the partner authenticates with a bearer key; we keep its SHA-256."""

    api_key_sha256: Sha256Hex
    previous_api_key_sha256: Sha256Hex | None = None  # still accepted during a key rotation

    def accepts(self, key: str) -> bool:
        """Whether ``key`` is this partner's key (constant-time comparison)."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        ok = hmac.compare_digest(digest, self.api_key_sha256)
        if self.previous_api_key_sha256 is not None:
            ok = hmac.compare_digest(digest, self.previous_api_key_sha256) or ok
        return ok


class SecretUnavailable(Exception):
    """A referenced secret cannot be read; the text names the key and the variable
    or file, never a value."""


class _SecretRef(_Strict):
    """A secret named by reference, never written in the profile: ``<name>_env``
    (an environment variable of the gateway process) or ``<name>_file`` (a file,
    relative to the partner folder; one trailing newline is dropped). Exactly one,
    or at most one when ``_optional``."""

    _secret: ClassVar[str]
    _optional: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _one_reference(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = cls._secret
        if name in data:
            raise ValueError(
                f"{name}: never write the secret in the profile; name it with "
                f'{name}_env = "VARIABLE" or {name}_file = "secrets/FILE"'
            )
        given = [key for key in (f"{name}_env", f"{name}_file") if data.get(key) is not None]
        if len(given) != 1 and not (cls._optional and not given):
            what = "both are set" if given else "neither is set"
            raise ValueError(f"set exactly one of {name}_env or {name}_file ({what})")
        return data

    def reference(self) -> tuple[str, str]:
        """(key, VARIABLE or PATH): the profile key that names the secret and its value."""
        name = self._secret
        env: str | None = getattr(self, f"{name}_env")
        return (f"{name}_env", env) if env is not None else (f"{name}_file", getattr(self, f"{name}_file"))

    def secret_value(self) -> str:
        """The secret, read now (a rotated file is picked up on the next send).
        Raises :class:`SecretUnavailable`, whose text names the variable or file and
        never the secret."""
        key, where = self.reference()
        if key.endswith("_env"):
            value = os.environ.get(where, "")
            if not value:
                raise SecretUnavailable(f"{key}: the environment variable {where} is not set or empty")
            return value
        try:
            value = Path(where).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretUnavailable(f"{key}: {where}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise SecretUnavailable(f"{key}: {where}: cannot read ({why})") from None
        value = value.removesuffix("\n").removesuffix("\r")
        if not value:
            raise SecretUnavailable(f"{key}: {where}: the file is empty")
        return value


class BearerAuth(_SecretRef):
    """``Authorization: Bearer <token>``."""

    _secret: ClassVar[str] = "token"
    type: Literal["bearer"]
    token_env: EnvName | None = None
    token_file: str | None = Field(default=None, min_length=1)


class BasicAuth(_SecretRef):
    """``Authorization: Basic base64(username:password)``."""

    _secret: ClassVar[str] = "password"
    type: Literal["basic"]
    username: Annotated[str, AfterValidator(_basic_username)]
    password_env: EnvName | None = None
    password_file: str | None = Field(default=None, min_length=1)


class HmacAuth(_SecretRef):
    """``X-Gateway-Timestamp: <Unix seconds>`` and ``X-Gateway-Signature:
    sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``: the ERP webhook's scheme."""

    _secret: ClassVar[str] = "secret"
    type: Literal["hmac"]
    secret_env: EnvName | None = None
    secret_file: str | None = Field(default=None, min_length=1)


DeliveryAuth = Annotated[BearerAuth | BasicAuth | HmacAuth, Field(discriminator="type")]


class RestDelivery(_Strict):
    """We POST the X12 to ``url``, authenticated as ``[delivery.auth]`` says (none
    when absent)."""

    channel: Literal["rest"]
    url: HttpUrl
    timeout_seconds: float = Field(default=30.0, gt=0)
    auth: DeliveryAuth | None = None


class MailboxDelivery(_Strict):
    """It waits in the partner's mailbox until they fetch it (gateway.api.mailbox)."""

    channel: Literal["mailbox"] = "mailbox"


class As2Delivery(_Strict):
    """We send over AS2 to the partner's ``[as2] url`` (gateway.transports.as2)."""

    channel: Literal["as2"]


class SftpDelivery(_Strict):
    """Files go over SFTP as the ``[sftp]`` table says: into the partner's hosted
    ``/outbound`` or uploaded to its server (gateway.transports.sftp)."""

    channel: Literal["sftp"]


DeliverySettings = Annotated[
    RestDelivery | MailboxDelivery | As2Delivery | SftpDelivery, Field(discriminator="channel")
]


class SftpHosted(_Strict):
    """The partner logs in to our drop box (gateway.transports.sftp_server) as its
    partner id, with one of these keys (or, when the profile has a ``password_hash``,
    that password), and sees ``/inbound`` and ``/outbound``."""

    mode: Literal["hosted"]
    authorized_keys: list[OpenSshPublicKey] = Field(default_factory=list)
    # scrypt$N$r$p$salt$hash (gateway sftp hash-password); None: keys only
    password_hash: PasswordHash | None = Field(default=None, repr=False)
    archive: bool = False  # taken files are moved to /archive instead of deleted
    filename: FilenameTemplate = DEFAULT_FILENAME
    # Its logged-in sessions at once; None: gateway.toml's [sftp] max_connections_per_partner.
    max_connections: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_way_in(self) -> "SftpHosted":
        if not self.authorized_keys and self.password_hash is None:
            raise ValueError("sftp.authorized_keys: at least one key (or a password_hash) is needed")
        return self


class SftpPoll(_SecretRef):
    """We log in to the partner's server (gateway.transports.sftp_poll), take its
    files from ``inbound_path`` and put ours into ``outbound_path``."""

    mode: Literal["poll"]
    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1)
    # Relative to the partner folder in the file; gateway.partners makes it absolute
    # and checks that it reads as a private key. None: log in with the password.
    private_key: str | None = Field(default=None, min_length=1)
    # For servers that take passwords: named, never written here (see _SecretRef);
    # read at each login, tried after the key when both are set.
    _secret: ClassVar[str] = "password"
    _optional: ClassVar[bool] = True
    password_env: EnvName | None = None
    password_file: str | None = Field(default=None, min_length=1)
    host_key: OpenSshPublicKey  # pinned: any other key is refused, never learned
    inbound_path: str = Field(min_length=1)
    outbound_path: str = Field(min_length=1)
    # Taken files are moved here on the partner's server instead of deleted (a name
    # already there gets a UTC timestamp suffix); None: deleted.
    archive_path: str | None = Field(default=None, min_length=1)
    pattern: str = "*"
    interval_seconds: float = Field(default=60.0, gt=0)
    # A file is taken when its size and mtime did not change over this many seconds.
    settle_seconds: float = Field(default=2.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    filename: FilenameTemplate = DEFAULT_FILENAME

    @model_validator(mode="after")
    def _some_credential(self) -> "SftpPoll":
        if self.private_key is None and not self.has_password:
            raise ValueError(
                'sftp.private_key: required when mode = "poll" (or password_env / password_file)'
            )
        return self

    @property
    def has_password(self) -> bool:
        return self.password_env is not None or self.password_file is not None


SftpSettings = Annotated[SftpHosted | SftpPoll, Field(discriminator="mode")]


class OrderSettings(_Strict):
    """``[orders]``: when an order's gaps become exceptions (gateway.orders)."""

    expect_order_ack: bool = False  # the partner expects our 855 for every 850
    order_ack_due_hours: float = Field(default=24.0, gt=0)
    invoice_due_hours: float = Field(default=72.0, gt=0)  # after the first shipment


class TransportSettings(_Strict):
    rest: RestSettings | None = None  # None: the partner cannot post over REST
    delivery: DeliverySettings = MailboxDelivery.model_construct()
    orders: OrderSettings = OrderSettings.model_construct()
    as2: As2PartnerSettings | None = None  # None: no AS2 with this partner
    sftp: SftpSettings | None = None  # None: no SFTP either way

    @model_validator(mode="after")
    def _as2_delivery_needs_as2(self) -> "TransportSettings":
        if self.delivery.channel == "as2" and self.as2 is None:
            raise ValueError('delivery.channel: "as2" needs an [as2] table (id, url, certificates)')
        return self

    @model_validator(mode="after")
    def _sftp_delivery_needs_sftp(self) -> "TransportSettings":
        if self.delivery.channel == "sftp" and self.sftp is None:
            raise ValueError('delivery.channel = "sftp" needs an [sftp] table (mode = "hosted" or "poll")')
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_channel(cls, data: Any) -> Any:
        # ``[delivery]`` without ``channel`` is the mailbox, as before the split.
        if (
            isinstance(data, dict)
            and isinstance(data.get("delivery"), dict)
            and "channel" not in data["delivery"]
        ):
            data = {**data, "delivery": {**data["delivery"], "channel": "mailbox"}}
        return data


def split_profile(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the X12 partnership's keys, the transport keys) of a parsed profile table."""
    x12 = {k: v for k, v in data.items() if k not in TRANSPORT_KEYS}
    transport = {k: v for k, v in data.items() if k in TRANSPORT_KEYS}
    return x12, transport


def parse_transport(data: dict[str, Any], *, source: str) -> TransportSettings:
    """Validate the transport half; raises ProfileError with one line per problem,
    worded like the X12 half's."""
    try:
        return TransportSettings.model_validate(data)
    except ValidationError as exc:
        raise ProfileError([_channel_wording(line, err) for line, err in _lines(exc, source)]) from None


def _lines(exc: ValidationError, source: str) -> list[tuple[str, Any]]:
    lines = format_validation_error(exc, source=source)
    return list(zip(lines, exc.errors(include_url=False), strict=True))


def _channel_wording(line: str, err: Any) -> str:
    """The discriminated union speaks of tags and puts the channel in the path
    ("delivery.rest.url"); say it the way the file says it."""
    loc = tuple(err["loc"])
    source = line.split(": ", 1)[0]
    if loc[:1] == ("delivery",) and err["type"] == "union_tag_invalid":
        channels = " or ".join(repr(c) for c in _CHANNELS)
        return f"{source}: delivery.channel: must be one of {channels} (got {err['ctx']['tag']!r})"
    if loc[:3] == ("delivery", "rest", "auth"):
        return _auth_wording(line, err, source, loc[3:])
    if loc[:1] == ("delivery",) and len(loc) >= 3:
        channel, key = loc[1], ".".join(str(part) for part in loc[2:])
        if err["type"] == "missing":
            return f'{source}: delivery.{key}: required when channel = "{channel}"'
        if err["type"] == "extra_forbidden":
            why = " (the partner fetches)" if channel == "mailbox" else ""
            return f'{source}: delivery.{key}: not used with channel = "{channel}"{why}; remove it'
        return line.replace(f"delivery.{channel}.", "delivery.")
    if loc[:1] == ("sftp",) and err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"{source}: sftp.mode: must be 'hosted' or 'poll'"
    if loc[:1] == ("sftp",) and len(loc) >= 3:
        mode, key = loc[1], ".".join(str(part) for part in loc[2:])
        if err["type"] == "missing":
            return f'{source}: sftp.{key}: required when mode = "{mode}"'
        if err["type"] == "extra_forbidden":
            return f'{source}: sftp.{key}: not used with mode = "{mode}"; remove it'
        return line.replace(f"sftp.{mode}.", "sftp.")
    return line


_CHANNELS = ("rest", "mailbox", "as2", "sftp")
_AUTH_TYPES = ("bearer", "basic", "hmac")


def _auth_wording(line: str, err: Any, source: str, loc: tuple[Any, ...]) -> str:
    """``[delivery.auth]`` errors, worded with its ``type`` rather than the union's tag."""
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        types = " or ".join(repr(t) for t in _AUTH_TYPES)
        got = f" (got {err['ctx']['tag']!r})" if err["type"] == "union_tag_invalid" else ""
        return f"{source}: delivery.auth.type: must be one of {types}{got}"
    if not loc:
        return line
    kind, key = loc[0], ".".join(str(part) for part in loc[1:])
    where = f"delivery.auth.{key}" if key else "delivery.auth"
    if err["type"] == "missing":
        return f'{source}: {where}: required when type = "{kind}"'
    if err["type"] == "extra_forbidden":
        return f'{source}: {where}: not used with type = "{kind}"; remove it'
    return line.replace(f"delivery.rest.auth.{kind}", "delivery.auth")
