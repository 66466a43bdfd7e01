"""The container installs exactly requirements.lock (with hashes, no resolver): every
runtime dependency of pyproject.toml must be in it, or the image starts and fails
on the first import (it happened: jinja2 was added to pyproject, not to the lock).
Regenerate with the pip-compile command in docs/deployment.md."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_every_runtime_dependency_is_locked_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] if "win32'" not in r or "!=" in r}
    text = (ROOT / "requirements.lock").read_text()
    locked = {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", text, re.M)}
    assert wanted <= locked, f"not in requirements.lock: {sorted(wanted - locked)}"
    blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text)[1:]  # one per locked package
    assert len(blocks) == len(locked) and all("--hash=sha256:" in b for b in blocks), "every package hashed"
    assert "--find-links" not in text and "--index-url" not in text, "no machine-specific source in the lock"
