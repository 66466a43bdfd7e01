"""Writes X12: segments to text, and whole interchanges with their envelopes.

The caller supplies everything that varies (parties, control numbers, the date and
time, delimiters); this module computes what X12 derives (ISA field padding, ISA12
from the group version, SE01/SE02, GE01/GE02, IEA01/IEA02), so the same input always
gives the same bytes.

It must never read a clock, allocate control numbers, or quietly truncate a value:
anything that cannot be written as X12 raises :class:`RenderError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from translators.x12.errors import RenderError
from translators.x12.model import Delimiters, Segment

MAX_CONTROL_NUMBER = 999_999_999
_DEFAULT_DELIMITERS = Delimiters()


@dataclass(frozen=True, slots=True)
class OutboundGroup:
    """One functional group to write. Each set is a list of segments from ST on; a
    trailing SE is optional and is rewritten either way."""

    functional_id: str  # GS01, e.g. PR for an 855, IN for an 810, FA for a 997
    sender_id: str  # GS02
    receiver_id: str  # GS03
    control_number: int  # GS06
    version: str  # GS08, e.g. 004010 or 005010X231A1
    sets: Sequence[Sequence[Segment]] = field(default_factory=tuple)
    agency: str = "X"  # GS07


def _check_value(value: str, delimiters: Delimiters, tag: str) -> None:
    for char in (delimiters.element, delimiters.segment, "\r", "\n"):
        if char in value:
            raise RenderError(f"{tag}: value {value!r} contains the delimiter {char!r}")


def serialize_segment(seg: Segment, d: Delimiters) -> str:
    """One segment as text: elements joined by the element separator, trailing empty
    elements dropped (X12 forbids them), then the terminator and its suffix.
    Composites and repetitions are written as given."""
    end = len(seg)
    while end > 1 and seg[end - 1] == "":
        end -= 1
    elements = seg[:end]
    tag = elements[0] if elements else ""
    if not tag:
        raise RenderError("segment without a tag")
    for value in elements:
        _check_value(value, d, tag)
    return d.element.join(elements) + d.segment + d.suffix


def _fixed(value: str, width: int, name: str) -> str:
    if len(value) > width:
        raise RenderError(f"{name} {value!r} is longer than {width} characters")
    return value.ljust(width)


def _control(number: int, name: str) -> int:
    if not 0 < number <= MAX_CONTROL_NUMBER:
        raise RenderError(f"{name} {number} is outside 1..{MAX_CONTROL_NUMBER}")
    return number


def isa_version(group_version: str) -> str:
    """ISA12 for a GS08 version: 004010 -> 00401, 005010X231A1 -> 00501."""
    if len(group_version) < 6 or not group_version[:6].isdigit():
        raise RenderError(f"GS08 version {group_version!r} does not start with six digits")
    return group_version[:5]


def write_isa(
    *,
    sender: tuple[str, str],
    receiver: tuple[str, str],
    control_number: int,
    at: datetime,
    version: str,
    usage: str = "P",
    ack_requested: bool = False,
    delimiters: Delimiters = _DEFAULT_DELIMITERS,
    authorization: tuple[str, str] = ("00", ""),
    security: tuple[str, str] = ("00", ""),
) -> str:
    """The ISA segment text (106 characters plus terminator and suffix).

    ``sender``/``receiver`` are (qualifier, id); ``version`` is ISA12 (e.g. 00401).
    ISA11 is the repetition separator from 00402 on and ``U`` before."""
    d = delimiters
    if usage not in ("P", "T", "I"):
        raise RenderError(f"ISA15 usage {usage!r} must be P, T or I")
    if len(version) != 5 or not version.isdigit():
        raise RenderError(f"ISA12 version {version!r} must be five digits")
    if version >= "00402":
        if d.repetition is None:
            raise RenderError(f"ISA12 {version} needs a repetition separator for ISA11")
        isa11 = d.repetition
    else:
        isa11 = "U"
    separators = {d.element, d.component, d.segment} | ({isa11} if version >= "00402" else set())
    if len(separators) != (4 if version >= "00402" else 3):
        raise RenderError(f"delimiters must all differ: {d}")
    for sep in separators:
        if len(sep) != 1 or sep.isalnum() or sep in " \r\n":
            raise RenderError(f"delimiter {sep!r} must be one non-alphanumeric, non-blank character")
    fields = [
        "ISA",
        _fixed(authorization[0], 2, "ISA01"),
        _fixed(authorization[1], 10, "ISA02"),
        _fixed(security[0], 2, "ISA03"),
        _fixed(security[1], 10, "ISA04"),
        _fixed(sender[0], 2, "ISA05"),
        _fixed(sender[1], 15, "ISA06"),
        _fixed(receiver[0], 2, "ISA07"),
        _fixed(receiver[1], 15, "ISA08"),
        at.strftime("%y%m%d"),
        at.strftime("%H%M"),
        isa11,
        version,
        f"{_control(control_number, 'ISA13'):09d}",
        "1" if ack_requested else "0",
        usage,
    ]
    for value in fields:
        for char in (d.element, d.segment, d.component, "\r", "\n"):
            if char in value:
                raise RenderError(f"ISA value {value!r} contains the delimiter {char!r}")
    return d.element.join(fields) + d.element + d.component + d.segment + d.suffix


def _write_set(segments: Sequence[Segment], d: Delimiters, out: list[str]) -> None:
    if not segments or not segments[0] or segments[0][0] != "ST":
        raise RenderError("a transaction set must start with ST")
    st = segments[0]
    if len(st) < 3 or not st[2]:
        raise RenderError("ST02 (transaction set control number) is missing")
    body = list(segments[1:-1] if segments[-1][0] == "SE" and len(segments) > 1 else segments[1:])
    for segment in body:
        if segment and segment[0] in ("ST", "SE", "GS", "GE", "ISA", "IEA"):
            raise RenderError(f"envelope segment {segment[0]} inside a transaction set")
    out.append(serialize_segment(st, d))
    out.extend(serialize_segment(segment, d) for segment in body)
    out.append(serialize_segment(["SE", str(len(body) + 2), st[2]], d))


def write_interchange(
    *,
    sender: tuple[str, str],
    receiver: tuple[str, str],
    control_number: int,
    at: datetime,
    groups: Sequence[OutboundGroup] = (),
    usage: str = "P",
    ack_requested: bool = False,
    delimiters: Delimiters = _DEFAULT_DELIMITERS,
    version: str | None = None,
    interchange_segments: Sequence[Segment] = (),
    authorization: tuple[str, str] = ("00", ""),
    security: tuple[str, str] = ("00", ""),
) -> str:
    """A whole interchange as text.

    ``version`` is ISA12; when None it is derived from the first group's GS08, so an
    interchange without groups (a lone TA1) must pass it. ``interchange_segments``
    (TA1s) are written between the ISA and the first GS. GS04/GS05 come from ``at``.
    """
    if version is None:
        if not groups:
            raise RenderError("an interchange without groups needs an explicit ISA12 version")
        version = isa_version(groups[0].version)
    d = delimiters
    out = [
        write_isa(
            sender=sender,
            receiver=receiver,
            control_number=control_number,
            at=at,
            version=version,
            usage=usage,
            ack_requested=ack_requested,
            delimiters=d,
            authorization=authorization,
            security=security,
        )
    ]
    out.extend(serialize_segment(segment, d) for segment in interchange_segments)
    for group in groups:
        number = str(_control(group.control_number, "GS06"))
        out.append(
            serialize_segment(
                [
                    "GS",
                    group.functional_id,
                    group.sender_id,
                    group.receiver_id,
                    at.strftime("%Y%m%d"),
                    at.strftime("%H%M"),
                    number,
                    group.agency,
                    group.version,
                ],
                d,
            )
        )
        for segments in group.sets:
            _write_set(segments, d, out)
        out.append(serialize_segment(["GE", str(len(group.sets)), number], d))
    out.append(serialize_segment(["IEA", str(len(groups)), f"{control_number:09d}"], d))
    return "".join(out)
