"""A fake ERP webhook receiver: a real aiohttp server on a loopback port.

It counts every ``Idempotency-Key`` it accepted (so a test can assert "exactly once
per key"), checks the gateway's HMAC signature, and can be told to misbehave: answer
500, 429 with a Retry-After, 400, or hang past the client's timeout, for the next N
requests or until told otherwise, or answer one document (by PO number or
Idempotency-Key) with a given status N times or until it recovers. It runs either on
the caller's event loop (``await start()``) or in its own thread
(``start_in_thread()``) for tests that drive a gateway subprocess from synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Failure:
    status: int  # 0 = hang (timeout)
    retry_after: str | None = None
    body: str = "erp says no"
    hang_seconds: float = 30.0


@dataclass
class FakeErp:
    secret: str = ""
    token: str = ""  # when set, "Authorization: Bearer <token>" is required (401 otherwise)
    port: int = field(default_factory=free_port)
    accepted: Counter[str] = field(default_factory=Counter)  # Idempotency-Key -> 2xx answers given
    documents: dict[str, Any] = field(default_factory=dict)  # Idempotency-Key -> body
    requests: int = 0
    bad_signatures: int = 0
    received_at: dict[str, float] = field(default_factory=dict)  # key -> time.monotonic() of first 2xx
    headers: list[dict[str, str]] = field(default_factory=list)
    delay_seconds: float = 0.0  # every successful answer waits this long (a slow ERP)
    _script: list[Failure] = field(default_factory=list)
    _always: Failure | None = None
    # PO number or Idempotency-Key -> [answer, how many more times (None: until recover())]
    _refusals: dict[str, list[Any]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/erp/documents"

    # -- behaviour
    def fail_next(
        self, count: int, status: int, *, retry_after: str | None = None, body: str = "erp says no"
    ) -> None:
        self._script += [Failure(status, retry_after, body)] * count

    def fail_always(self, status: int, *, retry_after: str | None = None, hang_seconds: float = 30.0) -> None:
        self._always = Failure(status, retry_after, hang_seconds=hang_seconds)

    def refuse(
        self,
        match: str,
        status: int = 422,
        *,
        body: str = "erp refuses this document",
        times: int | None = None,
    ) -> None:
        """Answer ``status`` to the posts whose Idempotency-Key or ``document.po_number``
        is ``match``: every time until :meth:`recover`, or the next ``times`` ones."""
        self._refusals[match] = [Failure(status, body=body), times]

    def recover(self) -> None:
        self._script.clear()
        self._always = None
        self._refusals.clear()

    @property
    def posted(self) -> list[str]:
        """The Idempotency-Key of every request, in the order they came."""
        return [h.get("Idempotency-Key", "") for h in self.headers]

    @property
    def duplicates(self) -> dict[str, int]:
        return {k: n for k, n in self.accepted.items() if n > 1}

    # -- server
    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        key = request.headers.get("Idempotency-Key", "")
        self.headers.append(dict(request.headers))
        if self.token and not hmac.compare_digest(
            request.headers.get("Authorization", ""), f"Bearer {self.token}"
        ):
            return web.Response(status=401, text="no or wrong token")
        if self.secret:
            stamp = request.headers.get("X-Gateway-Timestamp", "")
            expected = (
                "sha256="
                + hmac.new(self.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            )
            if not hmac.compare_digest(expected, request.headers.get("X-Gateway-Signature", "")):
                self.bad_signatures += 1
                return web.Response(status=401, text="bad signature")
        failure = self._script.pop(0) if self._script else self._always
        if failure is None and self._refusals:
            po = None
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                po = json.loads(body).get("document", {}).get("po_number")
            match = key if key in self._refusals else po if po in self._refusals else None
            if match is not None:
                failure, times = self._refusals[match]
                if times is not None:
                    self._refusals[match][1] = times - 1
                    if times <= 1:
                        del self._refusals[match]
        if failure is not None:
            if failure.status == 0:
                await asyncio.sleep(failure.hang_seconds)
                return web.Response(status=504)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return web.Response(status=failure.status, text=failure.body, headers=headers)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if key not in self.accepted:
            self.received_at[key] = time.monotonic()
        self.accepted[key] += 1
        self.documents[key] = json.loads(body)
        return web.json_response({"ok": True}, status=201 if self.accepted[key] == 1 else 200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/erp/documents", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> None:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.stop())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-erp", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
