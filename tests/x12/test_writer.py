"""The writer: fixed-width ISA, computed trailers, refusals, and round trips through the reader."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.x12.envelope import read_events
from translators.x12.errors import RenderError
from translators.x12.events import GroupEnd, InterchangeEnd, InterchangeSegment, InterchangeStart, SetRead
from translators.x12.model import Delimiters, Segment
from translators.x12.writer import OutboundGroup, isa_version, serialize_segment, write_interchange, write_isa

AT = datetime(2024, 3, 5, 9, 7)
PO: list[Segment] = [
    ["ST", "850", "0001"],
    ["BEG", "00", "SA", "PO-1", "", "20240305"],
    ["N1", "ST", "CAFÉ VERDE"],
]


def interchange(**kwargs: object) -> str:
    args: dict[str, object] = {
        "sender": ("ZZ", "OURCO"),
        "receiver": ("01", "123456789"),
        "control_number": 42,
        "at": AT,
        "groups": [OutboundGroup("PO", "OURCO", "THEIRCO", 7, "004010", [PO])],
    }
    args.update(kwargs)
    return write_interchange(**args)  # type: ignore[arg-type]


def test_isa_is_exactly_106_characters_with_padded_fields() -> None:
    text = interchange()
    isa = text.split("~")[0]
    assert len(isa) + 1 == 106  # 106 with its terminator
    assert text[105] == "~"
    assert isa == (
        "ISA*00*          *00*          *ZZ*OURCO          *01*123456789      "
        "*240305*0907*U*00401*000000042*0*P*>"
    )


def test_whole_interchange_text() -> None:
    text = interchange(delimiters=Delimiters(suffix=""))
    assert text.split("~")[1:] == [
        "GS*PO*OURCO*THEIRCO*20240305*0907*7*X*004010",
        "ST*850*0001",
        "BEG*00*SA*PO-1**20240305",
        "N1*ST*CAFÉ VERDE",
        "SE*4*0001",
        "GE*1*7",
        "IEA*1*000000042",
        "",
    ]


def test_existing_se_is_rewritten() -> None:
    text = interchange(groups=[OutboundGroup("PO", "A", "B", 1, "004010", [[*PO, ["SE", "99", "XXXX"]]])])
    assert "SE*4*0001~" in text and "SE*99" not in text


@pytest.mark.parametrize(
    ("gs08", "isa12"),
    [("004010", "00401"), ("005010", "00501"), ("004010VICS", "00401"), ("005010X231A1", "00501")],
)
def test_isa12_from_the_group_version(gs08: str, isa12: str) -> None:
    assert isa_version(gs08) == isa12
    text = interchange(groups=[OutboundGroup("PO", "A", "B", 1, gs08, [PO])])
    assert text[84:89] == isa12
    assert text[82] == ("^" if isa12 >= "00402" else "U")


def test_ta1_interchange_without_groups() -> None:
    ta1 = ["TA1", "000000099", "240305", "0900", "R", "015"]
    text = interchange(groups=[], interchange_segments=[ta1], version="00501")
    evts = list(read_events(text))
    assert [type(e).__name__ for e in evts] == ["InterchangeStart", "InterchangeSegment", "InterchangeEnd"]
    assert isinstance(evts[1], InterchangeSegment) and evts[1].segment == ta1
    assert isinstance(evts[2], InterchangeEnd) and evts[2].notes == []
    assert text.endswith("IEA*0*000000042~\n")


def test_serialize_segment_drops_trailing_empty_elements() -> None:
    d = Delimiters(suffix="\r\n")
    assert serialize_segment(["PO1", "1", "", "EA", "", ""], d) == "PO1*1**EA~\r\n"
    assert serialize_segment(["SLN", "1", "PC>11.1>EA"], d) == "SLN*1*PC>11.1>EA~\r\n"


@pytest.mark.parametrize("value", ["A*B", "A~B", "A\nB", "A\rB"])
def test_delimiter_inside_a_value_is_refused(value: str) -> None:
    with pytest.raises(RenderError):
        serialize_segment(["N1", "ST", value], Delimiters())


@pytest.mark.parametrize(
    "change",
    [
        {"sender": ("ZZ", "X" * 16)},
        {"receiver": ("ZZZ", "X")},
        {"control_number": 1_000_000_000},
        {"control_number": 0},
        {"usage": "Q"},
        {"groups": []},
        {"groups": [OutboundGroup("PO", "A", "B", 1, "5010", [PO])]},
        {"groups": [OutboundGroup("PO", "A", "B", 1, "004010", [[["BEG", "00"]]])]},
        {"groups": [OutboundGroup("PO", "A", "B", 1, "004010", [[["ST", "850"]]])]},
        {"groups": [OutboundGroup("PO", "A", "B", 1, "004010", [[*PO, ["GE", "1", "1"], ["SE", "1", "1"]]])]},
        {
            "groups": [OutboundGroup("PO", "A", "B", 1, "005010", [PO])],
            "delimiters": Delimiters(repetition=None),
        },
        {"delimiters": Delimiters(element="~", segment="~")},
        {"delimiters": Delimiters(element="A")},
        {"sender": ("ZZ", "OUR*CO")},
    ],
)
def test_render_errors(change: dict[str, object]) -> None:
    with pytest.raises(RenderError):
        interchange(**change)


def test_write_isa_alone() -> None:
    text = write_isa(
        sender=("ZZ", "A"),
        receiver=("ZZ", "B"),
        control_number=7,
        at=AT,
        version="00501",
        usage="T",
        ack_requested=True,
        delimiters=Delimiters(suffix=""),
    )
    assert len(text) == 106
    assert text.endswith("*^*00501*000000007*1*T*>~")


def test_round_trip_with_several_groups() -> None:
    po2 = [["ST", "850", "0002"], ["PO1", "1", "2", "EA", "9.99", "", "UP", "012345678905"]]
    inv = [["ST", "810", "1001"], ["BIG", "20240305", "INV1"], ["TDS", "1998"]]
    groups = [
        OutboundGroup("PO", "A", "B", 1, "004010", [PO, po2]),
        OutboundGroup("IN", "A", "B", 2, "004010", [inv]),
    ]
    evts = list(read_events(interchange(groups=groups)))
    reads = [e.transaction_set for e in evts if isinstance(e, SetRead)]
    assert [r.segments[:-1] for r in reads] == [PO, po2, inv]
    assert [r.segments[-1] for r in reads] == [["SE", "4", "0001"], ["SE", "3", "0002"], ["SE", "4", "1001"]]
    assert all(r.errors == [] for r in reads)
    assert [e.errors for e in evts if isinstance(e, GroupEnd)] == [[], []]
    end = evts[-1]
    assert isinstance(end, InterchangeEnd) and end.notes == [] and end.groups_counted == 2
    start = evts[0]
    assert isinstance(start, InterchangeStart) and start.header.control_number == "000000042"


_value = st.text(
    alphabet=st.characters(blacklist_characters="*~^>\r\n", blacklist_categories=("Cs",)), max_size=10
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_value, min_size=1, max_size=6), max_size=8), st.sampled_from(["", "\n", "\r\n"]))
def test_round_trip_any_values(rows: list[list[str]], suffix: str) -> None:
    body: list[Segment] = [["REF", *row] for row in rows]
    for seg in body:  # the writer drops trailing empty elements, as X12 requires
        while len(seg) > 1 and seg[-1] == "":
            seg.pop()
    set_ = [["ST", "850", "0001"], *body]
    text = interchange(
        groups=[OutboundGroup("PO", "A", "B", 1, "005010", [set_])], delimiters=Delimiters(suffix=suffix)
    )
    reads = [e.transaction_set for e in read_events(text) if isinstance(e, SetRead)]
    assert len(reads) == 1 and reads[0].errors == []
    # The reader ignores blanks at the start of a segment; so does X12.
    assert reads[0].segments[:-1] == [[s[0], *s[1:]] for s in set_]
