"""Reading the acknowledgments partners send us: 997, 999 and TA1.

The service reconciles its outbound 855/856/810 with what comes back: which group
and set an ack answers, and whether the partner accepted, partially accepted or
rejected it. This module turns one inbound 997/999 transaction set, or one TA1
segment, into a plain report for that purpose.

Real-world acks are untidy (padded codes, AK2s without AK5, repeated IK5s, CTX
everywhere, AK3s with repetitions), so the reader is lenient: anything it cannot
place is noted in ``problems`` and skipped. The only exception it raises is
:class:`AckReadError`, when the input is not an ack at all or names no group.
It never validates the ack against a grammar (validation does that) and never
does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from translators.x12.codes import InterchangeNote
from translators.x12.errors import X12Error
from translators.x12.model import Delimiters, Segment, TransactionSet, element

Verdict = Literal["accepted", "accepted_with_errors", "partially_accepted", "rejected", "unknown"]

_VERDICTS: dict[str, Verdict] = {
    "A": "accepted",
    "E": "accepted_with_errors",
    "P": "partially_accepted",
    "R": "rejected",
    "M": "rejected",  # MAC failed
    "W": "rejected",  # assurance failed
    "X": "rejected",  # content could not be decrypted
}
_RANK: dict[Verdict, int] = {
    "accepted": 0,
    "accepted_with_errors": 1,
    "unknown": 2,
    "partially_accepted": 3,
    "rejected": 4,
}


class AckReadError(X12Error):
    """The segment or set handed in is not a readable acknowledgment.

    Raised when a TA1 reader gets another segment, a functional ack reader gets a
    set other than 997/999, or a 997/999 has no AK1 (so it names no group and cannot
    be reconciled with anything). ``reason`` says which.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def verdict_of(code: str | None) -> Verdict:
    """The verdict an AK501/IK501, AK901 or TA104 code stands for."""
    return _VERDICTS.get((code or "").strip(), "unknown")


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class ElementErrorReport:
    """One AK4/IK4: where in the segment, which data element, the code, the bad data."""

    position: int | None
    component: int | None
    repetition: int | None
    reference: str
    code: str
    value: str | None


@dataclass(frozen=True, slots=True)
class SegmentErrorReport:
    """One AK3/IK3 with its AK4/IK4s."""

    tag: str
    position: int | None
    loop_id: str
    code: str
    elements: tuple[ElementErrorReport, ...] = ()


@dataclass(frozen=True, slots=True)
class SetAckReport:
    """One AK2 loop: the set acknowledged and what the partner said about it.

    ``code`` is AK501/IK501, None when the loop had no AK5/IK5."""

    set_id: str
    control_number: str
    implementation_reference: str | None
    code: str | None
    errors: tuple[str, ...] = ()
    segment_errors: tuple[SegmentErrorReport, ...] = ()

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.code)


@dataclass(frozen=True, slots=True)
class FunctionalAckReport:
    """One inbound 997 or 999.

    ``functional_id`` and ``group_control`` name the group acknowledged (AK101, AK102),
    ``version`` is AK103 (999 and 5010 997s). ``code`` and the counts come from AK9
    (None when AK9 is missing or a count is not a number). ``problems`` lists what the
    reader skipped or could not make sense of, one line each.
    """

    kind: str
    control_number: str
    functional_id: str
    group_control: str
    version: str | None
    code: str | None
    sets_included: int | None
    sets_received: int | None
    sets_accepted: int | None
    group_errors: tuple[str, ...]
    sets: tuple[SetAckReport, ...]
    problems: tuple[str, ...] = ()

    @property
    def verdict(self) -> Verdict:
        """The group's verdict: AK901, or from the AK5s when AK9 is missing."""
        if self.code is not None:
            return verdict_of(self.code)
        verdicts = {s.verdict for s in self.sets}
        if not verdicts or "unknown" in verdicts:
            return "unknown"
        if verdicts <= {"accepted", "accepted_with_errors"}:
            return "accepted_with_errors" if "accepted_with_errors" in verdicts else "accepted"
        if verdicts == {"rejected"}:
            return "rejected"
        return "partially_accepted"

    def set_verdict(self, control_number: str) -> Verdict:
        """What the partner said about our set with ST02 ``control_number``.

        A rejected group rejects every set in it, whatever their AK5 say. A set with
        no AK2 loop (X12 lets an accepting ack leave them out) takes the group's
        verdict when that is accepted; under a partial acceptance it is ``unknown``:
        only a person can tell whether the partner dropped the loop or the set.
        Control numbers match exactly, or as numbers (0001 and 1 are the same set).
        """
        group = self.verdict
        if group == "rejected":
            return "rejected"
        matches = [s for s in self.sets if _same_control(s.control_number, control_number)]
        if matches:
            return max((s.verdict for s in matches), key=_RANK.__getitem__)
        if group in ("accepted", "accepted_with_errors"):
            return group
        return "unknown"


