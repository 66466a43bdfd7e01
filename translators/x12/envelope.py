"""Envelope checks: turns the reader's tokens into the events of
:mod:`translators.x12.events`, checking ISA/IEA, GS/GE and ST/SE as it goes.

Every problem found is recorded with the acknowledgment code X12 prescribes (TA1
notes on ``InterchangeEnd``, AK9 codes on ``GroupEnd``, AK5 codes on the
``TransactionSet``); nothing recoverable raises. Only one transaction set is held
in memory at a time.

What this module must never do: validate segments inside a set against a grammar
(that is validation's job), decide whether an interchange control number was seen
before (025 needs history the caller owns), or read more input than it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from translators.x12.codes import GroupSyntaxCode, InterchangeNote, SetSyntaxCode
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
from translators.x12.model import GroupHeader, InterchangeHeader, Segment, TransactionSet, element
from translators.x12.reader import DEFAULT_CHUNK_SIZE, Body, Envelope, IsaFound, TokenReader


def same_control_number(a: str, b: str) -> bool:
    """Control numbers match when equal as written, or as numbers when both are
    digits (partners often drop or add leading zeros: '3438' vs '000003438')."""
    if a == b:
        return True
    a, b = a.strip(), b.strip()
    if a == b:
        return True
    return a.isdigit() and b.isdigit() and int(a) == int(b)


def _count(value: str) -> int | None:
    if value.isdigit():
        return int(value)
    value = value.strip()
    return int(value) if value.isdigit() else None


def _looks_like_isa(segment: Segment) -> bool:
    """A segment with an ISA's shape but another tag (a corrupted header)."""
    return (
        len(segment) == 17
        and len(segment[0]) == 3
        and len(segment[9].strip()) == 6
        and segment[9].strip().isdigit()
        and len(segment[13].strip()) == 9
    )


def _group_header(segment: Segment) -> GroupHeader:
    return GroupHeader(
        functional_id=element(segment, 1).strip(),
        sender_id=element(segment, 2).strip(),
        receiver_id=element(segment, 3).strip(),
        date=element(segment, 4).strip(),
        time=element(segment, 5).strip(),
        control_number=element(segment, 6).strip(),
        agency=element(segment, 7).strip(),
        version=element(segment, 8).strip(),
        segment=segment,
    )


