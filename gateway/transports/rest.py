"""``channel = "rest"``: we POST the X12 to the partner's ``delivery.url``.

``Content-Type: application/edi-x12`` and ``Idempotency-Key: <outbox item id>``, so
a partner can drop a re-delivery after a crash. 2xx: sent. 5xx, 408/425/429 and
network errors: transient (Retry-After honoured). Any other 4xx: permanent.

``[delivery.auth]`` authenticates each POST (gateway.partner_settings): ``bearer``
(``Authorization: Bearer``), ``basic`` (``Authorization: Basic``) or ``hmac``
(``X-Gateway-Timestamp`` and ``X-Gateway-Signature: sha256=<hex>`` over
``"<timestamp>." + body``). The secret is read from its
variable or file at each send and never written to a log, an attempt row or an
error text; a secret that cannot be read is a transient failure naming the
variable or file, so fixing it lets the retry through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime
from typing import Any, ClassVar

import aiohttp

from gateway.erp import RETRYABLE_STATUS, parse_retry_after, truncate
from gateway.partner_settings import BasicAuth, BearerAuth, DeliveryAuth, SecretUnavailable
from gateway.ports import Clock, OutboundItem, SendOutcome, SendResult

SIGNATURE_HEADER = "X-Gateway-Signature"
TIMESTAMP_HEADER = "X-Gateway-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``: what the partner recomputes
    (constant-time compare) after refusing a stale timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def auth_headers(auth: DeliveryAuth, body: bytes, now: datetime) -> dict[str, str]:
    """The headers that authenticate ``body`` as ``auth`` says (raises SecretUnavailable)."""
    secret = auth.secret_value()
    if isinstance(auth, BearerAuth):
        return {"Authorization": f"Bearer {secret}"}
    if isinstance(auth, BasicAuth):
        pair = base64.b64encode(f"{auth.username}:{secret}".encode()).decode("ascii")
        return {"Authorization": f"Basic {pair}"}
    timestamp = str(int(now.timestamp()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


class RestTransport:
    channel: ClassVar[str] = "rest"
    push: ClassVar[bool] = True

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._http: aiohttp.ClientSession | None = None

    async def send(self, item: OutboundItem, partner: Any) -> SendResult:
        delivery = partner.delivery
        if delivery.channel != self.channel:
            return SendResult(
                SendOutcome.PERMANENT, f"partner {item.partner_id} has no REST delivery URL now"
            )
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        headers = {
            "Content-Type": "application/edi-x12",
            "Idempotency-Key": item.id,
            "X-Gateway-Kind": item.kind,
            "X-Gateway-Interchange-Control": f"{item.interchange_control or 0:09d}",
        }
        if delivery.auth is not None:
            try:
                headers.update(auth_headers(delivery.auth, item.payload, self.clock()))
            except SecretUnavailable as exc:
                return SendResult(SendOutcome.TRANSIENT, f"partner {item.partner_id} delivery.auth.{exc}")
        started = time.perf_counter()
        try:
            async with self._http.post(
                delivery.url,
                data=item.payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=delivery.timeout_seconds),
            ) as resp:
                answer = truncate(await resp.text(errors="replace"))
                took = (time.perf_counter() - started) * 1000
                if 200 <= resp.status < 300:
                    return SendResult(SendOutcome.SENT, answer, status_code=resp.status, duration_ms=took)
                retryable = resp.status >= 500 or resp.status in RETRYABLE_STATUS
                return SendResult(
                    SendOutcome.TRANSIENT if retryable else SendOutcome.PERMANENT,
                    f"HTTP {resp.status}: {answer}",
                    retry_after=parse_retry_after(resp.headers.get("Retry-After"), self.clock()),
                    status_code=resp.status,
                    duration_ms=took,
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            took = (time.perf_counter() - started) * 1000
            return SendResult(SendOutcome.TRANSIENT, f"{type(exc).__name__}: {exc}", duration_ms=took)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
