"""The streaming reader: delimiter detection, decoding, layout oddities and chunking."""

from __future__ import annotations

import contextlib
import io
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translators.x12.codes import InterchangeNote
from translators.x12.envelope import read_events
from translators.x12.errors import NotX12Error
from translators.x12.events import Event, InterchangeEnd, InterchangeStart, SetRead, Stray
from translators.x12.model import Delimiters
from translators.x12.reader import decode_chunks, iter_segments
from translators.x12.writer import OutboundGroup, write_interchange

AT = datetime(2024, 3, 5, 14, 30)


def isa(
    sep: str = "*",
    component: str = ">",
    terminator: str = "~",
    isa11: str = "U",
    version: str = "00401",
    control: str = "000000042",
    date: str = "240305",
    time: str = "1430",
    ack: str = "0",
    usage: str = "P",
    pad: bool = True,
) -> str:
    def fit(value: str, width: int) -> str:
        return value.ljust(width) if pad else value

    fields = [
        "ISA",
        "00",
        fit("", 10),
        "00",
        fit("", 10),
        "ZZ",
        fit("SENDER", 15),
        "ZZ",
        fit("RECEIVER", 15),
        date,
        time,
        isa11,
        version,
        control,
        ack,
        usage,
    ]
    return sep.join(fields) + sep + component + terminator


def body(sep: str = "*", terminator: str = "~", nl: str = "\n", control: str = "000000042") -> str:
    segments = [
        ["GS", "PO", "SENDER", "RECEIVER", "20240305", "1430", "7", "X", "004010"],
        ["ST", "850", "0001"],
        ["BEG", "00", "SA", "PO-1", "", "20240305"],
        ["N1", "ST", "CAFÉ VERDE"],
        ["SE", "4", "0001"],
        ["GE", "1", "7"],
        ["IEA", "1", control],
    ]
    return "".join(sep.join(s) + terminator + nl for s in segments)


def events(source: bytes | str, chunk_size: int = 1 << 20) -> list[Event]:
    return list(read_events(source, chunk_size=chunk_size))


def sets(evts: list[Event]) -> list[SetRead]:
    return [e for e in evts if isinstance(e, SetRead)]


def all_codes(evts: list[Event]) -> list[str]:
    codes: list[str] = []
    for e in evts:
        if isinstance(e, SetRead):
            codes += [c.value for c in e.transaction_set.errors]
        elif isinstance(e, InterchangeEnd):
            codes += [c.value for c in e.notes]
        elif hasattr(e, "errors"):
            codes += [c.value for c in e.errors]
    return codes


# --------------------------------------------------------------------------- delimiters


def test_standard_delimiters_and_header_fields() -> None:
    evts = events(isa() + "\n" + body())
    start = evts[0]
    assert isinstance(start, InterchangeStart)
    h = start.header
    assert h.delimiters == Delimiters(element="*", component=">", repetition=None, segment="~", suffix="\n")
    assert (h.sender_qualifier, h.sender_id, h.receiver_id) == ("ZZ", "SENDER", "RECEIVER")
    assert (h.date, h.time, h.version, h.control_number, h.usage) == (
        "240305",
        "1430",
        "00401",
        "000000042",
        "P",
    )
    assert h.ack_requested is False and h.index == 1 and h.offset == 0
    assert len(h.segment) == 17
    assert all_codes(evts) == []
    (read,) = sets(evts)
    assert read.transaction_set.segments[2] == ["N1", "ST", "CAFÉ VERDE"]


def test_repetition_separator_from_00402_on_only() -> None:
    h5 = events(isa(isa11="^", version="00501") + body())[0]
    h4 = events(isa(isa11="U", version="00401") + body())[0]
    assert isinstance(h5, InterchangeStart) and isinstance(h4, InterchangeStart)
    assert h5.header.delimiters.repetition == "^"
    assert h4.header.delimiters.repetition is None


def test_punctuation_in_isa11_before_00402_is_still_a_repetition_separator() -> None:
    start = events(isa(isa11="!", version="00204") + body())[0]
    assert isinstance(start, InterchangeStart)
    assert start.header.delimiters.repetition == "!"


@pytest.mark.parametrize(
    ("sep", "component", "terminator"),
    [("|", ":", "~"), ("\x7f", ">", "\x15"), ("~", "|", "\n"), ("*", "@", "!"), ("*", ">", "\u2026")],
)
def test_unusual_delimiters(sep: str, component: str, terminator: str) -> None:
    nl = "" if terminator == "\n" else "\n"
    text = isa(sep, component, terminator) + nl + body(sep, terminator, nl)
    evts = events(text.encode("utf-8"))
    start = evts[0]
    assert isinstance(start, InterchangeStart)
    assert (start.header.delimiters.element, start.header.delimiters.component) == (sep, component)
    assert start.header.delimiters.segment == terminator
    assert all_codes(evts) == []
    assert sets(evts)[0].transaction_set.segments[1] == ["BEG", "00", "SA", "PO-1", "", "20240305"]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_break_as_terminator(newline: str) -> None:
    text = isa(terminator=newline) + body(terminator=newline, nl="")
    evts = events(text.encode())
    assert all_codes(evts) == []
    (read,) = sets(evts)
    assert [s[0] for s in read.transaction_set.segments] == ["ST", "BEG", "N1", "SE"]


