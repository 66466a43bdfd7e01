"""`gateway translate` benchmark (issue 10, section 6), beside pyx12 in the same run.

Generates 850 files (10 MB and 20 MB by default, from bench.generate's fixed seed)
and a one-set file, and a partner profile for their sender, then measures:

1. start-up: `gateway translate` on the one-set file, as a whole process (median
   wall of --runs), against the 0.3 s ceiling and against a bare `python -c pass`;
2. the full path in one process on the 10 MB file: read, validate, map, encode as
   the CLI does (`write_documents` into a null sink), MB/s of wall and CPU time,
   beside pyx12's X12Reader iterating the same file in the same process;
3. `gateway translate` (JSON Lines to a null sink) on the 20 MB file, one process
   (`--jobs 1`) and all cores (`--jobs N`), against pyx12's X12Reader iterating the
   file in its own process, in alternating runs (ours, pyx12, ours, pyx12, ...):
   median wall and the ratio.

    python -m bench.bench_cli [--sizes 10,20] [--runs 5] [--jobs N]

Run it from the checkout with its .venv (it calls `python -m gateway`); compile the
bytecode first (`python -m compileall -q gateway translators as2`) when
PYTHONDONTWRITEBYTECODE is set, or start-up measures the compiler.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.generate import generate

PROFILE = """id = "senderco"
name = "Sender Co (bench)"

[x12]
interchange_qualifier = "ZZ"
interchange_id = "SENDERCO"
group_id = "SENDERCO"
version = "004010"
"""
PYX12_READER = """
import sys
from pyx12.x12file import X12Reader
with open(sys.argv[1], encoding="latin-1") as stream:
    for _segment in X12Reader(stream):
        pass
"""
START_UP_CEILING = 0.3


def one_set(big: Path, out: Path) -> None:
    """The first interchange of ``big`` cut down to its first set."""
    data = big.read_bytes()
    end = data.index(b"~", data.index(b"SE*")) + 1
    gs = data[data.index(b"GS*") :].split(b"~", 1)[0].split(b"*")
    out.write_bytes(data[:end] + b"GE*1*" + gs[6] + b"~IEA*1*" + data[90:99] + b"~\n")


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of the child) of one run; output discarded."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-400:]}")
    return wall, (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def gateway(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", "translate", *args]


def in_process(path: Path, partners_dir: Path) -> tuple[float, float, int]:
    """The CLI's work on ``path`` in this process: wall, CPU, documents."""
    from gateway.partners import load_partners
    from gateway.translate_cli import TranslateOptions, translated, write_documents
    from translators.profile import OurIdentity

    partners = load_partners(
        partners_dir,
        identity=OurIdentity(interchange_qualifier="ZZ", interchange_id="GATEWAY", group_id="GATEWAY"),
    )

    class Null:
        lines = 0

        def write(self, data: bytes) -> int:
            self.lines += data.count(b"\n")
            return len(data)

    sink = Null()
    cpu, start = time.process_time(), time.perf_counter()
    with path.open("rb") as stream:
        items = translated(stream, TranslateOptions(name=str(path)), partners)
        write_documents(items, partners, sink, lambda _line: None, False)  # type: ignore[arg-type]
    return time.perf_counter() - start, time.process_time() - cpu, sink.lines


def pyx12_in_process(path: Path) -> tuple[float, float]:
    from pyx12.x12file import X12Reader

    cpu, start = time.process_time(), time.perf_counter()
    with path.open(encoding="latin-1") as stream:
        for _segment in X12Reader(stream):
            pass
    return time.perf_counter() - start, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,20", help="MB of the in-process and the CLI file")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to leave out: startup,inprocess,cli"
    )
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    small_mb, big_mb = (float(s) for s in args.sizes.split(","))
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "partners" / "senderco").mkdir(parents=True)
        (work / "partners" / "senderco" / "profile.toml").write_text(PROFILE)
        partners = str(work / "partners")
        small, big, one = work / "850-small.edi", work / "850-big.edi", work / "850-one.edi"
        for path, mb in ((small, small_mb), (big, big_mb)):
            with path.open("wb") as out:
                generate("850", int(mb * 1024 * 1024), out)
        one_set(small, one)

        if "startup" not in skip:
            # compiled grammars are kept between runs (gateway.grammar_cache): the first
            # run, the warm-up, compiles and stores the 850 map, the others load it
            os.environ["XDG_CACHE_HOME"] = str(work / "cache")
            ours_runs, bare_runs = [], []
            for _ in range(args.runs + 1):  # the first of each is a warm-up
                ours_runs.append(timed(gateway(str(one), "--partners", partners), work))
                bare_runs.append(timed([sys.executable, "-c", "pass"], work))
            wall = statistics.median(w for w, _ in ours_runs[1:])
            cpu = statistics.median(c for _, c in ours_runs[1:])
            python = statistics.median(w for w, _ in bare_runs[1:])
            print(
                f"start-up, one-set file: median {wall:.3f} s wall (min {min(w for w, _ in ours_runs[1:]):.3f}), "
                f"{cpu:.3f} s CPU; {wall / START_UP_CEILING:.2f}x the {START_UP_CEILING} s ceiling in wall time, "
                f"{cpu / START_UP_CEILING:.2f}x in CPU; bare python {python:.3f} s wall; first run (compiling "
                f"the map) {ours_runs[0][0]:.3f} s wall, {ours_runs[0][1]:.3f} s CPU"
            )

        if "inprocess" not in skip:
            mb = small.stat().st_size / 1e6
            wall, cpu, docs = in_process(small, work / "partners")
            py_wall, py_cpu = pyx12_in_process(small)
            print(
                f"full path in one process, {mb:.1f} MB 850 ({docs} documents): {mb / wall:.2f} MB/s wall, "
                f"{mb / cpu:.2f} MB/s CPU; pyx12 X12Reader {mb / py_wall:.2f} MB/s wall, {mb / py_cpu:.2f} MB/s CPU; "
                f"ratio {py_wall / wall:.2f}x wall, {py_cpu / cpu:.2f}x CPU"
            )

        if "cli" not in skip:
            mb = big.stat().st_size / 1e6
            runs: dict[str, list[tuple[float, float]]] = {"jobs 1": [], f"jobs {args.jobs}": [], "pyx12": []}
            commands = {
                "jobs 1": gateway(str(big), "--partners", partners, "--jobs", "1"),
                f"jobs {args.jobs}": gateway(str(big), "--partners", partners, "--jobs", str(args.jobs)),
                "pyx12": [sys.executable, "-c", PYX12_READER, str(big)],
            }
            for _ in range(args.runs):
                for name, command in commands.items():  # alternating
                    runs[name].append(timed(command, work))
            pyx12 = statistics.median(w for w, _ in runs["pyx12"])
            pyx12_cpu = statistics.median(c for _, c in runs["pyx12"])
            print(f"`gateway translate` on a {mb:.1f} MB 850, {args.runs} alternating runs (median):")
            print(f"  pyx12 X12Reader: {pyx12:.2f} s wall ({mb / pyx12:.2f} MB/s), {pyx12_cpu:.2f} s CPU")
            for name in list(commands)[:2]:
                wall = statistics.median(w for w, _ in runs[name])
                cpu = statistics.median(c for _, c in runs[name])
                print(
                    f"  gateway translate --{name.replace(' ', ' ')}: {wall:.2f} s wall ({mb / wall:.2f} MB/s), "
                    f"{cpu:.2f} s CPU; {pyx12 / wall:.2f}x pyx12 in wall time, {pyx12_cpu / cpu:.2f}x in CPU"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
