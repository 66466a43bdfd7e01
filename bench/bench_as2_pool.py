"""What opening AS2 messages in worker processes (gateway.as2_pool) costs and gives,
without HTTP or storage: ``--messages`` 10 KB signed+encrypted messages, each
opened and answered with a signed MDN (gateway.as2_receive.open_and_answer),
``--concurrency`` at a time, four ways in the same run:

- inline: on the event loop, one after the other (what ``receive_processes = 0`` does);
- thread: in the default thread pool (RSA releases the GIL; the rest does not);
- pool N: in ``As2Pool(N)`` worker processes, the messages waiting at one moment in
  one call per worker; pool 1/1: one worker, one message per call (``max_batch=1``).

For each: messages/s (wall), and CPU ms per message of this process (the event
loop's share) and of the workers, from /proc. On an idle machine the pool's
ceiling is set by the larger of the two shares; on a busy one only CPU ms mean much.

Usage: python -m bench.bench_as2_pool [--messages 400] [--concurrency 16] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import as2
from bench.bench_as2 import make_messages
from bench.bench_service import cpu_seconds
from gateway.as2_pool import As2Pool
from gateway.as2_receive import Incoming, Opened, Refused, open_and_answer
from gateway.as2_settings import As2Local

Opener = Callable[[Incoming, bytes], Awaitable[Opened | Refused]]


def incoming(headers: dict[str, str]) -> Incoming:
    return Incoming(
        headers,
        headers["Message-ID"],
        "THEM",
        "GATEWAY",
        require_signature=True,
        require_encryption=True,
        max_decompressed_bytes=1 << 20,
        now=dt.datetime.now(dt.UTC),
    )


async def measure(
    label: str, opener: Opener, messages: list[tuple[Incoming, bytes]], concurrency: int
) -> None:
    queue = list(reversed(messages))

    async def sender() -> None:
        while queue:
            result = await opener(*queue.pop())
            assert isinstance(result, Opened), result

    pid = os.getpid()
    mine, everything = time.process_time(), cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    took = time.perf_counter() - started
    mine = (time.process_time() - mine) * 1000 / len(messages)
    workers = (cpu_seconds(pid) - everything) * 1000 / len(messages) - mine
    print(
        f"{label:8} {len(messages) / took:7.0f} messages/s; CPU ms per message: this process {mine:.2f}, "
        f"workers {workers:.2f}, total {mine + workers:.2f}"
    )


async def run(args: argparse.Namespace) -> None:
    us, them = as2.generate_self_signed("GATEWAY"), as2.generate_self_signed("THEM")
    local = As2Local("GATEWAY", None, (us,))
    certs = (them.certificate,)
    messages = [(incoming(h), b) for h, b in make_messages(args.messages, 10 * 1024, them, us)]
    print(f"{os.cpu_count()} CPUs, load average {Path('/proc/loadavg').read_text().split()[0]}")

    async def inline(msg: Incoming, body: bytes) -> Opened | Refused:
        return open_and_answer(local, certs, msg, body)

    async def thread(msg: Incoming, body: bytes) -> Opened | Refused:
        return await asyncio.to_thread(open_and_answer, local, certs, msg, body)

    pools = {
        "pool 1": As2Pool(1, local),
        "pool 1/1": As2Pool(1, local, max_batch=1),
        "pool 2": As2Pool(2, local),
    }
    try:
        for pool in pools.values():
            await pool.start()
        for _ in range(args.repeat):
            await measure("inline", inline, messages, args.concurrency)
            await measure("thread", thread, messages, args.concurrency)
            for label, pool in pools.items():
                await measure(label, lambda m, b, p=pool: p.open(certs, m, b), messages, args.concurrency)
    finally:
        for pool in pools.values():
            pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
