"""validate_set: every AK304 segment code and AK403 element code from hand-built
sets, envelope errors merged, strictness, the error cap, and the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.x12.codes import ElementSyntaxCode as E
from translators.x12.codes import SegmentSyntaxCode as S
from translators.x12.codes import SetSyntaxCode
from translators.x12.envelope import read_events
from translators.x12.events import SetRead
from translators.x12.grammar import load_grammar
from translators.x12.model import SegmentError, TransactionSet
from translators.x12.validation import MAX_SEGMENT_ERRORS, check_segments, set_grammar, validate_set

ISA = {
    "004010": "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*U*00401*000000001*0*P*>~",
    "005010": "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*>~",
}

HEAD_850 = "BEG*00*SA*PO123**20240101~"
LINES_850 = "PO1*1*10*EA*9.99**VP*ABC~CTT*1~"


def make_set(
    body: str, set_id: str = "850", version: str = "004010", fid: str = "PO", se_count: int | None = None
) -> TransactionSet:
    segments = [s for s in body.split("~") if s]
    count = se_count if se_count is not None else len(segments) + 2
    text = (
        ISA.get(version[:6], ISA["004010"])
        + f"GS*{fid}*SENDER*RECEIVER*20240101*1200*1*X*{version}~"
        + f"ST*{set_id}*0001~"
        + "".join(s + "~" for s in segments)
        + f"SE*{count}*0001~GE*1*1~IEA*1*000000001~"
    )
    sets = [e.transaction_set for e in read_events(text) if isinstance(e, SetRead)]
    assert len(sets) == 1
    return sets[0]


def seg_codes(body: str, **kw: str) -> list[tuple[str, int, S]]:
    return [(e.tag, e.position, e.code) for e in validate_set(make_set(body, **kw)).segment_errors]


def element_errors(body: str, tag: str, **kw: str) -> list[tuple[int, int | None, E, str | None]]:
    errors = [e for e in validate_set(make_set(body, **kw)).segment_errors if e.tag == tag]
    assert errors, f"no error on {tag}"
    assert errors[0].code is S.HAS_ELEMENT_ERRORS
    return [(x.position, x.component, x.code, x.value) for x in errors[0].elements]


def test_clean_850_is_accepted() -> None:
    outcome = validate_set(
        make_set(HEAD_850 + "N1*ST*STORE*92*0001~N3*1 MAIN ST~N4*TOWN*MN*55401~" + LINES_850)
    )
    assert outcome.accepted and outcome.set_errors == [] and outcome.segment_errors == []


# ---------------------------------------------------------------- AK304 segment codes


def test_unrecognized_segment_id() -> None:
    assert seg_codes(HEAD_850 + "ZZZ*1~" + LINES_850) == [("ZZZ", 3, S.UNRECOGNIZED)]


def test_unexpected_segment_has_no_place_from_here() -> None:
    # SLN only exists inside the PO1 loop
    assert seg_codes(HEAD_850 + "SLN*1**I~" + LINES_850) == [("SLN", 3, S.UNEXPECTED)]


def test_mandatory_segment_missing() -> None:
    assert seg_codes("CUR*BY*USD~" + LINES_850) == [("BEG", 2, S.MANDATORY_MISSING)]


def test_mandatory_loop_missing_reports_its_trigger() -> None:
    errors = validate_set(make_set(HEAD_850 + "CTT*0~")).segment_errors
    assert [(e.tag, e.position, e.code, e.loop_id) for e in errors] == [
        ("PO1", 3, S.MANDATORY_MISSING, "PO1")
    ]


def test_loop_over_max() -> None:
    assert seg_codes(HEAD_850 + "PO1*1*10*EA*9.99**VP*ABC~CTT*1~CTT*1~") == [("CTT", 5, S.LOOP_OVER_MAX)]


def test_segment_over_max_use() -> None:
    assert seg_codes(HEAD_850 + "CUR*BY*USD~CUR*BY*CAD~" + LINES_850) == [("CUR", 4, S.SEGMENT_OVER_MAX_USE)]


def test_segment_not_in_defined_set() -> None:
    # BIG belongs to the 810, not the 850
    assert seg_codes(HEAD_850 + "BIG*20240101*INV1~" + LINES_850) == [("BIG", 3, S.NOT_IN_DEFINED_SET)]


def test_segment_not_in_sequence() -> None:
    assert seg_codes(HEAD_850 + "REF*DP*12~CUR*BY*USD~" + LINES_850) == [("CUR", 4, S.NOT_IN_SEQUENCE)]


def test_segment_errors_carry_loop_ids_and_positions() -> None:
    errors = validate_set(make_set(HEAD_850 + "N1*XX*STORE~" + LINES_850)).segment_errors
    assert [(e.tag, e.position, e.code, e.loop_id) for e in errors] == [("N1", 3, S.HAS_ELEMENT_ERRORS, "N1")]


# ---------------------------------------------------------------- AK403 element codes


def test_mandatory_element_missing() -> None:
    assert element_errors("BEG*00*SA***20240101~" + LINES_850, "BEG") == [
        (3, None, E.MANDATORY_MISSING, None)
    ]


def test_trailing_mandatory_element_missing() -> None:
    assert element_errors("BEG*00*SA*PO1~" + LINES_850, "BEG") == [(5, None, E.MANDATORY_MISSING, None)]


def test_conditional_element_missing() -> None:
    # N1 P0304: N103 without N104
    assert element_errors(HEAD_850 + "N1*ST*STORE*92~" + LINES_850, "N1") == [
        (4, None, E.CONDITIONAL_MISSING, None)
    ]


def test_required_note_names_the_first_element() -> None:
    # N1 R0203: neither a name nor an id
    assert element_errors(HEAD_850 + "N1*ST~" + LINES_850, "N1") == [(2, None, E.CONDITIONAL_MISSING, None)]


def test_too_many_elements() -> None:
    body = "BEG*00*SA*PO123**20240101*******ZZ*EXTRA~" + LINES_850
    assert element_errors(body, "BEG") == [(13, None, E.TOO_MANY_ELEMENTS, "EXTRA")]


def test_too_short_and_too_long() -> None:
    body = HEAD_850 + "PO1*1*10*E*9.99**VP*ABC~CTT*1~"
    assert element_errors(body, "PO1") == [(3, None, E.TOO_SHORT, "E")]
    body = HEAD_850 + "N1*ST*STORE~N4*TOWN*State~" + LINES_850
    assert element_errors(body, "N4") == [(2, None, E.TOO_LONG, "State")]


def test_numeric_lengths_count_digits_only() -> None:
    # PO102 is R 1/15: 15 digits plus a minus sign and a point still fit
    assert validate_set(make_set(HEAD_850 + "PO1*1*-1234567890123.45*EA*9.99**VP*ABC~CTT*1~")).accepted
    assert element_errors(HEAD_850 + "PO1*1*1234567890123456*EA*1**VP*A~CTT*1~", "PO1") == [
        (2, None, E.TOO_LONG, "1234567890123456")
    ]


@pytest.mark.parametrize("bad", ["1O", "1.2.3", "1,5", "--1", "+1", "."])
def test_invalid_character_in_numbers(bad: str) -> None:
    body = HEAD_850 + f"PO1*1*{bad}*EA*9.99**VP*ABC~CTT*1~"
    assert element_errors(body, "PO1") == [(2, None, E.INVALID_CHARACTER, bad)]


def test_invalid_character_in_text() -> None:
    body = HEAD_850 + "N1*ST*STO\x07RE~" + LINES_850
    assert element_errors(body, "N1") == [(2, None, E.INVALID_CHARACTER, "STO\x07RE")]


def test_invalid_code() -> None:
    body = HEAD_850 + "N1*XX*STORE~" + LINES_850
    errors = validate_set(make_set(body)).segment_errors
    assert errors[0].elements[0].code is E.INVALID_CODE
    assert (errors[0].elements[0].reference, errors[0].elements[0].value) == ("98", "XX")


def test_invalid_date_and_time() -> None:
    body = HEAD_850 + "DTM*002*20240230*2561~" + LINES_850
    assert element_errors(body, "DTM") == [
        (2, None, E.INVALID_DATE, "20240230"),
        (3, None, E.INVALID_TIME, "2561"),
    ]


def test_exclusion_violated() -> None:
    # QTY E0204: a quantity and free-form text are exclusive (QTY is in the PO1 loop)
    body = HEAD_850 + "PO1*1*10*EA*9.99**VP*ABC~QTY*01*5**TEXT~CTT*1~"
    assert element_errors(body, "QTY") == [(4, None, E.EXCLUSION_VIOLATED, "TEXT")]


def test_composite_components_are_checked_with_their_position() -> None:
    ok = HEAD_850 + "PO1*1*10*EA*9.99**VP*ABC~SLN*1**I*2*EA>1.5~CTT*1~"
    assert validate_set(make_set(ok)).accepted
    bad = HEAD_850 + "PO1*1*10*EA*9.99**VP*ABC~SLN*1**I*2*E>x~CTT*1~"
    assert element_errors(bad, "SLN") == [(5, 1, E.TOO_SHORT, "E"), (5, 2, E.INVALID_CHARACTER, "x")]
    missing = HEAD_850 + "PO1*1*10*EA*9.99**VP*ABC~SLN*1**I*2*>1.5~CTT*1~"
    assert element_errors(missing, "SLN") == [(5, 1, E.MANDATORY_MISSING, None)]


def test_composite_with_too_many_components() -> None:
    body = HEAD_850 + "REF*DP*12**DP>1>IA>2>ZZ>3>X~" + LINES_850
    assert element_errors(body, "REF") == [(4, None, E.TOO_MANY_COMPONENTS, "DP>1>IA>2>ZZ>3>X")]


def test_repetitions_in_005010() -> None:
    body = "AK1*PO*1*005010~AK2*850*0001~AK5*A~AK9*A*1*1*1~"
    assert validate_set(make_set(body, set_id="997", version="005010", fid="FA")).accepted
    # AK502 is not a repeating element
    bad = "AK1*PO*1*005010~AK2*850*0001~AK5*R*5^4~AK9*R*1*1*0~"
    assert element_errors(bad, "AK5", set_id="997", version="005010", fid="FA") == [
        (2, None, E.TOO_MANY_REPETITIONS, "5^4")
    ]


def test_999_context_repeats_up_to_ten() -> None:
    body = "AK1*HC*1*005010X222A1~AK2*837*0001~IK3*CLM*5**8~CTX*A^B^C~IK4*2*782*1~IK5*R*5~AK9*R*1*1*0~"
    assert validate_set(make_set(body, set_id="999", version="005010X231A1", fid="FA")).accepted


def test_ak_codes_are_checked_fully() -> None:
    body = "AK1*PO*1~AK2*850*0001~AK3*PO1*5**9~AK5*R*5~AK9*R*1*1*0~"
    assert element_errors(body, "AK3", set_id="997", fid="FA") == [(4, None, E.INVALID_CODE, "9")]


# ---------------------------------------------------------------- set level


def test_segment_errors_set_code_5() -> None:
    outcome = validate_set(make_set(HEAD_850 + "ZZZ~" + LINES_850))
    assert outcome.set_errors == [SetSyntaxCode.ONE_OR_MORE_SEGMENTS_IN_ERROR]
    assert not outcome.accepted


def test_envelope_errors_are_merged() -> None:
    outcome = validate_set(make_set(HEAD_850 + LINES_850, se_count=9))
    assert outcome.set_errors == [SetSyntaxCode.SEGMENT_COUNT_WRONG]
    assert outcome.segment_errors == []


def test_set_without_grammar_is_left_to_the_caller_unless_strict() -> None:
    tset = make_set("W05*N*1*2~", set_id="940", fid="OW")
    assert validate_set(tset).accepted
    assert validate_set(tset, strict=True).set_errors == [SetSyntaxCode.NOT_SUPPORTED]


def test_explicit_grammar_is_used() -> None:
    tset = make_set(HEAD_850 + LINES_850, version="003050")
    assert validate_set(tset).accepted  # no grammar for 003050
    grammar = load_grammar("850", "004010")
    assert validate_set(tset, grammar).accepted


def test_garbage_is_capped() -> None:
    body = HEAD_850 + "".join(f"Q{i % 10}*x~" for i in range(500)) + LINES_850
    errors = validate_set(make_set(body)).segment_errors
    assert len(errors) == MAX_SEGMENT_ERRORS
    assert all(e.code is S.UNRECOGNIZED for e in errors)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.text(alphabet="ABCNPOST0123456789.-> ^", max_size=6), min_size=1, max_size=8),
        max_size=30,
    )
)
def test_never_raises_on_random_segments(body: list[list[str]]) -> None:
    grammar = load_grammar("850", "004010")
    assert grammar is not None
    segments = [["ST", "850", "0001"], *body, ["SE", "1", "0001"]]
    errors = check_segments(segments, grammar, ">", "^")
    assert len(errors) <= MAX_SEGMENT_ERRORS
    assert all(isinstance(e, SegmentError) for e in errors)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["BEG", "PO1", "PID", "N1", "N3", "SLN", "SAC", "CTT", "XYZ", "PO4", "SDQ"])
        ),
        max_size=40,
    ).map(lambda tags: [[tag, "1"] for group in tags for tag in group])
)
def test_validation_records_the_loop_paths_the_grammar_walk_gives(body: list[list[str]]) -> None:
    """What validation hands to the unmapped listing (``paths``) is what a second
    walk of the set would find, segments out of place and unknown ones included."""
    grammar = load_grammar("850", "004010")
    assert grammar is not None
    segments = [["ST", "850", "0001"], *body, ["SE", "1", "0001"]]
    paths: list[tuple[str, ...]] = []
    errors = check_segments(segments, grammar, ">", "^", paths)
    walked = [path for path, _segment in grammar.walk(segments)]
    if len(errors) < MAX_SEGMENT_ERRORS:
        assert paths == walked
    else:  # stopped early: what it recorded is the start of the walk
        assert paths == walked[: len(paths)]


# ---------------------------------------------------------------- corpus

# Corpus files whose sets are not clean, with the errors we checked are really in
# the file (tag, AK304, AK403 codes). Every other corpus 850/855/856/810/997/999 set
# that has a grammar must validate clean.
EXPECTED: dict[str, set[tuple[str, str, tuple[str, ...]]]] = {
    # DTM05 '19' is the 3xxx century element; in 004010 DTM05/06 are paired (P0506)
    "850/bots_850_4010_books_CTP_discount_isa00200.edi": {("DTM", "8", ("2",))},
    "850/bots_850_4010_building_products_crlf_isa00403.edi": {("DTM", "8", ("2",))},
    "850/bots_850_4010_terminator_plus_space_oneline.edi": {("DTM", "8", ("2",))},
    "850/bots_850_4010_wrapped_80col_CRLF_padded_gs03.edi": {("DTM", "8", ("2",))},
    "850/bots_850_4010_wrapped_80col_LF.edi": {("DTM", "8", ("2",))},
    # MALFORMED on purpose: PO1 qualifier without id (P0607), PO405 'X' without PO406
    "850/edieng_850_4010_syntax_note_errors.edi": {("PO1", "8", ("2",)), ("PO4", "8", ("2",))},
    # MALFORMED: a DTM lost its terminator, so the next segments run into it
    "850/edinet_850_4010_PO4_PID_malformed.edi": {
        ("DTM", "8", ("2", "3", "5", "8", "9")),
        ("CUR", "7", ()),
        ("PID", "7", ()),
        ("PO4", "7", ()),
        ("REF", "7", ()),
    },
    # N402 holds the placeholder 'State' (ID 2/2)
    "850/edinet_850a_4010_textile_MEA_TC2_MSG.edi": {("N4", "8", ("5",))},
    # one extra element after BEG05 shifts BEG06..BEG12 by one position
    "850/ledgersmb_850_4010_kitchen_sink_oneline_isa00200.edi": {("BEG", "8", ("3", "4", "5"))},
    # SAC*A***100.00: the amount sits in SAC04 (agency code), nothing in SAC02/03
    "850/vscodeedi_850_4010_dropship_SLN_LDT_N9.edi": {("SAC", "8", ("2",))},
    # MALFORMED on purpose: bad dates, unknown segment, BEG missing
    "850/vscodeedi_850_4010_invalid_dates_bad_segment.edi": None,  # type: ignore[dict-item]
    # PR855/fail fixture: unit 'DZN' is not a 2-character unit code
    "855/stupidedi_855_4010_isa_split_midelement.edi": {("PO1", "8", ("5",)), ("SCH", "8", ("5",))},
    # N402 placeholder 'LOCSTATE'
    "856/oop_856_4010_SOI_blank_HL_parent.edi": {("N4", "8", ("5",))},
    # 003060 validated with the 004010 map (decision 0004): BSN02 is empty, mandatory in both
    "856/oop_856_3060_SI_CLD_6digit_dates.edi": {("BSN", "8", ("1",))},
    # the reader sees mixed terminators: N1 swallows the following N4/HL
    "856/stupidedi_856_4010_mixed_terminators_canada.edi": None,  # type: ignore[dict-item]
    # ISS before TDS: the 810 summary order is TDS TXI CAD AMT SAC ISS CTT
    "810/oop_810_4010_walmart_SAC_ISS_CAD.edi": {("TDS", "3", ()), ("TDS", "7", ()), ("CAD", "7", ())},
    "810/oop_810_4030_multi_invoice_canada_CTP_SAC_ISS.edi": {("TDS", "3", ()), ("TDS", "7", ())},
    # IT1 with an empty unit (IT102/IT103/IT104 are all-or-none, P020304)
    "810/stupidedi_810_4010_pipe_element_sep_books.edi": {("IT1", "8", ("2",))},
    # staedi's repetition test file puts repetitions into non-repeating AK3/AK4 elements
    "997/staedi_997_repetition_separator.edi": {("AK3", "8", ("12",)), ("AK4", "8", ("12",))},
    # ST/SE only
    "997/staedi_empty997_ts_only_4010_isa.edi": {("AK1", "3", ()), ("AK9", "3", ())},
    # MALFORMED on purpose
    "997/staedi_invalid997_bad_codes.edi": {("AK1", "8", ("5",)), ("AK4", "8", ("6",))},
    "997/staedi_invalid997_min_bad_gs_date.edi": {("AK1", "8", ("5",))},
    # AK202 '002' is shorter than 329's four characters; CTX06 'C023' is not numeric (725 N0)
    "999/oop_999_5010_wisconsin_dhs_crlf.edi": {("AK2", "8", ("4",)), ("CTX", "8", ("6",))},
    "999/staedi_invalid999_misordered.edi": None,  # type: ignore[dict-item]
}

FOLDERS = ("850", "855", "856", "810", "997", "999")


def _corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (corpus / "x12" / folder).iterdir() if p.is_file())


def test_corpus_sets_validate_as_checked(corpus: Path) -> None:
    seen: set[str] = set()
    for path in _corpus_files(corpus):
        key = f"{path.parent.name}/{path.name}"
        for event in read_events(path.read_bytes()):
            if not isinstance(event, SetRead):
                continue
            tset = event.transaction_set
            paths: list[tuple[str, ...]] = []
            outcome = validate_set(tset, paths=paths)
            if outcome.grammar_version is not None:
                grammar = set_grammar(tset)
                assert grammar is not None
                assert paths == [p for p, _segment in grammar[0].walk(tset.segments)], key
            found = {
                (e.tag, e.code.value, tuple(sorted({x.code.value for x in e.elements}, key=int)))
                for e in outcome.segment_errors
            }
            if key not in EXPECTED:
                assert not found, f"{key}: {sorted(found)}"
                continue
            seen.add(key)
            expected = EXPECTED[key]
            if expected is None:
                assert found, f"{key} should have errors"
            elif found:
                assert found <= expected, f"{key}: {sorted(found - expected)}"
    assert seen == set(EXPECTED)