def test_unpadded_isa() -> None:
    text = isa(pad=False) + "\n" + body()
    assert len(isa(pad=False)) < 106
    evts = events(text)
    start = evts[0]
    assert isinstance(start, InterchangeStart) and start.header.sender_id == "SENDER"
    assert all_codes(evts) == []


def test_isa_split_across_lines_and_80_column_wrap() -> None:
    flat = isa() + body(nl="")
    wrapped = "\n".join(flat[i : i + 80] for i in range(0, len(flat), 80))
    assert events(wrapped) == events(flat)
    split_isa = isa().replace("*240305", "\n*240305") + "\n" + body()
    assert all_codes(events(split_isa)) == []


def test_bom_nbsp_padding_indentation_and_trailing_blanks() -> None:
    text = (
        "\ufeff"
        + isa().replace("      ", "\u00a0" * 6)
        + "\n"
        + "".join("\t  " + line + "   \n" for line in body().splitlines())
    )
    evts = events(text.encode("utf-8"))
    start = evts[0]
    assert isinstance(start, InterchangeStart) and start.header.receiver_id == "RECEIVER"
    assert start.header.offset == 0
    assert all_codes(evts) == []
    assert not [e for e in evts if isinstance(e, Stray)]


def test_space_after_terminator_on_one_line() -> None:
    text = isa() + " " + body(nl=" ")
    evts = events(text)
    assert all_codes(evts) == []
    assert sets(evts)[0].transaction_set.segments[0] == ["ST", "850", "0001"]


def test_space_then_line_break_as_terminator() -> None:
    # Some exporters write a space where the terminator belongs, then a line break.
    text = isa(terminator=" ") + "\r\n" + body(terminator=" ", nl="\r\n")
    evts = events(text)
    assert all_codes(evts) == []
    assert sets(evts)[0].transaction_set.segments[2] == ["N1", "ST", "CAFÉ VERDE"]


# --------------------------------------------------------------------------- decoding


def test_latin1_fallback_keeps_names() -> None:
    text = isa() + body()
    latin1 = events(text.encode("latin-1"))
    utf8 = events(text.encode("utf-8"))
    assert latin1 == utf8
    assert sets(latin1)[0].transaction_set.segments[2][2] == "CAFÉ VERDE"


def test_latin1_is_sticky_from_the_failing_chunk() -> None:
    data = b"abc" + "É".encode("latin-1") + b"def" + "É".encode()
    assert "".join(decode_chunks(data, 4)) == "abc" + "É" + "def" + "Ã\x89"


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5])
def test_multibyte_characters_split_across_chunks(chunk_size: int) -> None:
    text = "\ufeffCAFÉ … 漢字"
    assert "".join(decode_chunks(text.encode("utf-8"), chunk_size)) == text[1:]


def test_reads_file_objects_and_str() -> None:
    text = isa() + "\n" + body()
    assert events(io.BytesIO(text.encode())) == events(text) == events(text.encode())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- not X12 and strays


@pytest.mark.parametrize(
    "data", [b"", b"   \n", b"<html><body>ISA</body></html>", b'{"ISA": 1}', b"GS*PO*A*B~ST*850*1~"]
)
def test_not_x12_raises(data: bytes) -> None:
    with pytest.raises(NotX12Error):
        events(data)


def test_text_before_and_after_interchanges_is_stray() -> None:
    text = "hello\n" + isa() + "\n" + body() + "1r\n"
    evts = events(text)
    strays = [e for e in evts if isinstance(e, Stray)]
    assert [(s.text, s.offset) for s in strays] == [("hello", 0), ("1r", len(text) - 3)]
    assert isinstance(evts[1], InterchangeStart) and evts[1].header.offset == 6
    assert all_codes(evts) == []


def test_several_interchanges_with_different_delimiters() -> None:
    first = isa(control="000000001") + "\n" + body(control="000000001")
    second = isa("|", ":", "\r", control="000000002") + body("|", "\r", "", control="000000002")
    third = isa("~", "|", "\n", isa11="^", version="00501", control="000000003") + body(
        "~", "\n", "", control="000000003"
    )
    evts = events(first + second + third)
    starts = [e for e in evts if isinstance(e, InterchangeStart)]
    assert [s.header.delimiters.element for s in starts] == ["*", "|", "~"]
    assert [s.header.index for s in starts] == [1, 2, 3]
    assert [s.header.offset for s in starts] == [0, len(first), len(first) + len(second)]
    assert len(sets(evts)) == 3
    assert all_codes(evts) == []