class EnvelopeChecker:
    """The envelope state of one input: open interchange, group and set."""

    def __init__(self) -> None:
        self.out: list[Event] = []
        self._interchange: InterchangeHeader | None = None
        self._last_element = "*"  # to show segments found after an IEA as text
        self._notes: list[InterchangeNote] = []
        self._groups = 0
        self._group_numbers: set[str] = set()
        self._group: GroupHeader | None = None
        self._group_errors: list[GroupSyntaxCode] = []
        self._sets = 0
        self._set_numbers: set[str] = set()
        self._set: list[Segment] | None = None
        self._set_errors: list[SetSyntaxCode] = []

    # ----------------------------------------------------------------- feeding

    def isa(self, found: IsaFound) -> None:
        self.end_of_input()
        self._open_interchange(found.header, list(found.notes))

    def body(self, body: Body) -> None:
        if self._set is not None:
            self._set += body.segments
            return
        for segment in body.segments:
            self._loose(segment, body.offset)

    def envelope(self, segment: Segment) -> None:
        tag = segment[0]
        if tag == "SE":
            if self._set is not None:
                self._close_set(segment)
            else:
                self._loose(segment, -1)
            return
        if self._set is not None:
            self._close_set(None)
        if tag == "ST":
            self._open_set(segment)
        elif tag == "GS":
            self._close_group(None)
            self._open_group(segment)
        elif tag == "GE":
            if self._group is not None:
                self._close_group(segment)
            else:
                self._loose(segment, -1)
        elif tag == "IEA":
            self._close_group(None)
            self._close_interchange(segment)
        else:
            self._loose(segment, -1)

    def end_of_input(self) -> None:
        """Close whatever is still open: its trailers are missing."""
        self._close_set(None)
        self._close_group(None)
        self._close_interchange(None)

    # ----------------------------------------------------------------- interchanges

    def _open_interchange(self, header: InterchangeHeader, notes: list[InterchangeNote]) -> None:
        self._interchange = header
        self._last_element = header.delimiters.element
        self._notes = notes
        self._groups = 0
        self._group_numbers = set()
        self.out.append(InterchangeStart(header))

    def _close_interchange(self, trailer: Segment | None) -> None:
        header = self._interchange
        if header is None:
            if trailer is not None:
                self._loose(trailer, -1)
            return
        notes = self._notes
        if trailer is None:
            notes.append(InterchangeNote.IMPROPER_END_OF_FILE)
        else:
            if _count(element(trailer, 1)) != self._groups:
                notes.append(InterchangeNote.INVALID_GROUP_COUNT)
            if not same_control_number(element(trailer, 2), header.control_number):
                notes.append(InterchangeNote.CONTROL_NUMBER_MISMATCH)
        self.out.append(InterchangeEnd(header, trailer, self._groups, notes))
        self._interchange = None

    def _loose(self, segment: Segment, offset: int) -> None:
        """A segment outside any transaction set."""
        header = self._interchange
        if header is None:
            self.out.append(Stray(self._last_element.join(segment), offset))
            return
        if self._group is None and segment[0] != "TA1" and _looks_like_isa(segment):
            self._corrupt_isa(segment, header)
            return
        self.out.append(InterchangeSegment(segment, header))

    def _corrupt_isa(self, segment: Segment, previous: InterchangeHeader) -> None:
        # An interchange header whose tag was damaged in transit: the previous
        # interchange ended without its IEA, and this one cannot be trusted.
        self._close_interchange(None)
        header = InterchangeHeader(
            sender_qualifier=segment[5].strip(),
            sender_id=segment[6].strip(),
            receiver_qualifier=segment[7].strip(),
            receiver_id=segment[8].strip(),
            date=segment[9].strip(),
            time=segment[10].strip(),
            standards_id=segment[11],
            version=segment[12].strip(),
            control_number=segment[13].strip(),
            ack_requested=segment[14].strip() == "1",
            usage=segment[15].strip(),
            delimiters=previous.delimiters,
            segment=segment,
            index=previous.index + 1,
            offset=-1,
        )
        self._open_interchange(header, [InterchangeNote.INVALID_CONTROL_STRUCTURE])

    # ----------------------------------------------------------------- groups

    def _open_group(self, segment: Segment) -> None:
        header = _group_header(segment)
        interchange = self._interchange
        assert interchange is not None
        self._groups += 1
        self._group = header
        self._group_errors = []
        if header.control_number in self._group_numbers:
            self._group_errors.append(GroupSyntaxCode.CONTROL_NUMBER_NOT_UNIQUE)
        self._group_numbers.add(header.control_number)
        self._sets = 0
        self._set_numbers = set()
        self.out.append(GroupStart(header, interchange))

    def _close_group(self, trailer: Segment | None) -> None:
        header = self._group
        if header is None:
            return
        errors = self._group_errors
        if trailer is None:
            errors.append(GroupSyntaxCode.TRAILER_MISSING)
        else:
            if _count(element(trailer, 1)) != self._sets:
                errors.append(GroupSyntaxCode.SET_COUNT_WRONG)
            if not same_control_number(element(trailer, 2), header.control_number):
                errors.append(GroupSyntaxCode.CONTROL_NUMBER_MISMATCH)
        self.out.append(GroupEnd(header, trailer, self._sets, errors))
        self._group = None

    # ----------------------------------------------------------------- transaction sets

    def _open_set(self, segment: Segment) -> None:
        self._set = [segment]
        errors: list[SetSyntaxCode] = []
        if self._group is None:
            errors.append(SetSyntaxCode.SET_NOT_IN_GROUP)
        if not element(segment, 1).strip():
            errors.append(SetSyntaxCode.MISSING_OR_INVALID_SET_ID)
        control = element(segment, 2).strip()
        if not control:
            errors.append(SetSyntaxCode.MISSING_OR_INVALID_CONTROL_NUMBER)
        elif control in self._set_numbers:
            errors.append(SetSyntaxCode.SET_CONTROL_NUMBER_NOT_UNIQUE)
        self._set_numbers.add(control)
        self._set_errors = errors

    def _close_set(self, trailer: Segment | None) -> None:
        segments = self._set
        if segments is None:
            return
        self._set = None
        st = segments[0]
        st_count = len(st)
        control = st[2] if st_count > 2 else ""
        errors = self._set_errors
        if trailer is None:
            errors.append(SetSyntaxCode.TRAILER_MISSING)
        else:
            segments.append(trailer)
            count = len(trailer)
            if _count(trailer[1] if count > 1 else "") != len(segments):
                errors.append(SetSyntaxCode.SEGMENT_COUNT_WRONG)
            if not same_control_number(trailer[2] if count > 2 else "", control):
                errors.append(SetSyntaxCode.CONTROL_NUMBER_MISMATCH)
        interchange = self._interchange
        assert interchange is not None
        group = self._group
        if group is not None:
            self._sets += 1
        reference = st[3].strip() if st_count > 3 else ""
        self.out.append(
            SetRead(
                TransactionSet(
                    set_id=st[1].strip() if st_count > 1 else "",
                    control_number=control.strip(),
                    implementation_reference=reference or None,
                    segments=segments,
                    interchange=interchange,
                    group=group,
                    position=self._sets if group is not None else 1,
                    errors=errors,
                )
            )
        )


def read_events(source: bytes | str | BinaryIO, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Event]:
    """The envelope events of ``source`` in input order.

    Raises :class:`~translators.x12.errors.NotX12Error` only when no interchange
    header can be found at all; every other problem is an error code in the events.
    """
    checker = EnvelopeChecker()
    out = checker.out
    envelope, body = checker.envelope, checker.body
    for batch in TokenReader(source, chunk_size).batches():
        for token in batch:
            kind = type(token)
            if kind is Envelope:
                envelope(token.segment)  # type: ignore[union-attr]
            elif kind is Body:
                body(token)  # type: ignore[arg-type]
            elif kind is IsaFound:
                checker.isa(token)  # type: ignore[arg-type]
            else:
                out.append(token)  # type: ignore[arg-type]
        if out:
            yield from out
            out.clear()
    checker.end_of_input()
    yield from out
    out.clear()