@dataclass(frozen=True, slots=True)
class Ta1Report:
    """One inbound TA1: the interchange it answers (TA101..TA103) and the verdict."""

    interchange_control: str
    date: str
    time: str
    code: str | None
    note: str | None
    problems: tuple[str, ...] = ()

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.code)

    @property
    def note_name(self) -> str | None:
        """The TA105 note as words, e.g. ``invalid time``; None when absent or unknown."""
        try:
            return InterchangeNote(self.note).name.lower().replace("_", " ") if self.note else None
        except ValueError:
            return None

    def answers(self, control_number: str) -> bool:
        """Whether this TA1 answers our interchange with ISA13 ``control_number``."""
        return _same_control(self.interchange_control, control_number)


# --------------------------------------------------------------------------- readers


def read_ta1(segment: Segment) -> Ta1Report:
    """The report of one TA1 segment (elements kept as sent, blanks stripped)."""
    if not segment or segment[0].strip() != "TA1":
        raise AckReadError(f"expected a TA1 segment, got {(segment or [''])[0]!r}")
    values = [element(segment, i).strip() for i in range(1, 6)]
    problems: list[str] = []
    names = ("TA101 interchange control number", "TA102 date", "TA103 time", "TA104 acknowledgment code")
    problems += [f"{name} is missing" for name, value in zip(names, values, strict=False) if not value]
    if values[3] and verdict_of(values[3]) == "unknown":
        problems.append(f"TA104 {values[3]!r} is not an acknowledgment code")
    return Ta1Report(
        interchange_control=values[0],
        date=values[1],
        time=values[2],
        code=values[3] or None,
        note=values[4] or None,
        problems=tuple(problems),
    )


def read_functional_ack(tset: TransactionSet) -> FunctionalAckReport:
    """The report of one inbound 997 or 999 transaction set."""
    kind = tset.set_id.strip()
    if kind not in ("997", "999"):
        raise AckReadError(f"transaction set {kind!r} is not a 997 or 999")
    return _FunctionalAckParser(kind, tset.control_number.strip(), tset.interchange.delimiters).parse(
        tset.segments
    )


