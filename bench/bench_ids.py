"""Benchmark of row ids: ``gateway.db.ids.new_id`` against the python-ulid library
(``str(ULID())``), the peer issue 13 asked us to weigh (docs/decisions/0008).

Usage: ``python -m bench.bench_ids [--count 200000] [--repeat 5]``. Prints the best
nanoseconds per id of each, their ratio, and whether each issued its ids in strictly
increasing order within one process (several per millisecond: the order documents
are written in). python-ulid is not a dependency: without it only ours is measured.

It must never be imported by the product; it measures, it does not test.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import timeit
from collections.abc import Callable

from gateway.db.ids import new_id


def per_id_ns(make: Callable[[], str], count: int, repeat: int) -> float:
    return min(timeit.repeat(make, number=count, repeat=repeat)) / count * 1e9


def increasing(make: Callable[[], str], count: int) -> bool:
    ids = [make() for _ in range(count)]
    return all(a < b for a, b in itertools.pairwise(ids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {args.count} ids, best of {args.repeat}"
    )
    ours = per_id_ns(new_id, args.count, args.repeat)
    print(f"gateway new_id      {ours:8.0f} ns/id  strictly increasing: {increasing(new_id, args.count)}")
    try:
        from ulid import ULID
    except ImportError:
        print("python-ulid not installed: no peer figure (pip install python-ulid)")
        return

    def peer() -> str:
        return str(ULID())

    theirs = per_id_ns(peer, args.count, args.repeat)
    print(f"python-ulid str()   {theirs:8.0f} ns/id  strictly increasing: {increasing(peer, args.count)}")
    print(f"ratio python-ulid / ours: {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
