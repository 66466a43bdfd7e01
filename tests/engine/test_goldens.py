"""Golden files: fixtures/engine/NAME.edi → NAME.jsonl (what the engine makes of every
set) and NAME.ack (the TA1/997/999 the gateway answers), through the example partner
profiles under partners/. `pytest --regen-golden` rewrites the expected files.

The inputs cover 850/855/856/810 in 004010 and 005010, several delimiter styles,
two interchanges with their own delimiters in one file, Latin-1 text, partner rules
(a required reference), each envelope malformation the reader codes, and an
interchange repeated in one file (TA1 025, as `gateway ack` answers by default).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from gateway.partners import load_partners
from translators.engine import TranslatedInterchange, TranslatedSet, translate
from translators.profile import OurIdentity
from translators.x12.acks import render_acknowledgments

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "fixtures" / "engine"
INPUTS = sorted(GOLDEN.glob("*.edi"))
NOW = datetime(2026, 11, 22, 10, 30)
US = OurIdentity(interchange_qualifier="ZZ", interchange_id="OURCOMPANY", group_id="OURCOMPANY")


def run(path: Path) -> tuple[str, str]:
    partners = load_partners(ROOT / "examples" / "partners", identity=US)
    lines: list[str] = []
    acks: list[str] = []
    control = 1
    waiting: list[TranslatedSet] = []
    with path.open("rb") as stream:
        for item in translate(
            stream, partners=partners, receivers=partners.receivers, reject_duplicates=True
        ):
            if isinstance(item, TranslatedSet):
                waiting.append(item)
                continue
            assert isinstance(item, TranslatedInterchange)
            for tset in waiting:
                record = {
                    "set": f"{tset.outcome.set_id} {tset.outcome.control_number}",
                    "accepted": tset.accepted,
                    "ack_code": tset.outcome.ack_code.value,
                    "reason": tset.reason,
                    # what the gateway forwards: nothing of a rejected group or interchange
                    "envelope_rejection": item.rejection_of(tset),
                    "canonical": tset.document.model_dump(mode="json") if tset.document else None,
                }
                lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
            waiting = []
            profile = item.profile
            header = item.outcome.header
            ack = render_acknowledgments(
                item.outcome,
                functional_ack=profile.x12.functional_ack if profile else "none",
                ta1=profile.x12.ta1 if profile else "never",
                sender=("ZZ", "OURCOMPANY"),
                receiver=(header.sender_qualifier, header.sender_id),
                group_sender="OURCOMPANY",
                group_receiver=profile.x12.group_id if profile else header.sender_id,
                interchange_control=control,
                group_control=control,
                now=NOW,
            )
            if ack is not None:
                acks.append(ack.text)
                control += 1
    return "\n".join(lines) + "\n", "".join(acks)


@pytest.mark.parametrize("path", INPUTS, ids=[p.stem for p in INPUTS])
def test_golden(path: Path, regen_golden: bool) -> None:
    documents, acks = run(path)
    expected_docs, expected_acks = path.with_suffix(".jsonl"), path.with_suffix(".ack")
    if regen_golden or not expected_docs.exists():
        expected_docs.write_bytes(documents.encode("utf-8"))
        expected_acks.write_bytes(acks.encode("utf-8"))
        if not regen_golden:
            pytest.fail(f"{expected_docs.name} was missing and has been written: review it and commit")
    # bytes, not text: a CRLF in an acknowledgment is part of what we promise
    assert documents == expected_docs.read_bytes().decode("utf-8")
    assert acks == expected_acks.read_bytes().decode("utf-8")


def test_goldens_cover_what_the_issue_names() -> None:
    names = {p.stem for p in INPUTS}
    for required in (
        "850_bad_se_count",
        "850_bad_se_control",
        "850_bad_ge_count",
        "850_bad_ge_control",
        "850_bad_iea_count",
        "850_bad_iea_control",
        "850_missing_iea",
        "850_bad_isa_date_and_control",
        "850_4010_two_interchanges_own_delimiters",
        "856_5010_northwind_sopi",
        "810_5010_northwind",
        "850_wrong_receiver",
        "850_4010_newline_terminator",
        "850_duplicate_interchange",
    ):
        assert required in names
