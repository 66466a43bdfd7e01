"""A fake alert webhook receiver: a real aiohttp server on a free loopback port.

It verifies the Standard Webhooks signature of every request with its own copy of
the scheme (not the gateway's code), remembers every request, counts how often it
answered 2xx per ``webhook-id`` (more than once is a duplicate delivery) and
answers as scripted: the next N requests with the given statuses, then 200.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def standard_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    signature_ok: bool
    answered: int


@dataclass
class AlertReceiver:
    secret: str = ""
    script: list[int] = field(default_factory=list)  # statuses for the next requests, then 200
    requests: list[Received] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)  # webhook-id -> 2xx answers
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/alerts", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        webhook_id = request.headers.get("webhook-id", "")
        ok = bool(self.secret) and hmac.compare_digest(
            standard_signature(self.secret, webhook_id, request.headers.get("webhook-timestamp", ""), raw),
            request.headers.get("webhook-signature", ""),
        )
        status = self.script.pop(0) if self.script else 200
        self.requests.append(Received(headers, json.loads(raw), ok, status))
        if 200 <= status < 300:
            self.accepted[webhook_id] += 1
        return web.Response(status=status, text="ok" if status < 300 else "receiver unwell")

    def of(self, kind: str) -> list[Received]:
        return [r for r in self.requests if r.body["type"] == kind]