class _FunctionalAckParser:
    """Walks the segments once, keeping the AK2 loop and AK3 being filled."""

    def __init__(self, kind: str, control_number: str, delimiters: Delimiters) -> None:
        self.kind = kind
        self.control_number = control_number
        self.d = delimiters
        self.problems: list[str] = []
        self.ak1: Segment | None = None
        self.ak9: Segment | None = None
        self.sets: list[SetAckReport] = []
        self.current: _OpenSet | None = None

    def parse(self, segments: Iterable[Segment]) -> FunctionalAckReport:
        for position, segment in enumerate(segments, start=1):
            tag = segment[0].strip() if segment else ""
            handler = _HANDLERS.get(tag)
            if handler is None:
                self.problems.append(f"segment {position} {tag or '(empty)'}: not expected in a {self.kind}")
            else:
                handler(self, segment, position)
        self._close_set()
        if self.ak1 is None:
            raise AckReadError(f"{self.kind} {self.control_number} has no AK1: it names no group")
        if self.ak9 is None:
            self.problems.append("AK9 is missing: the group verdict comes from the AK5s")
        ak9 = self.ak9 or ["AK9"]
        return FunctionalAckReport(
            kind=self.kind,
            control_number=self.control_number,
            functional_id=element(self.ak1, 1).strip(),
            group_control=element(self.ak1, 2).strip(),
            version=element(self.ak1, 3).strip() or None,
            code=element(ak9, 1).strip() or None,
            sets_included=self._count(ak9, 2),
            sets_received=self._count(ak9, 3),
            sets_accepted=self._count(ak9, 4),
            group_errors=_codes(ak9[5:]),
            sets=tuple(self.sets),
            problems=tuple(self.problems),
        )

    # ---- handlers, one per tag

    def envelope(self, segment: Segment, position: int) -> None:
        """ST and SE carry nothing the report needs."""

    def context(self, segment: Segment, position: int) -> None:
        """CTX (999) gives business context for a person; reconciliation ignores it."""

    def group_header(self, segment: Segment, position: int) -> None:
        if self.ak1 is not None:
            self.problems.append(f"segment {position} AK1: a second AK1 is ignored")
            return
        self.ak1 = segment

    def set_header(self, segment: Segment, position: int) -> None:
        self._close_set()
        if len(segment) > 4:
            self.problems.append(f"segment {position} AK2: {len(segment) - 1} elements, extra ones ignored")
        self.current = _OpenSet(
            set_id=element(segment, 1).strip(),
            control_number=element(segment, 2).strip(),
            implementation_reference=element(segment, 3).strip() or None,
        )

    def segment_error(self, segment: Segment, position: int) -> None:
        if self.current is None:
            self.problems.append(f"segment {position} {segment[0]}: outside an AK2 loop, ignored")
            return
        self.current.segments.append(
            _OpenSegment(
                tag=element(segment, 1).strip(),
                position=self._number(segment, 2, position),
                loop_id=element(segment, 3).strip(),
                code=element(segment, 4).strip(),
            )
        )

    def element_error(self, segment: Segment, position: int) -> None:
        if self.current is None or not self.current.segments:
            self.problems.append(f"segment {position} {segment[0]}: not after an AK3/IK3, ignored")
            return
        where = [p.strip() for p in element(segment, 1).split(self.d.component)]
        numbers = [self._parse_int(p, f"segment {position} {segment[0]}01") for p in (*where, "", "")[:3]]
        value = element(segment, 4)
        self.current.segments[-1].elements.append(
            ElementErrorReport(
                position=numbers[0],
                component=numbers[1],
                repetition=numbers[2],
                reference=element(segment, 2).strip(),
                code=element(segment, 3).strip(),
                value=value if value else None,
            )
        )

    def set_trailer(self, segment: Segment, position: int) -> None:
        if self.current is None:
            self.problems.append(f"segment {position} {segment[0]}: outside an AK2 loop, ignored")
            return
        if self.current.code is not None:
            self.problems.append(f"segment {position} {segment[0]}: a second AK5/IK5 in one loop is ignored")
            return
        code = element(segment, 1).strip()
        if verdict_of(code) == "unknown":
            self.problems.append(f"segment {position} {segment[0]}: {code!r} is not an acknowledgment code")
        self.current.code = code or None
        self.current.errors = _codes(segment[2:])

    def group_trailer(self, segment: Segment, position: int) -> None:
        self._close_set()
        if self.ak9 is not None:
            self.problems.append(f"segment {position} AK9: a second AK9 is ignored")
            return
        self.ak9 = segment

    # ---- helpers

    def _close_set(self) -> None:
        if self.current is None:
            return
        if self.current.code is None:
            self.problems.append(
                f"AK2 {self.current.set_id} {self.current.control_number} has no AK5/IK5: verdict unknown"
            )
        self.sets.append(self.current.freeze())
        self.current = None

    def _number(self, segment: Segment, index: int, position: int) -> int | None:
        return self._parse_int(element(segment, index), f"segment {position} {segment[0]}{index:02d}")

    def _count(self, segment: Segment, index: int) -> int | None:
        if len(segment) <= 1:
            return None
        return self._parse_int(element(segment, index), f"AK9{index:02d}")

    def _parse_int(self, text: str, where: str) -> int | None:
        text = text.strip()
        if not text:
            return None
        if text.isdigit():
            return int(text)
        self.problems.append(f"{where}: {text[:40]!r} is not a number")
        return None


@dataclass(slots=True)
class _OpenSegment:
    tag: str
    position: int | None
    loop_id: str
    code: str
    elements: list[ElementErrorReport] = field(default_factory=list)


@dataclass(slots=True)
class _OpenSet:
    set_id: str
    control_number: str
    implementation_reference: str | None
    code: str | None = None
    errors: tuple[str, ...] = ()
    segments: list[_OpenSegment] = field(default_factory=list)

    def freeze(self) -> SetAckReport:
        return SetAckReport(
            set_id=self.set_id,
            control_number=self.control_number,
            implementation_reference=self.implementation_reference,
            code=self.code,
            errors=self.errors,
            segment_errors=tuple(
                SegmentErrorReport(s.tag, s.position, s.loop_id, s.code, tuple(s.elements))
                for s in self.segments
            ),
        )


_HANDLERS = {
    "ST": _FunctionalAckParser.envelope,
    "SE": _FunctionalAckParser.envelope,
    "AK1": _FunctionalAckParser.group_header,
    "AK2": _FunctionalAckParser.set_header,
    "AK3": _FunctionalAckParser.segment_error,
    "IK3": _FunctionalAckParser.segment_error,
    "CTX": _FunctionalAckParser.context,
    "AK4": _FunctionalAckParser.element_error,
    "IK4": _FunctionalAckParser.element_error,
    "AK5": _FunctionalAckParser.set_trailer,
    "IK5": _FunctionalAckParser.set_trailer,
    "AK9": _FunctionalAckParser.group_trailer,
}


def _codes(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v.strip() for v in values if v.strip())


def _same_control(a: str, b: str) -> bool:
    a, b = a.strip(), b.strip()
    return a == b or (a.isdigit() and b.isdigit() and int(a) == int(b))
