"""Releases we ship no grammar for are validated with the nearest one, leniently
(decision 0004); leniency tables turn findings into notes (AK5 E) or drop them."""

from __future__ import annotations

import pytest

from translators.x12.codes import AckCode
from translators.x12.codes import ElementSyntaxCode as E
from translators.x12.codes import SegmentSyntaxCode as S
from translators.x12.envelope import read_events
from translators.x12.events import SetRead
from translators.x12.grammar import nearest_grammar_version
from translators.x12.leniency import Action, Check, most_lenient, switch_for
from translators.x12.model import TransactionSet
from translators.x12.validation import validate_set

ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*U*{isa}*000000001*0*P*>~"
HEAD = "BEG*00*SA*PO123**20240101~"
LINES = "PO1*1*10*EA*9.99**VP*ABC~CTT*1~"


def make_set(body: str, version: str = "004010") -> TransactionSet:
    segments = [s for s in body.split("~") if s]
    text = (
        ISA.format(isa=version[1:6])
        + f"GS*PO*SENDER*RECEIVER*20240101*1200*1*X*{version}~ST*850*0001~"
        + "".join(s + "~" for s in segments)
        + f"SE*{len(segments) + 2}*0001~GE*1*1~IEA*1*000000001~"
    )
    (tset,) = [e.transaction_set for e in read_events(text) if isinstance(e, SetRead)]
    return tset


@pytest.mark.parametrize(
    ("set_id", "version", "expected"),
    [
        ("850", "004010", ("004010", True)),
        ("850", "004010VICS", ("004010", True)),
        ("850", "004010X358", ("004010", True)),
        ("850", "00401", ("004010", True)),
        ("850", "004030", ("004010", False)),
        ("850", "004060", ("004010", False)),
        ("850", "003050", ("004010", False)),
        ("850", "003060", ("004010", False)),
        ("850", "005020", ("005010", False)),
        ("850", "006020", ("005010", False)),
        ("999", "004010", ("005010", False)),
        ("940", "004010", None),
        ("850", "T", None),
    ],
)
def test_nearest_grammar_version(set_id: str, version: str, expected: tuple[str, bool] | None) -> None:
    assert nearest_grammar_version(set_id, version) == expected


def test_004030_mtx_is_noted_not_rejected() -> None:
    outcome = validate_set(make_set(HEAD + "MTX**DELIVER TO DOCK 4~" + LINES, "004030"))
    assert outcome.accepted and outcome.ack_code is AckCode.ACCEPTED_WITH_ERRORS
    assert (outcome.grammar_version, outcome.grammar_exact) == ("004010", False)
    assert [(e.tag, e.position, e.code) for e in outcome.noted] == [("MTX", 3, S.UNEXPECTED)]


def test_004010_mtx_in_the_heading_is_still_rejected() -> None:
    outcome = validate_set(make_set(HEAD + "MTX**DELIVER TO DOCK 4~" + LINES))
    assert not outcome.accepted and outcome.grammar_exact
    assert [(e.tag, e.code) for e in outcome.segment_errors] == [("MTX", S.UNEXPECTED)]


def test_003050_is_validated_now() -> None:
    clean = validate_set(make_set("BEG*00*SA*PO123**240101~" + LINES, "003050"))
    assert clean.accepted and clean.grammar_version == "004010"
    # YYMMDD where 004010 wants CCYYMMDD is a release difference: noted
    assert [(e.tag, [x.code for x in e.elements]) for e in clean.noted] == [("BEG", [E.INVALID_DATE])]
    # a missing mandatory element is wrong in every release
    missing = validate_set(make_set("BEG*00*SA***240101~" + LINES, "003050"))
    assert not missing.accepted
    assert [(e.tag, [x.code for x in e.elements]) for e in missing.segment_errors] == [
        ("BEG", [E.MANDATORY_MISSING])
    ]


def test_a_segment_with_both_kinds_is_split() -> None:
    # N4 too long (noted in a nearest release) and N1 without a name or id (conditional: noted)
    outcome = validate_set(make_set(HEAD + "N1*ST~N4*TOWN*State~" + LINES, "004030"))
    assert outcome.accepted
    assert {(e.tag, e.elements[0].code) for e in outcome.noted} == {
        ("N1", E.CONDITIONAL_MISSING),
        ("N4", E.TOO_LONG),
    }


@pytest.mark.parametrize(
    ("table", "accepted", "noted"),
    [
        ({}, False, 0),
        ({Check.ELEMENT_LENGTH: Action.NOTE}, True, 1),
        ({Check.ELEMENT_LENGTH: Action.IGNORE}, True, 0),
        ({Check.CODE_VALUES: Action.NOTE}, False, 0),
    ],
)
def test_leniency_tables(table: dict[Check, Action], accepted: bool, noted: int) -> None:
    outcome = validate_set(make_set(HEAD + "N1*ST*STORE~N4*TOWN*State~" + LINES), leniency=table)
    assert outcome.accepted is accepted
    assert len(outcome.noted) == noted
    if not accepted:
        assert switch_for(outcome.segment_errors[0]) is Check.ELEMENT_LENGTH


def test_most_lenient_wins() -> None:
    merged = most_lenient(
        {Check.CONDITIONAL: Action.IGNORE}, {Check.CONDITIONAL: Action.NOTE, Check.CODE_VALUES: Action.NOTE}
    )
    assert merged == {Check.CONDITIONAL: Action.IGNORE, Check.CODE_VALUES: Action.NOTE}
