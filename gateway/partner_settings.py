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

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

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


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ValueError(f"must be an http:// or https:// URL (got {value!r})")
    return value


Sha256Hex = Annotated[str, AfterValidator(_sha256_hex)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]

# Top-level profile tables that belong to the service, not to the X12 partnership.
TRANSPORT_KEYS = ("rest", "delivery", "orders")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


class RestDelivery(_Strict):
    """We POST the X12 to ``url``."""

    channel: Literal["rest"]
    url: HttpUrl
    timeout_seconds: float = Field(default=30.0, gt=0)


class MailboxDelivery(_Strict):
    """It waits in the partner's mailbox until they fetch it (gateway.api.mailbox)."""

    channel: Literal["mailbox"] = "mailbox"


DeliverySettings = Annotated[RestDelivery | MailboxDelivery, Field(discriminator="channel")]


class OrderSettings(_Strict):
    """``[orders]``: when an order's gaps become exceptions (gateway.orders)."""

    expect_order_ack: bool = False  # the partner expects our 855 for every 850
    order_ack_due_hours: float = Field(default=24.0, gt=0)
    invoice_due_hours: float = Field(default=72.0, gt=0)  # after the first shipment


class TransportSettings(_Strict):
    rest: RestSettings | None = None  # None: the partner cannot post over REST
    delivery: DeliverySettings = MailboxDelivery()
    orders: OrderSettings = OrderSettings()

    @model_validator(mode="before")
    @classmethod
    def _default_channel(cls, data: Any) -> Any:
        # ``[delivery]`` without ``channel`` is the mailbox, as before the split.
        if isinstance(data, dict) and isinstance(data.get("delivery"), dict) and "channel" not in data["delivery"]:
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
    if loc[:1] == ("delivery",) and len(loc) >= 3:
        channel, key = loc[1], ".".join(str(part) for part in loc[2:])
        if err["type"] == "missing":
            return f'{source}: delivery.{key}: required when channel = "{channel}"'
        if err["type"] == "extra_forbidden":
            why = " (the partner fetches)" if channel == "mailbox" else ""
            return f'{source}: delivery.{key}: not used with channel = "{channel}"{why}; remove it'
        return line.replace(f"delivery.{channel}.", "delivery.")
    return line


_CHANNELS = ("rest", "mailbox")
