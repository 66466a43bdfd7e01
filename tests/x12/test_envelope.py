"""Envelope checks: every code the reader assigns, on small hand-built inputs."""

from __future__ import annotations

import pytest

from translators.x12.codes import GroupSyntaxCode, InterchangeNote, SetSyntaxCode
from translators.x12.envelope import read_events, same_control_number
from translators.x12.events import (
    Event,
    GroupEnd,
    GroupStart,
    InterchangeEnd,
    InterchangeSegment,
    InterchangeStart,
    SetRead,
    Stray,
)

ISA_FIELDS = [
    "ISA",
    "00",
    " " * 10,
    "00",
    " " * 10,
    "ZZ",
    "SENDER".ljust(15),
    "ZZ",
    "RECEIVER".ljust(15),
    "240305",
    "1430",
    "U",
    "00401",
    "000000042",
    "0",
    "P",
    ">",
]


def isa(**changes: str) -> str:
    """An ISA line; keyword ``isaNN`` replaces field NN."""
    fields = list(ISA_FIELDS)
    for name, value in changes.items():
        fields[int(name[3:])] = value
    return "*".join(fields) + "~\n"


def x12(*segments: str, header: str | None = None) -> str:
    return (header if header is not None else isa()) + "".join(s + "~\n" for s in segments)


GS = "GS*PO*SENDER*RECEIVER*20240305*1430*7*X*004010"


def one_set(st: str = "ST*850*0001", se: str | None = "SE*4*0001") -> list[str]:
    return [st, "BEG*00*SA*PO-1**20240305", "REF*DP*012"] + ([se] if se else [])


def run(text: str) -> list[Event]:
    return list(read_events(text))


def the(kind: type, evts: list[Event]) -> list:  # type: ignore[type-arg]
    return [e for e in evts if isinstance(e, kind)]


def set_errors(evts: list[Event]) -> list[list[SetSyntaxCode]]:
    return [e.transaction_set.errors for e in the(SetRead, evts)]


def group_errors(evts: list[Event]) -> list[list[GroupSyntaxCode]]:
    return [e.errors for e in the(GroupEnd, evts)]


def notes(evts: list[Event]) -> list[list[InterchangeNote]]:
    return [e.notes for e in the(InterchangeEnd, evts)]


# --------------------------------------------------------------------------- a sound interchange


def test_sound_interchange_event_order_and_counts() -> None:
    evts = run(x12(GS, *one_set(), *one_set("ST*850*0002", "SE*5*0002"), "GE*2*7", "IEA*1*000000042"))
    assert [type(e).__name__ for e in evts] == [
        "InterchangeStart",
        "GroupStart",
        "SetRead",
        "SetRead",
        "GroupEnd",
        "InterchangeEnd",
    ]
    first, second = (e.transaction_set for e in the(SetRead, evts))
    assert (first.set_id, first.control_number, first.position, first.errors) == ("850", "0001", 1, [])
    assert second.position == 2
    assert second.errors == [SetSyntaxCode.SEGMENT_COUNT_WRONG]  # SE01 says 5, there are 4
    assert first.segments[0] == ["ST", "850", "0001"] and first.segments[-1] == ["SE", "4", "0001"]
    assert first.group is not None and first.group.control_number == "7" and first.group.version == "004010"
    (group_end,) = the(GroupEnd, evts)
    assert (group_end.sets_counted, group_end.errors, group_end.trailer) == (2, [], ["GE", "2", "7"])
    (end,) = the(InterchangeEnd, evts)
    assert (end.groups_counted, end.notes) == (1, [])


def test_implementation_reference_from_st03() -> None:
    evts = run(x12(GS, *one_set("ST*999*0001*005010X231A1"), "GE*1*7", "IEA*1*000000042"))
    assert the(SetRead, evts)[0].transaction_set.implementation_reference == "005010X231A1"


def test_zero_padded_counts_and_unpadded_control_numbers_are_fine() -> None:
    evts = run(x12(GS, *one_set(se="SE*0000000004*0001"), "GE*00001*000000007", "IEA*00001*42"))
    assert set_errors(evts) == [[]] and group_errors(evts) == [[]] and notes(evts) == [[]]


def test_same_control_number() -> None:
    assert same_control_number("000003438", "3438")
    assert same_control_number(" 0001 ", "0001")
    assert not same_control_number("0001", "0002")
    assert not same_control_number("A1", "a1")


# --------------------------------------------------------------------------- set checks


@pytest.mark.parametrize(
    ("se", "expected"),
    [
        ("SE*4*0001", []),
        ("SE*9*0001", [SetSyntaxCode.SEGMENT_COUNT_WRONG]),
        ("SE*X*0001", [SetSyntaxCode.SEGMENT_COUNT_WRONG]),
        ("SE*4*0002", [SetSyntaxCode.CONTROL_NUMBER_MISMATCH]),
        ("SE*2*0009", [SetSyntaxCode.SEGMENT_COUNT_WRONG, SetSyntaxCode.CONTROL_NUMBER_MISMATCH]),
    ],
)
def test_se_checks(se: str, expected: list[SetSyntaxCode]) -> None:
    evts = run(x12(GS, *one_set(se=se), "GE*1*7", "IEA*1*000000042"))
    assert set_errors(evts) == [expected]


