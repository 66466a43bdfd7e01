"""Which segments of a transaction set the canonical contract maps, and which it
only lists (the document's ``unmapped``).

Each segment is placed in its grammar's loops (``Grammar.walk``) and looked up in
the table of its kind below: loop path (the loops it sits in, its own included; in
an 856 an HL loop is told apart by its level code, ``HL:S``, ``HL:O``, ``HL:T``,
``HL:P``, ``HL:I``) → segment id → a rule (always mapped, only the first of the
loop, or a test of the segment's qualifiers). The tables say what the mappers of
this package read; a test checks them against the documents on sample sets.
Segments of the envelope and control (ST, SE) are always mapped.

Pure: no I/O; never raises on bad data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from translators.canonical.details import UnmappedSegment
from translators.mapping import KIND_BY_SET
from translators.mapping.common import date_name, text, value
from translators.mapping.rules import DocumentRules, MappingRules
from translators.x12.envelope import read_events
from translators.x12.events import SetRead
from translators.x12.grammar import Grammar
from translators.x12.model import Segment
from translators.x12.validation import set_grammar

__all__ = ["COVERAGE", "Placed", "place_segments", "placed_in", "unmapped_segments"]

Test = Callable[[Segment, DocumentRules], bool]
Rule = Test | str | None  # None: always mapped; "first": the first of its loop only

FIRST = "first"
ALWAYS: frozenset[str] = frozenset({"ST", "SE"})


def _dates(names: Mapping[str, str]) -> Test:
    def known(segment: Segment, rules: DocumentRules) -> bool:
        return date_name(text(segment, 1), names, rules) is not None and value(segment, 2) is not None

    return known


def _allowance_or_charge(segment: Segment, rules: DocumentRules) -> bool:
    return text(segment, 1) in ("A", "C")


def _described(segment: Segment, rules: DocumentRules) -> bool:
    return text(segment, 1) == "F" and value(segment, 5) is not None


def _with_status(segment: Segment, rules: DocumentRules) -> bool:
    return value(segment, 1) is not None


_ORDER_DATES = _dates(
    {
        "002": "requested_delivery",
        "010": "requested_ship",
        "037": "ship_not_before",
        "038": "ship_no_later",
        "001": "cancel_after",
        "063": "delivery_not_after",
        "064": "delivery_not_before",
        "106": "required_by",
    }
)
_PARTY: dict[str, Rule] = {"N1": None, "N2": None, "N3": None, "N4": None, "REF": None}
_NOTE: dict[str, Rule] = {"N9": None, "MSG": None, "MTX": None}
_TOTALS: dict[str, Rule] = {"CTT": None, "AMT": None}

COVERAGE: dict[str, dict[str, dict[str, Rule]]] = {
    "order": {
        "": {
            "BEG": None,
            "CUR": FIRST,
            "REF": None,
            "ITD": FIRST,
            "DTM": _ORDER_DATES,
            "TD5": FIRST,
            "NTE": None,  # 003050 and older
        },
        "SAC": {"SAC": _allowance_or_charge},
        "AMT": {"AMT": None},
        "N9": _NOTE,
        "N1": _PARTY,
        "PO1": {"PO1": None, "PO4": FIRST, "SDQ": None, "DTM": _ORDER_DATES, "MSG": None, "MTX": None},
        "PO1/PID": {"PID": _described},
        "PO1/SAC": {"SAC": _allowance_or_charge},
        "PO1/N9": _NOTE,
        "CTT": _TOTALS,
    },
    "order_ack": {
        "": {"BAK": None, "CUR": FIRST, "REF": None},
        "N9": _NOTE,
        "N1": {**_PARTY, "MSG": None, "MTX": None},
        "PO1": {"PO1": None},
        "PO1/PID": {"PID": _described},
        "PO1/ACK": {"ACK": _with_status},
        "CTT": _TOTALS,
    },
    "shipment": {
        "": {"BSN": None, "DTM": _dates({"011": "shipped_date", "017": "estimated_delivery"}), "CTT": None},
        "HL:S": {
            "HL": None,
            "REF": None,
            "DTM": _dates({"011": "shipped_date", "017": "estimated_delivery"}),
            "TD5": FIRST,
            "TD1": FIRST,
            "MAN": None,
        },
        "HL:S/N1": _PARTY,
        "HL:O": {"HL": None, "PRF": FIRST},
        "HL:T": {"HL": None, "PRF": FIRST, "MAN": None},
        "HL:P": {"HL": None, "PRF": FIRST, "MAN": None},
        "HL:I": {"HL": None, "PRF": FIRST, "LIN": FIRST, "SN1": FIRST, "MAN": None},
    },
    "invoice": {
        "": {
            "BIG": None,
            "NTE": None,
            "CUR": FIRST,
            "REF": None,
            "ITD": FIRST,
            "DTM": _dates({"011": "ship_date"}),
            "TDS": None,
            "AMT": None,
            "CTT": None,
        },
        "N1": _PARTY,
        "N9": {"N9": None, "MSG": None},
        "IT1": {"IT1": None, "SDQ": None},
        "IT1/PID": {"PID": _described},
        "IT1/SAC": {"SAC": _allowance_or_charge},
        # the mapper reads an SLN subline's SAC and PID as the line's
        "IT1/SLN": {"SAC": _allowance_or_charge, "PID": _described},
        "SAC": {"SAC": _allowance_or_charge},
    },
}


@dataclass(frozen=True, slots=True)
class Placed:
    """One segment: id, position (ST = 1), the loop around it ("/"-joined, None at
    the heading level) and whether the contract maps it."""

    segment: str
    position: int
    loop: str | None
    mapped: bool


def place_segments(
    segments: list[Segment], kind: str, grammar: Grammar, rules: MappingRules | None = None
) -> Iterator[Placed]:
    """Every segment of one ST..SE set of ``kind``, placed and judged."""
    table = COVERAGE.get(kind, {})
    doc_rules = (rules or MappingRules()).for_kind(kind)
    level = ""
    seen: set[tuple[str, str, int]] = set()  # (key, tag, loop instance) of FIRST rules
    opened: dict[str, int] = {}  # loop key → how many times it was opened so far
    for position, (path, segment) in enumerate(grammar.walk(segments), start=1):
        tag = segment[0]
        if tag == "HL":
            level = text(segment, 3)
        opens = bool(path) and path[-1] == tag
        names = [f"HL:{level}" if name == "HL" else name for name in path]
        key = "/".join(names)
        if opens:
            opened[key] = opened.get(key, 0) + 1
        around = "/".join(path[:-1] if opens else path) or None
        if tag in ALWAYS:
            mapped = True
        else:
            rule = table.get(key, {}).get(tag, False)
            if rule is False:
                mapped = False
            elif rule is None:
                mapped = True
            elif rule == FIRST:
                mark = (key, tag, opened.get(key, 0))
                mapped = mark not in seen
                seen.add(mark)
            elif callable(rule):
                mapped = rule(segment, doc_rules)
            else:
                mapped = False
        yield Placed(tag, position, around, mapped)


def unmapped_segments(
    segments: list[Segment], kind: str, grammar: Grammar, rules: MappingRules | None = None
) -> tuple[UnmappedSegment, ...]:
    """The segments of the set the contract does not map, for ``unmapped``."""
    return tuple(
        UnmappedSegment(segment=p.segment, position=p.position, loop=p.loop)
        for p in place_segments(segments, kind, grammar, rules)
        if not p.mapped
    )


def placed_in(source: bytes | BinaryIO, rules: MappingRules | None = None) -> Iterator[tuple[str, Placed]]:
    """(set id, placed segment) for every segment of every 850/855/856/810 set in
    ``source`` that has a grammar (the nearest release's when its own is not
    shipped), valid or not: the onboarding view of a partner's samples. Raises
    :class:`translators.x12.errors.NotX12Error` when ``source`` holds no interchange."""
    for event in read_events(source):
        if not isinstance(event, SetRead):
            continue
        tset = event.transaction_set
        kind = KIND_BY_SET.get(tset.set_id.strip())
        found = set_grammar(tset) if kind is not None else None
        if kind is None or found is None:
            continue
        for placed in place_segments(tset.segments, kind, found[0], rules):
            yield tset.set_id.strip(), placed
