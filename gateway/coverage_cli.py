"""``gateway coverage DIR``: for a folder of a partner's X12 samples, per segment id
how many occurrences the canonical contract maps and how many it only lists in the
documents' ``unmapped`` (and in which loops): the onboarding view that says which
fields a new partner uses that the ERP would not get.

Offline: reads files, never a database or a running gateway. Every file under DIR
(recursively) is read; one that holds no X12 interchange is named on stderr and
skipped. Sets of 850/855/856/810 are counted whether they validate or not, with
default mapping rules. Exit codes: 0 done, 2 DIR unusable or no X12 in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SegmentCount", "add_coverage_command", "count_folder", "run_coverage"]


@dataclass
class SegmentCount:
    mapped: int = 0
    listed: int = 0
    loops: Counter[str] = field(default_factory=Counter)  # where the listed ones sat


def add_coverage_command(commands: Any) -> None:
    parser = commands.add_parser(
        "coverage", help="per segment id of a folder of X12 samples: occurrences mapped and only listed"
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="a folder of X12 files (read recursively)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_coverage)


def count_folder(folder: Path) -> tuple[dict[str, SegmentCount], int, list[str]]:
    """Counts per segment id, the number of files with X12, and the files skipped."""
    from translators.mapping.coverage import placed_in
    from translators.x12.errors import NotX12Error

    counts: dict[str, SegmentCount] = {}
    files = 0
    skipped: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            with path.open("rb") as stream:
                for _set_id, placed in placed_in(stream):
                    count = counts.setdefault(placed.segment, SegmentCount())
                    if placed.mapped:
                        count.mapped += 1
                    else:
                        count.listed += 1
                        count.loops[placed.loop or "-"] += 1
            files += 1
        except NotX12Error:
            skipped.append(str(path))
        except OSError as exc:
            skipped.append(f"{path}: {exc.strerror or exc}")
    return counts, files, skipped


def run_coverage(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if not folder.is_dir():
        print(f"gateway coverage: {folder}: not a folder", file=sys.stderr)
        return 2
    counts, files, skipped = count_folder(folder)
    for name in skipped:
        print(f"skipped (no X12 interchange): {name}", file=sys.stderr)
    if files == 0:
        print(f"gateway coverage: no X12 file in {folder}", file=sys.stderr)
        return 2
    ordered = sorted(counts.items(), key=lambda item: (-item[1].listed, item[0]))
    if args.json:
        rows = [
            {
                "segment": tag,
                "mapped": c.mapped,
                "listed": c.listed,
                "listed_in": dict(sorted(c.loops.items())),
            }
            for tag, c in ordered
        ]
        print(json.dumps({"files": files, "segments": rows}, indent=2))
        return 0
    print(f"{'segment':<8} {'mapped':>8} {'listed':>8}  listed in (loop: count)")
    for tag, c in ordered:
        where = ", ".join(f"{loop}: {n}" for loop, n in sorted(c.loops.items()))
        print(f"{tag:<8} {c.mapped:>8} {c.listed:>8}  {where}".rstrip())
    mapped = sum(c.mapped for c in counts.values())
    listed = sum(c.listed for c in counts.values())
    print(f"{files} file(s): {mapped} segment(s) mapped, {listed} only listed")
    return 0
