"""A fake trading partner receiving our REST deliveries (acks, 855/856/810) on a
loopback port: it keeps every body by Idempotency-Key and can be told to fail.

Told to, it checks credentials as a partner's server would and answers 401 when
they are wrong: an exact ``Authorization`` header (bearer or basic), or an HMAC
signature (``X-Gateway-Signature: sha256=<hex>`` over ``"<timestamp>." + body``,
recomputed here and compared in constant time, timestamp within five minutes)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from fakes.erp_server import free_port


@dataclass
class FakePartner:
    port: int = field(default_factory=free_port)
    received: Counter[str] = field(default_factory=Counter)  # Idempotency-Key -> 2xx answers given
    bodies: dict[str, str] = field(default_factory=dict)
    content_types: list[str] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)  # statuses to answer next, in order
    authorization: str | None = None  # the exact Authorization header required
    hmac_secret: str | None = None  # the HMAC key the signature must verify with
    now: Callable[[], float] = time.time  # the partner's clock, for the timestamp check
    refused: int = 0  # requests answered 401
    headers: list[dict[str, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/edi/inbound"

    def _authentic(self, request: web.Request, raw: bytes) -> bool:
        if self.authorization is not None:
            return hmac.compare_digest(request.headers.get("Authorization", ""), self.authorization)
        if self.hmac_secret is not None:
            stamp = request.headers.get("X-Gateway-Timestamp", "")
            if not stamp.isdigit() or abs(self.now() - int(stamp)) > 300:
                return False
            mac = hmac.new(self.hmac_secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
            return hmac.compare_digest(
                request.headers.get("X-Gateway-Signature", ""), "sha256=" + mac.hexdigest()
            )
        return True

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = raw.decode("utf-8", "replace")
        self.headers.append(dict(request.headers))
        self.content_types.append(request.headers.get("Content-Type", ""))
        if not self._authentic(request, raw):
            self.refused += 1
            return web.Response(status=401, text="who are you?")
        if self.fail_with:
            return web.Response(status=self.fail_with.pop(0), text="partner trouble")
        key = request.headers.get("Idempotency-Key", "")
        self.received[key] += 1
        self.bodies[key] = body
        return web.Response(status=200, text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/edi/inbound", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
