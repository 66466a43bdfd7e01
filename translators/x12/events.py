"""Events the envelope reader emits, in input order.

Reading a file yields, for each interchange::

    InterchangeStart, (GroupStart, SetRead*, GroupEnd)*, InterchangeEnd

plus ``InterchangeSegment`` for segments that sit directly inside an interchange
(TA1) and ``Stray`` for data outside any envelope. Only one transaction set is held
in memory at a time, so a consumer that does not keep sets stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from translators.x12.codes import GroupSyntaxCode, InterchangeNote
from translators.x12.model import GroupHeader, InterchangeHeader, Segment, TransactionSet


@dataclass(slots=True)
class InterchangeStart:
    header: InterchangeHeader


@dataclass(slots=True)
class GroupStart:
    header: GroupHeader
    interchange: InterchangeHeader


@dataclass(slots=True)
class SetRead:
    transaction_set: TransactionSet


@dataclass(slots=True)
class GroupEnd:
    """A group closed. ``trailer`` is the GE segment, None when it was missing;
    ``sets_counted`` is how many ST..SE sets were read; ``errors`` the AK9 codes
    found at group level (GE01 count, GE02 mismatch, trailer missing, duplicate ST02)."""

    header: GroupHeader
    trailer: Segment | None
    sets_counted: int
    errors: list[GroupSyntaxCode] = field(default_factory=list)


@dataclass(slots=True)
class InterchangeEnd:
    """An interchange closed. ``notes`` are TA1 note codes found (IEA01 count,
    IEA02 mismatch, missing IEA, bad ISA fields); empty when the envelope is sound."""

    header: InterchangeHeader
    trailer: Segment | None
    groups_counted: int
    notes: list[InterchangeNote] = field(default_factory=list)


@dataclass(slots=True)
class InterchangeSegment:
    """A segment directly inside an interchange, outside any group (e.g. TA1)."""

    segment: Segment
    interchange: InterchangeHeader


@dataclass(slots=True)
class Stray:
    """Data found outside any interchange (garbage after IEA, text before ISA)."""

    text: str
    offset: int


Event = InterchangeStart | GroupStart | SetRead | GroupEnd | InterchangeEnd | InterchangeSegment | Stray
