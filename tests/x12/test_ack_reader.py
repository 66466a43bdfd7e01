"""The inbound ack reader on the public 997/999/TA1 samples and on small acks we
write here: verdicts per group and per set, leniency, and its one exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from translators.x12.ack_reader import (
    AckReadError,
    FunctionalAckReport,
    read_functional_ack,
    read_ta1,
    verdict_of,
)
from translators.x12.envelope import read_events
from translators.x12.events import InterchangeSegment, SetRead
from translators.x12.model import Delimiters, InterchangeHeader, Segment, TransactionSet

ACK_FOLDERS = ("997", "999", "ta1")


# --------------------------------------------------------------------------- reading X12 text


def read_x12(data: bytes) -> tuple[list[TransactionSet], list[Segment]]:
    """The transaction sets and the interchange-level segments (TA1) of ``data``."""
    sets: list[TransactionSet] = []
    loose: list[Segment] = []
    for event in read_events(data):
        if isinstance(event, SetRead):
            sets.append(event.transaction_set)
        elif isinstance(event, InterchangeSegment):
            loose.append(event.segment)
    return sets, loose


def ack_files(corpus: Path) -> list[Path]:
    return sorted(p for folder in ACK_FOLDERS for p in (corpus / "x12" / folder).iterdir() if p.is_file())


def corpus_acks(path: Path) -> tuple[list[FunctionalAckReport], list[Segment]]:
    sets, loose = read_x12(path.read_bytes())
    return [read_functional_ack(s) for s in sets if s.set_id in ("997", "999")], loose


def hand_made(*segments: str, set_id: str = "997", component: str = ">") -> TransactionSet:
    """A TransactionSet from ``*``-separated segment strings."""
    header = InterchangeHeader(
        "ZZ", "PARTNER", "ZZ", "US", "260301", "1200", "U", "00401", "000000001", False, "P",
        Delimiters(component=component), ["ISA"],
    )  # fmt: skip
    parsed = [s.split("*") for s in (f"ST*{set_id}*0001", *segments, "SE*0*0001")]
    return TransactionSet(set_id, "0001", None, parsed, header, None)


# --------------------------------------------------------------------------- corpus


def test_every_corpus_ack_reads_without_surprises(corpus: Path) -> None:
    files = ack_files(corpus)
    assert len(files) == 24
    read = 0
    for path in files:
        sets, loose = read_x12(path.read_bytes())
        for tset in sets:
            if tset.set_id not in ("997", "999"):
                continue
            try:
                report = read_functional_ack(tset)
            except AckReadError as exc:
                assert exc.reason, path.name
                continue
            read += 1
            assert report.kind == tset.set_id
            assert report.verdict in {
                "accepted",
                "accepted_with_errors",
                "partially_accepted",
                "rejected",
                "unknown",
            }
        for segment in loose:
            if segment[0] == "TA1":
                assert read_ta1(segment).interchange_control, path.name
    assert read >= 20


def test_corpus_997_accepting_a_vics_855(corpus: Path) -> None:
    (report,), _ = corpus_acks(corpus / "x12/997/bots_997_4010VICS_nak_terminator_oneline.edi")
    assert (report.functional_id, report.group_control, report.code) == ("PR", "10001", "A")
    assert (report.sets_included, report.sets_received, report.sets_accepted) == (1, 1, 1)
    assert [(s.set_id, s.control_number, s.code) for s in report.sets] == [("855", "1294", "A")]
    assert report.set_verdict("1294") == "accepted"
    assert report.problems == ()


def test_corpus_997_rejecting_with_element_error(corpus: Path) -> None:
    (report,), _ = corpus_acks(corpus / "x12/997/staedi_simple997_5010.edi")
    assert report.verdict == "rejected"
    (tset,) = report.sets
    assert tset.errors == ("5",)
    (seg,) = tset.segment_errors
    assert (seg.tag, seg.position, seg.loop_id, seg.code) == ("NM1", 8, "", "8")
    (el,) = seg.elements
    assert (el.position, el.component, el.reference, el.code, el.value) == (8, None, "66", "7", "MI")
    assert report.set_verdict("0021") == "rejected"


def test_corpus_997_without_ak2_loops_accepts_every_set(corpus: Path) -> None:
    (report,), _ = corpus_acks(corpus / "x12/997/gtlog_997_4010_gs05_8digit_time_backtick.edi")
    assert (report.functional_id, report.group_control, report.sets) == ("SM", "1", ())
    assert report.set_verdict("1234") == "accepted"


def test_corpus_997_with_only_st_se_is_an_ack_read_error(corpus: Path) -> None:
    sets, _ = read_x12((corpus / "x12/997/staedi_empty997_ts_only_4010_isa.edi").read_bytes())
    with pytest.raises(AckReadError, match="no AK1"):
        read_functional_ack(sets[0])


def test_corpus_997_with_non_numeric_positions_is_read_leniently(corpus: Path) -> None:
    (report,), _ = corpus_acks(corpus / "x12/997/staedi_997_repetition_separator.edi")
    (seg,) = report.sets[0].segment_errors
    assert seg.position is None
    assert any("AK302" in p for p in report.problems)
    (bad,), _ = corpus_acks(corpus / "x12/997/staedi_invalid997_bad_codes.edi")
    assert bad.functional_id == "HC NOT IN CODESET"
    assert bad.sets[0].segment_errors[0].elements[0].reference == "66 NON NUMERIC"


def test_corpus_999_partial_acceptance(corpus: Path) -> None:
    (report,), _ = corpus_acks(corpus / "x12/999/oop_999_5010_wisconsin_dhs_crlf.edi")
    assert (report.kind, report.functional_id, report.group_control, report.version) == (
        "999", "HC", "17456", "004010X098A1",
    )  # fmt: skip
    assert report.verdict == "partially_accepted"
    assert (report.sets_included, report.sets_received, report.sets_accepted) == (3, 3, 1)
    assert [(s.control_number, s.code) for s in report.sets] == [("0001", "A"), ("002", "R"), ("0003", "R")]
    clm = report.sets[1].segment_errors[0]
    assert (clm.tag, clm.position, clm.code) == ("CLM", 22, "8")
    assert [(e.position, e.reference, e.code) for e in clm.elements] == [(2, "782", "1")]
    assert report.set_verdict("0001") == "accepted"
    assert report.set_verdict("2") == "rejected"  # 002 and 2 are the same control number
    assert report.set_verdict("0004") == "unknown"  # not listed under a partial acceptance


def test_corpus_999_misordered_is_read_with_problems(corpus: Path) -> None:
    (report,), _ = corpus_acks(corpus / "x12/999/staedi_invalid999_misordered.edi")
    assert report.functional_id == "HC"  # padding stripped
    assert report.sets[0].code == "Q"
    assert report.sets[0].verdict == "unknown"
    joined = "\n".join(report.problems)
    assert "outside an AK2 loop" in joined
    assert "second AK5/IK5" in joined
    assert "extra ones ignored" in joined


def test_corpus_999_two_groups_two_sets_each(corpus: Path) -> None:
    reports, _ = corpus_acks(corpus / "x12/999/pyx12_999_multi_ST.txt")
    assert [r.control_number for r in reports] == ["0001", "0002", "0003", "0004"]
    assert all(
        r.verdict == "accepted" and r.sets[0].implementation_reference == "005010X220A1" for r in reports
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bots_ta1_single_reject_015.edi", ("000484889", "040709", "1339", "R", "015")),
        ("oboe_ta1_4010_lt_component_iea_mismatch.edi", ("723010635", "061024", "1006", "R", "024")),
        ("staedi_ta1_5010.txt", ("000000050", "200229", "1200", "A", "000")),
        ("edweave_ta1_inside_interchange_with_810.edi", ("17456", "080503", "1647", "A", "000")),
        ("oop_ta1_5010_gt_elem_plus_term_rejected.edi", ("900000001", "100624", "1430", "R", "006")),
    ],
)
def test_corpus_ta1(corpus: Path, name: str, expected: tuple[str, ...]) -> None:
    _, loose = read_x12((corpus / "x12/ta1" / name).read_bytes())
    report = read_ta1(loose[0])
    assert (report.interchange_control, report.date, report.time, report.code, report.note) == expected


def test_corpus_ta1_without_note(corpus: Path) -> None:
    _, loose = read_x12((corpus / "x12/ta1/oop_ta1_two_ta1_caret_component.edi").read_bytes())
    reports = [read_ta1(s) for s in loose]
    assert [(r.interchange_control, r.code, r.note, r.verdict) for r in reports] == [
        ("0659", "A", None, "accepted"),
        ("0660", "A", None, "accepted"),
    ]
    assert reports[0].answers("000000659")


# --------------------------------------------------------------------------- hand-made acks


def test_accepted_with_errors() -> None:
    report = read_functional_ack(
        hand_made("AK1*IN*12", "AK2*810*0001", "AK3*IT1*5**8", "AK4*2>1*358*4*0", "AK5*E*5", "AK9*E*1*1*1")
    )
    assert report.verdict == "accepted_with_errors"
    assert report.set_verdict("0001") == "accepted_with_errors"
    assert report.sets[0].segment_errors[0].elements[0].component == 1


def test_rejected_group_rejects_sets_whose_ak5_accepts() -> None:
    report = read_functional_ack(hand_made("AK1*SH*5", "AK2*856*0001", "AK5*A", "AK9*R*2*1*0*5"))
    assert report.group_errors == ("5",)
    assert report.set_verdict("0001") == "rejected"
    assert report.set_verdict("0002") == "rejected"


def test_missing_ak9_takes_the_verdict_from_the_ak5s() -> None:
    report = read_functional_ack(hand_made("AK1*SH*5", "AK2*856*0001", "AK5*A", "AK2*856*0002", "AK5*R*5"))
    assert report.code is None and report.verdict == "partially_accepted"
    assert "AK9 is missing" in report.problems[0]
    assert read_functional_ack(hand_made("AK1*SH*5", "AK2*856*0001", "AK5*R")).verdict == "rejected"
    assert read_functional_ack(hand_made("AK1*SH*5")).verdict == "unknown"


def test_ak2_without_ak5_is_unknown() -> None:
    report = read_functional_ack(
        hand_made("AK1*IN*9", "AK2*810*0001", "AK2*810*0002", "AK5*A", "AK9*P*2*2*1")
    )
    assert [s.verdict for s in report.sets] == ["unknown", "accepted"]
    assert any("no AK5" in p for p in report.problems)


def test_repeated_control_numbers_take_the_worst_verdict() -> None:
    report = read_functional_ack(
        hand_made("AK1*PO*5", "AK2*850*1", "AK5*A", "AK2*850*1", "AK5*R*5", "AK9*P*2*2*1")
    )
    assert report.set_verdict("000000001") == "rejected"


def test_unexpected_segments_and_bad_counts_are_problems_not_errors() -> None:
    report = read_functional_ack(hand_made("AK1*PO*5", "NTE*HELLO", "AK9*A*one*1*1"))
    assert report.sets_included is None and report.sets_received == 1
    assert any("NTE" in p for p in report.problems) and any("AK902" in p for p in report.problems)


def test_only_acks_are_read() -> None:
    with pytest.raises(AckReadError, match="850"):
        read_functional_ack(hand_made("BEG*00*SA*1", set_id="850"))
    with pytest.raises(AckReadError, match="TA1"):
        read_ta1(["AK1", "PO", "1"])
    with pytest.raises(AckReadError):
        read_ta1([])


def test_incomplete_ta1_is_reported() -> None:
    report = read_ta1(["TA1", "000000001", "", "", "Q"])
    assert report.verdict == "unknown"
    assert len(report.problems) == 3
    assert read_ta1(["TA1", "1", "260301", "1200", "R", "014"]).note_name == "invalid date"
    assert read_ta1(["TA1", "1", "260301", "1200", "R", "999"]).note_name is None


@pytest.mark.parametrize(
    ("code", "verdict"),
    [("A", "accepted"), ("E", "accepted_with_errors"), ("P", "partially_accepted"), ("R", "rejected"),
     ("M", "rejected"), ("W", "rejected"), ("X", "rejected"), ("Q", "unknown"), (None, "unknown"), (" A ", "accepted")],
)  # fmt: skip
def test_verdict_codes(code: str | None, verdict: str) -> None:
    assert verdict_of(code) == verdict
