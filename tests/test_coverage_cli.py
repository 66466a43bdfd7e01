"""``gateway coverage DIR``: per segment id, occurrences mapped and only listed, on
the generated fidelity fixtures (known answers) and on public samples read in place
(every segment of every 850/855/856/810 set counted once)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from translators.x12.envelope import read_events
from translators.x12.errors import NotX12Error
from translators.x12.events import SetRead

ROOT = Path(__file__).resolve().parents[1]
FIDELITY = ROOT / "fixtures" / "fidelity"


def coverage(capsys: pytest.CaptureFixture[str], folder: Path) -> dict[str, dict[str, object]]:
    assert main(["coverage", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    return {row["segment"]: row for row in out["segments"]}


def test_known_answers_on_the_fidelity_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    rows = coverage(capsys, FIDELITY)
    # the 850's PKG sits in a PO1 loop, the 856's in an HL loop: neither is mapped
    assert rows["PKG"] == {"segment": "PKG", "mapped": 0, "listed": 2, "listed_in": {"HL": 1, "PO1": 1}}
    assert rows["PER"]["listed"] == 1 and rows["FOB"]["listed"] == 1
    # once dropped, now mapped: SAC, MSG, PO4, AMT, MAN
    for tag, mapped in {"SAC": 3, "MSG": 4, "PO4": 1, "AMT": 3, "MAN": 4}.items():
        assert (rows[tag]["mapped"], rows[tag]["listed"]) == (mapped, 0), tag


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", str(FIDELITY)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["segment", "mapped", "listed"]
    assert out[1].split() == ["PKG", "0", "2", "HL:", "1,", "PO1:", "1"]
    assert out[-1].startswith("4 file(s):")


def test_every_segment_of_the_public_samples_is_counted_once(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = 0
    for path in sorted((corpus / "x12").rglob("*")):
        if not path.is_file():
            continue
        try:
            events = list(read_events(path.read_bytes()))
        except NotX12Error:
            continue
        for event in events:
            if isinstance(event, SetRead) and event.transaction_set.set_id.strip() in (
                "850",
                "855",
                "856",
                "810",
            ):
                version = (event.transaction_set.group or event.transaction_set.interchange).version
                if version.strip():
                    expected += len(event.transaction_set.segments)
    rows = coverage(capsys, corpus / "x12")
    counted = sum(int(r["mapped"]) + int(r["listed"]) for r in rows.values())  # type: ignore[call-overload]
    assert counted == expected
    assert rows["CTP"]["mapped"] == 0 and int(rows["CTP"]["listed"]) > 0  # type: ignore[call-overload]
    assert int(rows["BEG"]["mapped"]) > 30 and rows["BEG"]["listed"] == 0  # type: ignore[call-overload]


def test_files_without_x12_are_named_and_an_empty_folder_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["coverage", str(tmp_path)]) == 2
    (tmp_path / "notes.txt").write_text("not an interchange", encoding="utf-8")
    assert main(["coverage", str(tmp_path)]) == 2
    assert "skipped (no X12 interchange): " in capsys.readouterr().err
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "po.edi").write_bytes((FIDELITY / "850_4010_dropped_before.edi").read_bytes())
    rows = coverage(capsys, tmp_path)
    assert rows["BEG"]["mapped"] == 1
    assert main(["coverage", str(tmp_path / "missing")]) == 2
