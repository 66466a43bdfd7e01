"""A fake trading partner receiving our REST deliveries (acks, 855/856/810) on a
loopback port: it keeps every body by Idempotency-Key and can be told to fail."""

from __future__ import annotations

from collections import Counter
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
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/edi/inbound"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.content_types.append(request.headers.get("Content-Type", ""))
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
