"""The collector's view of a long-running process's heap.

A started gateway holds ~150,000 objects the cyclic garbage collector tracks for
its whole life (modules, SQLAlchemy's mappers and compiled statements, pydantic's
validators, the X12 grammars, the partner profiles). Each full (generation 2)
collection walks every one of them: ~70-110 ms of CPU during which nothing else in the
process runs, every few seconds under load, so it was the largest single
stage in the slowest documents' post->ERP time (docs/performance.md, "The
end-to-end latency tail"). :func:`settle` collects once after start-up and moves
the survivors to the permanent generation (``gc.freeze``), which later
collections skip: they then walk only what the running service allocated.

Only the entry points call it (``gateway serve``, ``gateway worker``), once
their parts are built: a process that keeps building and dropping whole object
graphs (the test suite) would keep their cycles frozen for good. A frozen object
is still freed by reference counting; only a reference cycle among frozen objects
is never collected, which is why this is done once and not again after a reload.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect now, then freeze what survived; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