@pytest.mark.parametrize("closer", ["ST*850*0002", "GE*1*7", "IEA*1*000000042", GS])
def test_missing_se_closes_the_set_at_the_next_envelope_segment(closer: str) -> None:
    evts = run(x12(GS, *one_set(se=None), closer))
    (read, *_rest) = the(SetRead, evts)
    assert read.transaction_set.errors == [SetSyntaxCode.TRAILER_MISSING]
    assert [s[0] for s in read.transaction_set.segments] == ["ST", "BEG", "REF"]


def test_missing_se_at_end_of_input() -> None:
    evts = run(x12(GS, *one_set(se=None)))
    assert set_errors(evts) == [[SetSyntaxCode.TRAILER_MISSING]]
    assert group_errors(evts) == [[GroupSyntaxCode.TRAILER_MISSING]]
    assert notes(evts) == [[InterchangeNote.IMPROPER_END_OF_FILE]]


def test_duplicate_st02_in_a_group_flags_the_later_set_only() -> None:
    evts = run(
        x12(GS, *one_set(), *one_set(), *one_set("ST*850*0002", "SE*4*0002"), "GE*3*7", "IEA*1*000000042")
    )
    assert set_errors(evts) == [[], [SetSyntaxCode.SET_CONTROL_NUMBER_NOT_UNIQUE], []]


def test_same_st02_in_different_groups_is_fine() -> None:
    gs8 = GS.replace("*7*", "*8*")
    evts = run(x12(GS, *one_set(), "GE*1*7", gs8, *one_set(), "GE*1*8", "IEA*2*000000042"))
    assert set_errors(evts) == [[], []] and group_errors(evts) == [[], []]


def test_set_outside_a_group() -> None:
    evts = run(x12(*one_set(), "IEA*0*000000042"))
    (read,) = the(SetRead, evts)
    assert read.transaction_set.errors == [SetSyntaxCode.SET_NOT_IN_GROUP]
    assert read.transaction_set.group is None
    assert notes(evts) == [[]]


def test_st_without_id_or_control_number() -> None:
    evts = run(x12(GS, *one_set("ST**", "SE*4*"), "GE*1*7", "IEA*1*000000042"))
    assert set_errors(evts) == [
        [SetSyntaxCode.MISSING_OR_INVALID_SET_ID, SetSyntaxCode.MISSING_OR_INVALID_CONTROL_NUMBER]
    ]


# --------------------------------------------------------------------------- group checks


@pytest.mark.parametrize(
    ("ge", "expected"),
    [
        ("GE*1*7", []),
        ("GE*2*7", [GroupSyntaxCode.SET_COUNT_WRONG]),
        ("GE*1*8", [GroupSyntaxCode.CONTROL_NUMBER_MISMATCH]),
        ("GE*0*9", [GroupSyntaxCode.SET_COUNT_WRONG, GroupSyntaxCode.CONTROL_NUMBER_MISMATCH]),
    ],
)
def test_ge_checks(ge: str, expected: list[GroupSyntaxCode]) -> None:
    evts = run(x12(GS, *one_set(), ge, "IEA*1*000000042"))
    (end,) = the(GroupEnd, evts)
    assert end.errors == expected and end.sets_counted == 1


def test_missing_ge_before_iea_and_before_next_gs() -> None:
    gs8 = GS.replace("*7*", "*8*")
    evts = run(x12(GS, *one_set(), gs8, *one_set(), "IEA*2*000000042"))
    assert group_errors(evts) == [[GroupSyntaxCode.TRAILER_MISSING], [GroupSyntaxCode.TRAILER_MISSING]]
    assert [e.trailer for e in the(GroupEnd, evts)] == [None, None]
    assert notes(evts) == [[]]


def test_duplicate_group_control_number_in_an_interchange() -> None:
    evts = run(x12(GS, *one_set(), "GE*1*7", GS, *one_set(), "GE*1*7", "IEA*2*000000042"))
    assert group_errors(evts) == [[], [GroupSyntaxCode.CONTROL_NUMBER_NOT_UNIQUE]]


# --------------------------------------------------------------------------- interchange checks


@pytest.mark.parametrize(
    ("iea", "expected"),
    [
        ("IEA*1*000000042", []),
        ("IEA*2*000000042", [InterchangeNote.INVALID_GROUP_COUNT]),
        ("IEA*1*000000043", [InterchangeNote.CONTROL_NUMBER_MISMATCH]),
        ("IEA*0*1", [InterchangeNote.INVALID_GROUP_COUNT, InterchangeNote.CONTROL_NUMBER_MISMATCH]),
    ],
)
def test_iea_checks(iea: str, expected: list[InterchangeNote]) -> None:
    evts = run(x12(GS, *one_set(), "GE*1*7", iea))
    assert notes(evts) == [expected]


