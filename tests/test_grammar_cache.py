"""Compiled grammars kept on disk (gateway.grammar_cache): a stored grammar is the
compiled one (same rules, same value checks), a damaged or foreign entry is never
used, and a second `gateway translate` starts without compiling a map."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.grammar_cache import FolderGrammarStore
from translators.x12 import grammar as grammars
from translators.x12.grammar import CompositeRule, ElementRule, Grammar, LoopRule

ROOT = Path(__file__).resolve().parent.parent
MAPS = sorted((ROOT / "translators" / "x12" / "maps").glob("[0-9]*.0*.xml"))
SAMPLE_VALUES = [
    "A",
    "ZZ",
    "BK",
    "00",
    "12",
    "-1.5",
    "1.",
    "20240229",
    "20230229",
    "1230",
    "2460",
    "X" * 40,
    "\x01",
]


def elements(loop: LoopRule) -> Iterator[ElementRule]:
    for child in loop.children:
        if isinstance(child, LoopRule):
            yield from elements(child)
        else:
            for element in child.elements or ():
                yield from element.components if isinstance(element, CompositeRule) else (element,)


def compiled(set_id: str, version: str) -> Grammar:
    xml = (ROOT / "translators" / "x12" / "maps" / f"{set_id}.{version}.xml").read_bytes()
    return grammars.compile_map(xml, grammars._dictionary(version), version)


@pytest.mark.parametrize("path", MAPS, ids=[p.stem for p in MAPS])
def test_a_stored_grammar_is_the_compiled_one(path: Path) -> None:
    set_id, version = path.stem.split(".")
    original = compiled(set_id, version)
    stored = pickle.loads(pickle.dumps(original, protocol=pickle.HIGHEST_PROTOCOL))
    assert stored.root == original.root  # every loop, segment, element, syntax note
    assert stored.segments == original.segments and stored.tags == original.tags
    count = 0
    for before, after in zip(elements(original.root), elements(stored.root), strict=True):
        assert after.good == before.good
        for value in SAMPLE_VALUES:
            assert after.check(value) == before.check(value), (after.reference, value)
        count += 1
    assert count > 20


def test_the_store_keeps_entries_private_and_ignores_foreign_ones(tmp_path: Path) -> None:
    store = FolderGrammarStore(tmp_path / "grammars")
    assert store.get("k") is None
    store.put("k", b"data")
    assert store.get("k") == b"data"
    assert (tmp_path / "grammars").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "grammars" / "k.pickle").stat().st_mode & 0o777 == 0o600
    os.chmod(tmp_path / "grammars" / "k.pickle", 0o666)  # anyone could have written it
    assert store.get("k") is None
    os.chmod(tmp_path / "grammars" / "k.pickle", 0o600)
    os.chmod(tmp_path / "grammars", 0o777)
    assert store.get("k") is None


def test_a_damaged_entry_is_compiled_again(tmp_path: Path) -> None:
    class Memory:
        def __init__(self) -> None:
            self.entries: dict[str, bytes] = {}

        def get(self, key: str) -> bytes | None:
            return self.entries.get(key)

        def put(self, key: str, data: bytes) -> None:
            self.entries[key] = data

    memory = Memory()
    grammars._load.cache_clear()
    try:
        grammars.use_grammar_store(memory)
        first = grammars._load("855", "004010")
        (key,) = memory.entries
        assert key.startswith("855.004010.")
        grammars._load.cache_clear()
        memory.entries[key] = b"not a pickle"
        again = grammars._load("855", "004010")
        assert again.root == first.root
        assert pickle.loads(memory.entries[key]).root == first.root  # stored again
        grammars._load.cache_clear()
        memory.entries[key] = pickle.dumps(compiled("850", "004010"))  # another map's grammar
        assert grammars._load("855", "004010").set_id == "855"
    finally:
        grammars.use_grammar_store(None)
        grammars._load.cache_clear()


def test_a_second_translate_loads_the_stored_grammar(tmp_path: Path) -> None:
    """The first run compiles the 850 map (lxml imported) and stores it; the second
    reads it: no lxml, same output."""
    source = ROOT / "fixtures" / "engine" / "850_4010_holdretail_valid.edi"
    probe = (
        "import sys\n"
        "from gateway.cli import main\n"
        f"code = main(['translate', {str(source)!r}, '--partners', {str(ROOT / 'examples' / 'partners')!r}])\n"
        "print(code, 'lxml' in sys.modules, file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")

    def run() -> tuple[str, str]:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        return done.stderr.strip(), done.stdout

    first, second = run(), run()
    assert first[0] == "0 True"
    assert second[0] == "0 False"
    assert second[1] == first[1] and first[1].count("\n") == 2
    assert [p.name.split(".")[:2] for p in (tmp_path / "cache" / "edi-gateway" / "grammars").iterdir()] == [
        ["850", "004010"]
    ]