def test_iter_segments_flat() -> None:
    segments = [seg for seg, _ in iter_segments(isa() + "\n" + body())]
    assert [s[0] for s in segments] == ["ISA", "GS", "ST", "BEG", "N1", "SE", "GE", "IEA"]


# --------------------------------------------------------------------------- chunk boundaries

_DELIMITER_STYLES = [
    Delimiters(suffix="\n"),
    Delimiters(suffix=""),
    Delimiters(suffix="\r\n"),
    Delimiters(element="|", component=":", repetition="^", segment="~", suffix="\n"),
    Delimiters(element="\x1d", component="\x1f", repetition="^", segment="\x1c", suffix=""),
    Delimiters(element="*", component=">", repetition="^", segment="\u2026", suffix="\n"),
]

_values = st.text(alphabet="ABCXYZ0189 .-/ÉÖ漢", min_size=0, max_size=12)


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = []
    for n in range(draw(st.integers(1, 3))):
        d = draw(st.sampled_from(_DELIMITER_STYLES))
        groups = []
        for g in range(draw(st.integers(0, 2))):
            sets_ = []
            for s in range(draw(st.integers(1, 3))):
                lines = draw(st.lists(st.lists(_values, min_size=1, max_size=5), max_size=6))
                sets_.append([["ST", "850", f"{s + 1:04d}"]] + [["REF", *line] for line in lines])
            groups.append(OutboundGroup("PO", "SENDER", "RECEIVER", g + 1, "005010", sets_))
        version = "00501" if not groups else None
        parts.append(
            write_interchange(
                sender=("ZZ", "SENDER"),
                receiver=("ZZ", "RECEIVER"),
                control_number=n + 1,
                at=AT,
                groups=groups,
                delimiters=d,
                version=version,
            )
        )
        parts.append(draw(st.sampled_from(["", "\n", "  \r\n", "junk\n"])))
    return "".join(parts)


@settings(max_examples=60, deadline=None)
@given(documents(), st.sampled_from([1, 7, 64, 333]), st.booleans())
def test_chunking_never_changes_events(text: str, chunk_size: int, as_latin1: bool) -> None:
    data = text.encode("utf-8")
    if as_latin1:
        with contextlib.suppress(UnicodeEncodeError):
            data = text.encode("latin-1")
    whole = events(data)
    assert events(data, chunk_size) == whole
    assert all_codes(whole) == []


def test_reference_file_with_tiny_chunks(corpus: object) -> None:
    from pathlib import Path

    assert isinstance(corpus, Path)
    for path in sorted((corpus / "x12").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            assert events(data, 7) == events(data), path.name
            assert events(data, 1) == events(data), path.name


def test_missing_iea_note_on_lone_isa() -> None:
    evts = events(isa())
    end = evts[-1]
    assert isinstance(end, InterchangeEnd) and end.notes == [InterchangeNote.IMPROPER_END_OF_FILE]


@settings(max_examples=300, deadline=None)
@given(
    st.data(),
    st.lists(
        st.tuples(
            st.integers(0, 10_000), st.integers(0, 3), st.text(alphabet="*~>^\r\n ISAEGT01|:", max_size=4)
        ),
        max_size=6,
    ),
    st.sampled_from([1, 5, 1 << 20]),
)
def test_damaged_input_never_raises_anything_but_not_x12(
    data: st.DataObject, edits: list[tuple[int, int, str]], chunk_size: int
) -> None:
    text = data.draw(documents())
    for at, cut, insert in edits:  # splice damage in at arbitrary places
        at %= len(text) + 1
        text = text[:at] + insert + text[at + cut :]
    try:
        evts = events(text.encode("utf-8"), chunk_size)
    except NotX12Error:
        return
    opened = sum(isinstance(e, InterchangeStart) for e in evts)
    closed = sum(isinstance(e, InterchangeEnd) for e in evts)
    assert opened == closed >= 1


def test_missing_terminator_does_not_hold_the_whole_input() -> None:
    from translators.x12.reader import Body, TokenReader

    # The ISA promises "~" but the data never uses it: segments cannot be found, and
    # the reader must still move on instead of buffering everything.
    text = isa() + "\n" + "REF*ZZ*" + "X" * 5000 + "\n"
    reader = TokenReader(text.encode(), chunk_size=64, max_segment=500)
    largest = 0
    bodies = 0
    for batch in reader.batches():
        largest = max(largest, len(reader._buf))
        bodies += sum(isinstance(t, Body) for t in batch)
    assert largest < 1000
    assert bodies > 1
    end = events(text, 64)[-1]
    assert isinstance(end, InterchangeEnd) and InterchangeNote.IMPROPER_END_OF_FILE in end.notes
