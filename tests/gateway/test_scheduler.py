"""The scheduler (gateway.runner.Scheduler): a due task is claimed and run once per
interval, a leased one is left to its holder, and a tick with nothing due takes no
write transaction (one read decides; the claim still checks under the write lock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, update

from gateway.db import schema
from gateway.db.engine import open_database
from gateway.db.models import Schedule
from gateway.runner import Instance, Scheduler, Task


async def test_due_tasks_run_once_and_an_idle_tick_writes_nothing(tmp_path: Path) -> None:
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    await schema.upgrade(db)
    now = [datetime(2026, 12, 7, 12, 0, tzinfo=UTC)]
    runs: list[str] = []

    async def work(name: str) -> None:
        runs.append(name)

    instance = Instance(db, lambda: now[0])
    scheduler = Scheduler(db, instance, lambda: now[0])
    scheduler.add(Task("often", 60, lambda: work("often")))
    scheduler.add(Task("later", 60, lambda: work("later"), first_delay=30))
    writes: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await scheduler.run_due() == ["often"]  # "later" waits for its first delay
        await asyncio.gather(*scheduler._running)
        assert runs == ["often"]

        writes.clear()
        now[0] += timedelta(seconds=10)
        assert await scheduler.run_due() == []
        assert writes == []  # nothing due: read only, the write gate never taken

        now[0] += timedelta(seconds=25)  # 35 s: "later" is due
        assert await scheduler.run_due() == ["later"]
        await asyncio.gather(*scheduler._running)
        now[0] += timedelta(seconds=30)  # 65 s: "often" again
        async with db.write() as conn:  # another instance holds "often" meanwhile
            await conn.execute(
                update(Schedule)
                .where(Schedule.name == "often")
                .values(locked_by="someone-else", locked_until=now[0] + timedelta(seconds=30))
            )
        assert await scheduler.run_due() == []
        assert runs == ["often", "later"]
    finally:
        await db.close()