def test_missing_iea_before_next_isa_and_at_end() -> None:
    evts = run(x12(GS, *one_set(), "GE*1*7") + x12(GS, *one_set(), "GE*1*7"))
    assert notes(evts) == [[InterchangeNote.IMPROPER_END_OF_FILE]] * 2
    assert [e.trailer for e in the(InterchangeEnd, evts)] == [None, None]
    assert len(the(InterchangeStart, evts)) == 2


@pytest.mark.parametrize(
    ("field", "value", "note"),
    [
        ("isa9", "241305", InterchangeNote.INVALID_DATE),
        ("isa9", "2403", InterchangeNote.INVALID_DATE),
        ("isa10", "2561", InterchangeNote.INVALID_TIME),
        ("isa12", "0040", InterchangeNote.INVALID_VERSION_ID),
        ("isa13", "00000004X", InterchangeNote.INVALID_CONTROL_NUMBER),
        ("isa13", "42", InterchangeNote.INVALID_CONTROL_NUMBER),
        ("isa14", "2", InterchangeNote.INVALID_ACK_REQUESTED),
        ("isa15", "X", InterchangeNote.INVALID_TEST_INDICATOR),
        ("isa16", "*", InterchangeNote.INVALID_COMPONENT_SEPARATOR),
        ("isa16", "A", InterchangeNote.INVALID_COMPONENT_SEPARATOR),
    ],
)
def test_isa_field_notes(field: str, value: str, note: InterchangeNote) -> None:
    control = "000000042" if field != "isa13" else value
    header = isa(**{field: value}) if field != "isa16" else isa().replace("*>~", f"*{value}~")
    evts = run(x12(GS, *one_set(), "GE*1*7", f"IEA*1*{control}", header=header))
    assert notes(evts) == [[note]]
    assert len(the(SetRead, evts)) == 1


def test_ack_requested_and_usage_are_read() -> None:
    start = run(x12("IEA*0*000000042", header=isa(isa14="1", isa15="T")))[0]
    assert isinstance(start, InterchangeStart)
    assert start.header.ack_requested and start.header.test


def test_bad_element_separator_falls_back_to_fixed_positions() -> None:
    header = isa().replace("ISA*", "ISA ", 1)
    evts = run(x12(GS, *one_set(), "GE*1*7", "IEA*1*000000042", header=header))
    assert notes(evts) == [[InterchangeNote.INVALID_DATA_ELEMENT_SEPARATOR]]
    assert set_errors(evts) == [[]]


def test_isa_without_isa16_uses_the_next_lines_terminator() -> None:
    header = isa().replace("*>~\n", "*~\n")
    evts = run(x12(GS, *one_set(), "GE*1*7", "IEA*1*000000042", header=header))
    assert notes(evts) == [[InterchangeNote.INVALID_COMPONENT_SEPARATOR]]
    assert set_errors(evts) == [[]]
    assert the(SetRead, evts)[0].transaction_set.segments[1] == ["BEG", "00", "SA", "PO-1", "", "20240305"]


def test_corrupt_isa_tag_ends_the_previous_interchange() -> None:
    corrupt = isa(isa13="000000043").replace("ISA", "FSA", 1).rstrip("\n~")
    evts = run(x12(GS, *one_set(), "GE*1*7", corrupt, GS, *one_set(), "GE*1*7", "IEA*1*000000043"))
    assert notes(evts) == [
        [InterchangeNote.IMPROPER_END_OF_FILE],
        [InterchangeNote.INVALID_CONTROL_STRUCTURE],
    ]
    starts = the(InterchangeStart, evts)
    assert [s.header.control_number for s in starts] == ["000000042", "000000043"]
    assert len(the(SetRead, evts)) == 2


# --------------------------------------------------------------------------- segments outside sets


def test_ta1_inside_an_interchange() -> None:
    evts = run(x12("TA1*000000001*240305*1430*R*015", "IEA*0*000000042"))
    (ta1,) = the(InterchangeSegment, evts)
    assert ta1.segment == ["TA1", "000000001", "240305", "1430", "R", "015"]
    assert notes(evts) == [[]]


def test_orphan_se_inside_a_group_is_an_interchange_segment() -> None:
    evts = run(x12(GS, *one_set(), "SE*2*2000", "GE*1*7", "IEA*1*000000042"))
    assert [e.segment for e in the(InterchangeSegment, evts)] == [["SE", "2", "2000"]]
    assert set_errors(evts) == [[]] and group_errors(evts) == [[]]


def test_garbage_after_iea_is_stray_not_an_error() -> None:
    evts = run(x12(GS, *one_set(), "GE*1*7", "IEA*1*000000042") + "1r\n")
    assert [e.text for e in the(Stray, evts)] == ["1r"]
    assert notes(evts) == [[]]


def test_group_start_carries_the_interchange() -> None:
    evts = run(x12(GS, *one_set(), "GE*1*7", "IEA*1*000000042"))
    (start,) = the(GroupStart, evts)
    assert start.interchange.control_number == "000000042" and start.header.functional_id == "PO"
