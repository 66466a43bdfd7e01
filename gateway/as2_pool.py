"""AS2 messages opened and answered in worker processes (``[as2] receive_processes``),
so both CPUs work while the event loop does HTTP and storage.

Opening a signed and encrypted message and signing its MDN
(:func:`gateway.as2_receive.open_and_answer`) is CPU work: two RSA private-key
operations, the DER and MIME walks, the digests. On the event loop it serializes
every partner's messages behind one core. Here a small
:class:`~concurrent.futures.ProcessPoolExecutor` (forkserver, like
gateway.translate_pool) runs it:

- Our keys are loaded once per worker, at its start (their PEM crosses once).
- A partner's certificates cross as DER bytes with each message (a few hundred
  bytes to a few KB); a worker parses each distinct set once and keeps it, so a
  certificate rollover (a partner reload) is simply a new set.
- What comes back is :class:`~gateway.as2_receive.Opened` or
  :class:`~gateway.as2_receive.Refused`: plain picklable values.

Bodies above ``max_body_bytes`` are not sent to a worker (each crossing is a copy,
and the 100 MB message must stay under 5x its size in memory): the route opens them
in a thread as before. A worker that dies breaks the pool: the pool is rebuilt and
the messages of that call opened in a thread instead (so are they when workers
cannot start), so a partner never sees a 500 for it.
Workers die with the gateway (gateway.worker_lifetime).

This module never touches the database or the network.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import as2
from gateway.as2_receive import Incoming, Opened, Refused, open_and_answer
from gateway.as2_settings import As2Local
from gateway.worker_lifetime import WorkerPool, die_with_gateway

log = logging.getLogger(__name__)

# Larger bodies are opened in a thread of the gateway: see the module doc.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_BATCH = 16  # messages one worker call opens at most
_CERT_SETS = 256  # distinct partner certificate sets a worker (and the gateway's DER cache) keeps


@dataclass(slots=True)
class _Job:
    ders: tuple[bytes, ...]
    certs: tuple[x509.Certificate, ...]
    incoming: Incoming
    body: bytes
    future: asyncio.Future[Opened | Refused]


class As2Pool:
    def __init__(
        self,
        processes: int,
        local: As2Local,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if processes < 1:
            raise ValueError("an AS2 pool needs at least one process")
        self.processes = processes
        self.local = local
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch
        self._waiting: list[_Job] = []
        self._tasks: set[asyncio.Task[None]] = set()
        keys_pem = [as2.key_pair_pem(pair) for pair in local.keys]
        self._workers = WorkerPool(
            processes,
            ["gateway.as2_pool"],
            _init_worker,
            lambda _context: (os.getpid(), local.id, local.public_url, keys_pem),
        )
        self._ders: dict[int, tuple[tuple[x509.Certificate, ...], tuple[bytes, ...]]] = {}
        self.opened = 0  # messages opened in a worker, for tests
        self.calls = 0  # worker calls that opened them, for tests

    @property
    def rebuilds(self) -> int:
        """Pools replaced after a worker died, for tests and metrics."""
        return self._workers.rebuilds

    def takes(self, body: bytes) -> bool:
        return len(body) <= self.max_body_bytes

    async def open(
        self, partner_certs: tuple[x509.Certificate, ...], incoming: Incoming, body: bytes
    ) -> Opened | Refused:
        """:func:`open_and_answer` in a worker process (in a thread when the pool broke).

        Messages waiting at the same moment go to a worker in one call (up to
        ``max_batch``, spread over the workers): the pool's pickling and thread
        hand-offs are paid per call, not per message."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Opened | Refused] = loop.create_future()
        self._waiting.append(_Job(self._der_of(partner_certs), partner_certs, incoming, body, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._dispatch)  # after the requests already parsed in this turn of the loop
        return await future

    def _dispatch(self) -> None:
        jobs, self._waiting = self._waiting, []
        size = min(self.max_batch, -(-len(jobs) // self.processes))
        for start in range(0, len(jobs), size):
            task = asyncio.create_task(self._run(jobs[start : start + size]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, jobs: list[_Job]) -> None:
        try:
            executor: ProcessPoolExecutor | None = None
            try:
                executor = await self._workers.get()
                results = await self._in_worker(executor, jobs)
            except Exception as exc:  # a dead worker, or workers that cannot start: never a 500
                if isinstance(exc, BrokenProcessPool) and executor is not None:
                    self._workers.rebuild(executor)
                log.warning(
                    "AS2 worker processes failed on %d message(s) (%r): opened in a thread", len(jobs), exc
                )
                results = [
                    await asyncio.to_thread(open_and_answer, self.local, job.certs, job.incoming, job.body)
                    for job in jobs
                ]
        except BaseException:  # cancelled (the gateway stops): so are the requests waiting
            for job in jobs:
                job.future.cancel()
            raise
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():  # its request may have gone away meanwhile
                job.future.set_result(result)

    async def _in_worker(self, executor: ProcessPoolExecutor, jobs: list[_Job]) -> list[Opened | Refused]:
        items = [(job.ders, job.incoming, job.body) for job in jobs]
        results: list[Opened | Refused] = await asyncio.get_running_loop().run_in_executor(
            executor, _open_many_in_worker, items
        )
        self.opened += len(jobs)
        self.calls += 1
        return results

    def close(self) -> None:
        self._workers.close()

    async def start(self) -> None:
        """Start the workers now rather than on the first message."""
        await self._workers.get()

    def _der_of(self, certs: tuple[x509.Certificate, ...]) -> tuple[bytes, ...]:
        known = self._ders.get(id(certs))
        if known is not None and known[0] is certs:
            return known[1]
        if len(self._ders) >= _CERT_SETS:
            self._ders.clear()
        ders = tuple(c.public_bytes(Encoding.DER) for c in certs)
        self._ders[id(certs)] = (certs, ders)  # the tuple is kept: its id cannot be reused meanwhile
        return ders


# --------------------------------------------------------------------------- worker side

_held: dict[str, Any] = {"local": None, "certs": {}}


def _init_worker(
    gateway_pid: int, as2_id: str, public_url: str | None, keys_pem: list[tuple[bytes, bytes]]
) -> None:
    die_with_gateway(gateway_pid)
    keys = tuple(as2.load_key_pair(key, cert) for key, cert in keys_pem)
    _held["local"] = As2Local(as2_id, public_url, keys)


def _open_many_in_worker(items: list[tuple[tuple[bytes, ...], Incoming, bytes]]) -> list[Opened | Refused]:
    return [
        open_and_answer(_held["local"], _certificates(ders), incoming, body) for ders, incoming, body in items
    ]


def _certificates(ders: tuple[bytes, ...]) -> Sequence[x509.Certificate]:
    cache: dict[tuple[bytes, ...], tuple[x509.Certificate, ...]] = _held["certs"]
    certs = cache.get(ders)
    if certs is None:
        if len(cache) >= _CERT_SETS:
            cache.clear()
        certs = cache[ders] = tuple(x509.load_der_x509_certificate(d) for d in ders)
    return certs
