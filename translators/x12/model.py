"""The values the X12 layer passes around: delimiters, segments, envelopes and the
error records that acknowledgments are built from.

A segment is a plain ``list[str]``: ``[tag, e01, e02, ...]``. Elements are kept as
written: a composite still holds its component separators and a repeated element
its repetition separators; :func:`components` and :func:`repetitions` split them on
demand. Plain lists keep the hot path fast; everything richer is built from them.

Nothing in this module does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from translators.x12.codes import (
    AckCode,
    ElementSyntaxCode,
    GroupSyntaxCode,
    InterchangeNote,
    SegmentSyntaxCode,
    SetSyntaxCode,
)

Segment = list[str]


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The four separators of one interchange, as found in (or written to) its ISA.

    ``suffix`` is what a writer puts after each segment terminator (``"\\n"``,
    ``"\\r\\n"`` or ``""``); readers ignore it.
    """

    element: str = "*"
    component: str = ">"
    repetition: str | None = "^"
    segment: str = "~"
    suffix: str = "\n"


def components(element: str, delimiters: Delimiters) -> list[str]:
    """Split a composite element into its components."""
    return element.split(delimiters.component)


def repetitions(element: str, delimiters: Delimiters) -> list[str]:
    """Split a repeated element into its occurrences (one if the version has none)."""
    if delimiters.repetition is None:
        return [element]
    return element.split(delimiters.repetition)


def element(segment: Segment, position: int) -> str:
    """Element ``position`` (1-based) of ``segment``, or ``""`` when absent."""
    return segment[position] if position < len(segment) else ""


# --------------------------------------------------------------------------- envelopes


@dataclass(slots=True)
class InterchangeHeader:
    """An ISA segment, read. ``index`` counts interchanges in the input from 1;
    ``offset`` is the character offset of the ISA in the decoded input."""

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: str  # ISA09 YYMMDD
    time: str  # ISA10 HHMM
    standards_id: str  # ISA11 (repetition separator from 00402 on)
    version: str  # ISA12
    control_number: str  # ISA13
    ack_requested: bool  # ISA14 == "1"
    usage: str  # ISA15: P production, T test, I information
    delimiters: Delimiters
    segment: Segment
    index: int = 1
    offset: int = 0

    @property
    def test(self) -> bool:
        return self.usage != "P"


@dataclass(slots=True)
class GroupHeader:
    """A GS segment, read."""

    functional_id: str  # GS01, e.g. PO, SH, IN, FA
    sender_id: str  # GS02
    receiver_id: str  # GS03
    date: str  # GS04
    time: str  # GS05
    control_number: str  # GS06
    agency: str  # GS07
    version: str  # GS08, e.g. 004010, 004010VICS, 005010X231A1
    segment: Segment

    @property
    def base_version(self) -> str:
        """The six-digit version/release, without the industry identifier."""
        return self.version[:6]


@dataclass(slots=True)
class TransactionSet:
    """One ST..SE transaction set with the envelopes around it.

    ``segments`` runs from ST to SE inclusive (SE is missing when the trailer was).
    ``errors`` holds what the envelope reader found (SE01 count, SE02 mismatch,
    missing trailer); grammar validation adds its findings separately.
    ``position`` counts sets inside the group from 1.
    """

    set_id: str
    control_number: str
    implementation_reference: str | None
    segments: list[Segment]
    interchange: InterchangeHeader
    group: GroupHeader | None
    position: int = 1
    errors: list[SetSyntaxCode] = field(default_factory=list)


# --------------------------------------------------------------------------- error records


@dataclass(frozen=True, slots=True)
class ElementError:
    """One element in error (an AK4/IK4). ``position`` is the element's position in
    its segment from 1; ``component`` and ``repetition`` narrow it down when the
    error is inside a composite or a repeated element. ``value`` is a copy of the
    bad data (None when the element was missing)."""

    position: int
    code: ElementSyntaxCode
    component: int | None = None
    repetition: int | None = None
    reference: str | None = None  # data element reference number, e.g. "353"
    value: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class SegmentError:
    """One segment in error (an AK3/IK3). ``position`` counts from ST = 1."""

    tag: str
    position: int
    code: SegmentSyntaxCode
    loop_id: str | None = None
    elements: tuple[ElementError, ...] = ()
    message: str = ""


@dataclass(slots=True)
class SetOutcome:
    """What validation concluded about one transaction set (an AK2..AK5 / IK5)."""

    set_id: str
    control_number: str
    implementation_reference: str | None = None
    set_errors: list[SetSyntaxCode] = field(default_factory=list)
    segment_errors: list[SegmentError] = field(default_factory=list)
    # errors a leniency switch turned into notes: the set stays accepted (AK5 E)
    noted: list[SegmentError] = field(default_factory=list)
    # the map version validated against ("004010"), None when none applied;
    # grammar_exact is False when it is only the nearest release's map (decision 0004)
    grammar_version: str | None = None
    grammar_exact: bool = True

    @property
    def accepted(self) -> bool:
        return not self.set_errors and not self.segment_errors

    @property
    def ack_code(self) -> AckCode:
        if not self.accepted:
            return AckCode.REJECTED
        return AckCode.ACCEPTED_WITH_ERRORS if self.noted else AckCode.ACCEPTED


@dataclass(slots=True)
class GroupOutcome:
    """What the reader and validation concluded about one functional group (AK1/AK9)."""

    header: GroupHeader
    sets: list[SetOutcome] = field(default_factory=list)
    errors: list[GroupSyntaxCode] = field(default_factory=list)
    sets_included: int | None = None  # GE01 as sent, None when GE is missing

    @property
    def ack_code(self) -> AckCode:
        accepted = sum(1 for s in self.sets if s.accepted)
        if self.errors or (self.sets and accepted == 0):
            return AckCode.REJECTED
        if accepted < len(self.sets):
            return AckCode.PARTIALLY_ACCEPTED
        if any(s.noted for s in self.sets):
            return AckCode.ACCEPTED_WITH_ERRORS
        return AckCode.ACCEPTED


@dataclass(slots=True)
class InterchangeOutcome:
    """What the reader concluded about one interchange (a TA1 when notes is not empty)."""

    header: InterchangeHeader
    notes: list[InterchangeNote] = field(default_factory=list)
    groups: list[GroupOutcome] = field(default_factory=list)
    groups_included: int | None = None  # IEA01 as sent, None when IEA is missing

    @property
    def accepted(self) -> bool:
        return not self.notes
