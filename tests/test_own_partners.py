"""A user's own partners (``./partners``, per docs/partners.md) never change what the
test suite sees: tests read the examples from ``examples/partners`` or write their
own partner folders under ``tmp_path``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The repository's ./partners as a test or benchmark could spell it.
OWN_PARTNERS = re.compile(r"""ROOT\s*/\s*["']partners|Path\(\s*["']partners["']\s*\)""")


def test_no_test_or_benchmark_reads_the_repository_partners_folder() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for folder in ("tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OWN_PARTNERS.search(line)
    ]
    assert offenders == []


@pytest.mark.slow
def test_a_broken_partner_in_the_checkout_breaks_no_test(tmp_path: Path) -> None:
    # A copy of the checkout (tests, their data, the pytest settings) with a user's
    # broken partner in ./partners, running the modules that read partner profiles.
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "tests", repo / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("fixtures", "examples", "docs"):
        shutil.copytree(ROOT / name, repo / name)
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    (repo / "partners" / "acme").mkdir(parents=True)
    (repo / "partners" / "acme" / "profile.toml").write_text('id = "acme"\nname = "half written\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    modules = ["tests/test_cli.py", "tests/test_partners_check.py", "tests/test_profile.py"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *modules],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
