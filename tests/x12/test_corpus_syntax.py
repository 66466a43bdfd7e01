"""Every public X12 sample through the envelope reader: nothing but NotX12Error may
escape, the broken files give the codes their breakage earns, and the others none.

Codes are written as S<AK5 code>, G<AK9 code>, I<TA1 note> in input order.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from translators.x12.envelope import read_events
from translators.x12.errors import NotX12Error
from translators.x12.events import GroupEnd, InterchangeEnd, InterchangeSegment, SetRead, Stray


@dataclass
class Summary:
    codes: list[str] = field(default_factory=list)
    interchanges: int = 0
    sets: int = 0
    strays: list[str] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)  # tags of segments outside sets


def summarize(path: Path, chunk_size: int = 1 << 20) -> Summary:
    summary = Summary()
    with path.open("rb") as stream:
        for event in read_events(stream, chunk_size=chunk_size):
            if isinstance(event, SetRead):
                summary.sets += 1
                summary.codes += ["S" + c.value for c in event.transaction_set.errors]
            elif isinstance(event, GroupEnd):
                summary.codes += ["G" + c.value for c in event.errors]
            elif isinstance(event, InterchangeEnd):
                summary.interchanges += 1
                summary.codes += ["I" + c.value for c in event.notes]
            elif isinstance(event, Stray):
                summary.strays.append(event.text)
            elif isinstance(event, InterchangeSegment):
                summary.loose.append(event.segment[0])
    return summary


# file -> codes, each explained by what is wrong in the file
EXPECTED_CODES: dict[str, list[str]] = {
    # SE02 != ST02, GE02 != GS06, IEA02 != ISA13
    "mixed/edieng_940_control_numbers_mismatch.edi": ["S3", "G4", "I001"],
    # GE01=2 with one set, IEA01=2 with one group
    "mixed/edieng_940_wrong_GE_IEA_counts.edi": ["G5", "I021"],
    # SE01=50 for 6 segments; ISA13 000000055 vs IEA02 000000001
    "mixed/edinet_850_BAL_wrong_SE_count.edi": ["S4", "I001"],
    "mixed/edweave_810_missing_GE.edi": ["G3"],
    "mixed/edweave_810_missing_IEA.edi": ["I023"],
    # #1 lacks its IEA, #2 has a corrupt ISA tag ('FSA'), #3 is sound with '|'
    "mixed/edweave_810_three_isa_missing_iea_corrupt_isa_pipe.edi": ["I023", "I022"],
    # lone ISA with a space as its fourth character, no IEA
    "mixed/gtlog_isa_space_after_tag_malformed.edi": ["I026", "I023"],
    # ISA16 missing ('~' sits in its place), both ST02 = 0001, a DTM lacks its '~'
    "850/edinet_850_4010_PO4_PID_malformed.edi": ["S4", "S23", "I027"],
    # two groups both GS06=5, each with two sets sharing ST02 000000001
    "850/bots_850_4010_automotive_jit_mexico_plus_component.edi": ["S23", "S23", "G6"],
    # ISA13 000000055 vs IEA02 000000001 (same source as the BAL file)
    "850/edinet_850_4010_minimal_CSH_bom.edi": ["I001"],
    "850/edinet_850a_4010_textile_MEA_TC2_MSG.edi": ["I001"],
    # IEA02 followed by a stray ESC byte and 'i'
    "850/ledgersmb_850_5010_grocery_space_terminator_bad_iea.edi": ["I001"],
    "850/stupidedi_850_3010_nissan_bang_terminator.edi": ["S4"],  # SE01=28, 27 segments
    # SE01 wrong, GE02 != GS06, IEA02 000000001 vs ISA13 000007080
    "850/vscodeedi_850_4010_invalid_dates_bad_segment.edi": ["S4", "G4", "I001"],
    # '$' declared, three segments end with '~' instead: they merge
    "856/stupidedi_856_4010_mixed_terminators_canada.edi": ["S4"],
    "997/staedi_invalid997_min_bad_gs_date.edi": ["G4"],  # GE02 non-numeric
    "999/staedi_invalid999_misordered.edi": ["S4"],  # SE01=16, 18 segments
    "other/edinet_204_4010_newline_terminator.edi": ["S4"],  # SE01=41, 38 segments
    "other/edinet_832_4010_unpadded_isa.edi": ["S4"],  # SE01=17, 12 segments
    "other/oop_852_4010_caret_terminator_bad_iea.edi": ["I001"],  # IEA ends '~^'
    "other/oop_860_4010_missing_terminator.edi": ["S4"],  # an N1 lacks its '~'
    # IEA01=1 although the interchange holds only a TA1
    "ta1/oboe_ta1_4010_lt_component_iea_mismatch.edi": ["I021"],
    "ta1/staedi_ta1_5010.txt": ["I021"],
}

INTERCHANGES = {
    "850/bots_850_4010_dept_store_three_interchanges_crlf.edi": 3,
    "997/staedi_997_three_interchanges_5010.edi": 3,
    "mixed/edieng_940_two_isa_two_gs_each.edi": 2,
    "mixed/nodex12_850_two_interchanges_duplicate_ctrl.edi": 2,
    "mixed/edweave_810_three_isa_missing_iea_corrupt_isa_pipe.edi": 3,
}


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in (corpus / "x12").rglob("*") if p.is_file())


def test_every_file_reads_without_raising(corpus: Path) -> None:
    files = corpus_files(corpus)
    assert len(files) >= 100
    for path in files:
        with contextlib.suppress(NotX12Error):
            summarize(path)


def test_codes_are_exactly_the_expected_ones(corpus: Path) -> None:
    got = {str(p.relative_to(corpus / "x12")): summarize(p).codes for p in corpus_files(corpus)}
    assert set(EXPECTED_CODES) <= set(got)
    wrong = {name: codes for name, codes in got.items() if codes != EXPECTED_CODES.get(name, [])}
    assert wrong == {}


@pytest.mark.parametrize(("name", "count"), sorted(INTERCHANGES.items()))
def test_interchange_counts(corpus: Path, name: str, count: int) -> None:
    assert summarize(corpus / "x12" / name).interchanges == count


def test_garbage_after_iea_is_stray(corpus: Path) -> None:
    summary = summarize(corpus / "x12/mixed/edweave_810_garbage_after_IEA.edi")
    assert summary.strays == ["1r"] and summary.codes == []


def test_interchange_level_segments(corpus: Path) -> None:
    x12 = corpus / "x12"
    assert summarize(x12 / "ta1/bots_ta1_many_rejections_no_gs.edi").loose == ["TA1"] * 51
    assert summarize(x12 / "ta1/edweave_ta1_inside_interchange_with_810.edi").loose == ["TA1"]
    assert summarize(x12 / "997/staedi_997_with_ISB_ISE.edi").loose == ["ISB", "ISE"]
    # a second SE with no ST of its own sits in the group outside any set
    assert summarize(x12 / "mixed/gtlog_204_orphan_SE_malformed.edi").loose == ["SE"]


@pytest.mark.parametrize(
    ("name", "segments"),
    [
        # the declared terminator is a space followed by CRLF: 18 segments as SE01 says
        ("850/oop_850_adobe_space_terminator.edi", [18]),
        # U+2026 as terminator (three bytes in UTF-8)
        ("856/oop_856_4010_ellipsis_terminator_automotive.edi", [32]),
        ("850/bots_850_4010_wrapped_80col_LF.edi", [27, 26]),
        ("850/bots_850_4010VICS_dept_store_SDQ_control_char_delims.edi", None),
    ],
)
def test_layout_oddities_give_whole_segments(corpus: Path, name: str, segments: list[int] | None) -> None:
    reads = [
        e.transaction_set for e in read_events((corpus / "x12" / name).read_bytes()) if isinstance(e, SetRead)
    ]
    assert all(r.errors == [] for r in reads)
    assert all(r.segments[-1][0] == "SE" and int(r.segments[-1][1]) == len(r.segments) for r in reads)
    if segments is not None:
        assert [len(r.segments) for r in reads] == segments


def test_names_survive_decoding(corpus: Path) -> None:
    data = (corpus / "x12/850/edinet_850a_4010_textile_MEA_TC2_MSG.edi").read_bytes()
    text = " ".join(
        "*".join(s) for e in read_events(data) if isinstance(e, SetRead) for s in e.transaction_set.segments
    )
    assert "\ufffd" not in text and "Ã" not in text
