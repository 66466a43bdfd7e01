"""Bench-only stage trace of a ``gateway serve`` process (never imported by gateway/).

``bench/bench_tail.py`` starts the gateway as ``python -c "import tail_trace;
tail_trace.main(OUT)" serve ...``: this module wraps a few methods of the running
classes (the intake's batch commit, the hand-off, the translate pool call, the
translate write, the ERP posts, the delivered record, the SQLite write gate) to note
``time.monotonic()`` per message at each stage, measures every cyclic-GC pause
(``gc.callbacks``) and the event loop's lag (a 1 ms ticker), and writes it all as
JSON to OUT when the process exits. CLOCK_MONOTONIC is system-wide, so the bench
process's own times (post start, 202, ERP receipt) line up with these.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

STAGES: dict[str, dict[str, float]] = {}  # message id -> stage -> monotonic time
BATCHES: list[dict[str, Any]] = []  # one per batch step: kind, start, end, size
GATES: list[tuple[str, float, float, float]] = []  # task name, requested, acquired, released
GC_PAUSES: list[tuple[float, float, int, float]] = []  # start, seconds, generation, CPU seconds
LAGS: list[tuple[float, float]] = []  # when, seconds late (> 2 ms only)
OBJECTS: dict[str, int] = {}  # objects the collector tracks, at the first accept and at the end


def note(message_id: str, stage: str, at: float | None = None) -> None:
    STAGES.setdefault(message_id, {}).setdefault(stage, time.monotonic() if at is None else at)


def gc_callbacks() -> None:
    started: list[float] = [0.0, 0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[:] = time.perf_counter(), time.thread_time()
        else:
            took = time.perf_counter() - started[0]
            cpu = time.thread_time() - started[1]  # the pause's own CPU, whatever the neighbours do
            GC_PAUSES.append((time.monotonic() - took, took, info["generation"], cpu))

    gc.callbacks.append(callback)


async def lag_ticker() -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.001)
        late = time.monotonic() - before - 0.001
        if late > 0.002:
            LAGS.append((before, late))


def install() -> None:
    from gateway import pipeline, pipeline_write
    from gateway.db import engine
    from gateway.erp import WebhookSink
    from gateway.handoff import Handoff
    from gateway.intake import Intake
    from gateway.progress import ProgressBoard

    accept = Intake.accept

    async def traced_accept(self: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        result = await accept(self, **kwargs)
        note(result.message_id, "accept_start", started)
        note(result.message_id, "accept_end")
        if not any(t.get_name() == "tail-lag" for t in asyncio.all_tasks()):
            asyncio.get_running_loop().create_task(lag_ticker(), name="tail-lag")
            OBJECTS["first_accept"] = len(gc.get_objects())
            if os.environ.get("TAIL_FREEZE"):  # experiment: what gc.freeze() after start-up does
                gc.freeze()
        return result

    Intake.accept = traced_accept  # type: ignore[method-assign]

    commit = Intake._commit_batch

    async def traced_commit(self: Any, batch: list[Any]) -> None:
        started = time.monotonic()
        await commit(self, batch)
        ended = time.monotonic()
        BATCHES.append({"kind": "commit", "start": started, "end": ended, "size": len(batch)})
        for pending in batch:
            note(pending.message["id"], "commit_start", started)
            note(pending.message["id"], "commit_end", ended)

    Intake._commit_batch = traced_commit  # type: ignore[method-assign]

    put, take = Handoff.put, Handoff.take

    def traced_put(self: Any, handed: list[Any]) -> None:
        for h in handed:
            note(h.job.message_id, "handed")
        put(self, handed)

    def traced_take(self: Any, limit: int) -> list[Any]:
        taken = take(self, limit)
        now = time.monotonic()
        for h in taken:
            note(h.job.message_id, "taken", now)
        if taken:
            BATCHES.append(
                {"kind": "take", "start": now, "end": now, "size": len(taken), "queued": len(self)}
            )
        return taken

    Handoff.put, Handoff.take = traced_put, traced_take  # type: ignore[method-assign]

    plan_many = ProgressBoard.plan_many

    async def traced_plan_many(self: Any, messages: list[Any], partners: Any, pool: Any) -> list[Any]:
        started = time.monotonic()
        result = await plan_many(self, messages, partners, pool)
        ended = time.monotonic()
        BATCHES.append({"kind": "plan", "start": started, "end": ended, "size": len(messages)})
        for m in messages:
            note(m.id, "plan_start", started)
            note(m.id, "plan_end", ended)
        return result

    ProgressBoard.plan_many = traced_plan_many  # type: ignore[method-assign]

    write = pipeline_write.TranslateWrite._write_translated

    async def traced_write(self: Any, ready: list[Any], now: Any) -> Any:
        started = time.monotonic()
        result = await write(self, ready, now)
        ended = time.monotonic()
        BATCHES.append({"kind": "write", "start": started, "end": ended, "size": len(ready)})
        for job, _, _ in ready:
            note(job.message_id, "write_start", started)
            note(job.message_id, "write_end", ended)
        return result

    pipeline.Pipeline._write_translated = traced_write  # type: ignore[method-assign]

    deliver_batch = pipeline.Pipeline._deliver_batch

    async def traced_deliver(self: Any, batch: list[Any], new: Any = None) -> None:
        started = time.monotonic()
        for job in batch:
            note(job.message_id, "deliver_start", started)
        await deliver_batch(self, batch, new)
        ended = time.monotonic()
        BATCHES.append({"kind": "deliver", "start": started, "end": ended, "size": len(batch)})
        for job in batch:
            note(job.message_id, "recorded", ended)

    pipeline.Pipeline._deliver_batch = traced_deliver  # type: ignore[method-assign]

    record = pipeline.Pipeline._record_lean

    async def traced_record(self: Any, batch: list[Any], *args: Any) -> bool:
        started = time.monotonic()
        for job in batch:
            note(job.message_id, "record_start", started)
        return await record(self, batch, *args)

    pipeline.Pipeline._record_lean = traced_record  # type: ignore[method-assign]

    post = WebhookSink._post

    async def traced_post(self: Any, document: Any, *args: Any) -> Any:
        note(document.message_id, "post_start")
        result = await post(self, document, *args)
        note(document.message_id, "post_end")
        return result

    WebhookSink._post = traced_post  # type: ignore[method-assign]

    gate = engine.Database._gate

    @contextlib.asynccontextmanager
    async def traced_gate(self: Any) -> AsyncIterator[None]:
        task = asyncio.current_task()
        name = task.get_name() if task is not None else "?"
        requested = time.monotonic()
        async with gate(self):
            acquired = time.monotonic()
            try:
                yield
            finally:
                GATES.append((name, requested, acquired, time.monotonic()))

    engine.Database._gate = traced_gate  # type: ignore[method-assign]


def dump(path: str) -> None:
    OBJECTS["end"] = len(gc.get_objects())
    OBJECTS["frozen"] = gc.get_freeze_count()
    with open(path, "w") as f:
        json.dump(
            {
                "stages": STAGES,
                "batches": BATCHES,
                "gates": GATES,
                "gc": GC_PAUSES,
                "lags": LAGS,
                "objects": OBJECTS,
                "pid": os.getpid(),
            },
            f,
        )


def main(path: str) -> None:
    install()
    gc_callbacks()
    # SIGUSR1: write the trace now (the bench asks before it stops the process)
    signal.signal(signal.SIGUSR1, lambda *_: dump(path))
    atexit.register(dump, path)
    from gateway.cli import main as cli

    sys.argv = ["gateway", *sys.argv[1:]]
    try:
        code = cli()
    finally:
        dump(path)
    raise SystemExit(code)
