"""`gateway translate` in instructions (valgrind's callgrind), for a box too loaded
for CPU seconds to mean anything: deterministic counts of the same work on this
checkout and, with ``--other ROOT``, on another tree (e.g. an export of main), side
by side in one run.

1. the in-process path (bench_cli's: read, validate, map, encode into a null sink)
   over a generated 850 file of twice ``--size-mb``, minus the same process over one
   of ``--size-mb``: what the extra sets cost once everything one-time (imports, the
   map compiled from XML, the segment checks compiled after their first 256 uses)
   is paid in both;
2. start-up: the whole `python -m gateway translate one-set.edi` process, no
   configuration file, compiled grammars already in an on-disk cache (a warm-up
   run without valgrind fills it).

    python -m bench.callgrind_cli [--size-mb 0.6] [--other /tmp/x12-main]

Both trees run with this interpreter and its packages; compile their bytecode first
(`python -m compileall -q gateway translators as2`) when PYTHONDONTWRITEBYTECODE is
set, or the counts include the compiler. Needs `valgrind` on the PATH; slow (about
a minute per run on a quiet box).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_cli import PROFILE, one_set
from bench.generate import generate

HERE = Path(__file__).resolve().parent.parent
IN_PROCESS = """
import sys
from pathlib import Path
from gateway.partners import load_partners
from gateway.translate_cli import TranslateOptions, translated, write_documents
from translators.profile import OurIdentity

class Null:
    def write(self, data):
        return len(data)

identity = OurIdentity(interchange_qualifier="ZZ", interchange_id="GATEWAY", group_id="GATEWAY")
partners = load_partners(Path(sys.argv[2]), identity=identity)
with open(sys.argv[1], "rb") as stream:
    items = translated(stream, TranslateOptions(name=sys.argv[1]), partners)
    write_documents(items, partners, Null(), lambda _line: None, False)
"""


def instructions(command: list[str], root: Path, work: Path) -> int:
    """Instructions callgrind counts for ``command`` run with ``root`` first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(PYTHONPATH=str(root), XDG_CACHE_HOME=str(work / "cache"))
    out = work / "callgrind.out"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    out.unlink(missing_ok=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode not in (0, 1) or found is None:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-400:]}")
    return int(found.group(1))


def measure(root: Path, work: Path, small: Path, big: Path, one: Path) -> tuple[int, int]:
    """(instructions of the big file's sets beyond the small one's in process, of a
    one-set start-up)."""
    partners = str(work / "partners")
    whole = instructions([sys.executable, "-c", IN_PROCESS, str(big), partners], root, work)
    base = instructions([sys.executable, "-c", IN_PROCESS, str(small), partners], root, work)
    translate = [sys.executable, "-m", "gateway", "translate", str(one), "--partners", partners]
    env = {**os.environ, "PYTHONPATH": str(root), "XDG_CACHE_HOME": str(work / "cache")}
    subprocess.run(translate, cwd=work, env=env, stdout=subprocess.DEVNULL, check=True)  # fills the cache
    return whole - base, instructions(translate, root, work)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=0.6)
    parser.add_argument("--other", type=Path, help="another tree to count beside this checkout")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (counts do not depend on it)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "partners" / "senderco").mkdir(parents=True)
        (work / "partners" / "senderco" / "profile.toml").write_text(PROFILE)
        small, big, one = work / "850.edi", work / "850-big.edi", work / "850-one.edi"
        for path, size in ((small, args.size_mb), (big, 2 * args.size_mb)):
            with path.open("wb") as out:
                generate("850", int(size * 1024 * 1024), out)
        one_set(small, one)
        mb = (big.stat().st_size - small.stat().st_size) / 1e6
        trees = {"this checkout": HERE, **({"other": args.other.resolve()} if args.other else {})}
        counts = {name: measure(root, work, small, big, one) for name, root in trees.items()}
        for name, (sets, start) in counts.items():
            print(
                f"{name} ({trees[name]}): {mb:.2f} MB more 850 in process {sets / 1e9:.3f} G instructions "
                f"({sets / mb / 1e9:.3f} G per MB); one-set start-up {start / 1e9:.3f} G"
            )
        if args.other:
            (ours, our_start), (theirs, their_start) = counts["this checkout"], counts["other"]
            print(f"this / other: in process {ours / theirs:.3f}, start-up {our_start / their_start:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
