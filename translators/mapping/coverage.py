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

from translators.canonical.common import trusted
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
new_unmapped = trusted(UnmappedSegment)
ALWAYS: frozenset[str] = frozenset({"ST", "SE"})


def _dates(names: Mapping[str, str]) -> Test:
    def known(segment: Segment, rules: DocumentRules) -> bool:
        return date_name(text(segment, 1), names, rules) is not None and value(segment, 2) is not None

    return known


def _allowance_or_charge(segment: Segment, rules: DocumentRules) -> bool:
    return text(segment, 1) in ("A", "C")


def _described(segment: Segment, rules: DocumentRules) -> bool:
    # text(segment, 1) == "F" and value(segment, 5) is not None, inlined: one per line
    return len(segment) > 5 and segment[1].strip() == "F" and segment[5].strip() != ""


def _with_text(segment: Segment, rules: DocumentRules) -> bool:
    # an 810 line's description is its first PID*F, else its first PID with text
    return value(segment, 5) is not None


def _carrier(segment: Segment, rules: DocumentRules) -> bool:
    # a TD5 with none of SCAC, mode or routing says nothing the contract holds
    return (text(segment, 2) in ("2", "") and value(segment, 3) is not None) or any(
        value(segment, i) is not None for i in (4, 5)
    )


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
            "TD5": _carrier,
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
        "IT1/PID": {"PID": _with_text},
        "IT1/SAC": {"SAC": _allowance_or_charge},
        # the mapper reads an SLN subline's SAC and PID as the line's
        "IT1/SLN": {"SAC": _allowance_or_charge, "PID": _with_text},
        "SAC": {"SAC": _allowance_or_charge},
    },
}


# What judging a segment needs from its place alone, per kind (see _place_facts),
# kept across sets: (loop path, tag, HL level) → facts.
Facts = tuple[Rule | bool, str | None, str, str | None]
_FACTS: dict[str, dict[tuple[tuple[str, ...], str, str], Facts]] = {}
_FACTS_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Placed:
    """One segment: id, position (ST = 1), the loop around it ("/"-joined, None at
    the heading level) and whether the contract maps it."""

    segment: str
    position: int
    loop: str | None
    mapped: bool


def _judged(
    segments: list[Segment],
    kind: str,
    grammar: Grammar,
    rules: MappingRules | None,
    *,
    unmapped_only: bool = False,
    paths: list[tuple[str, ...]] | None = None,
) -> Iterator[tuple[str, int, str | None, bool]]:
    """(segment id, position, loop around it, mapped) for each segment (only the
    unmapped ones with ``unmapped_only``). What depends only on where a segment sits
    (its loop key, the loop around it, its rule) is worked out once per place and
    tag: the walk is on the hot path of every set. ``paths``: each segment's loop
    path as validation placed it (``validate_set(paths=...)``); without them, or
    when validation stopped early, the set is walked through ``grammar`` here."""
    table = COVERAGE.get(kind, {})
    doc_rules = (rules or MappingRules()).for_kind(kind)
    memo = _FACTS.setdefault(kind, {})
    seen: set[tuple[str, str, int]] = set()  # (key, tag, loop instance) of FIRST rules
    opened: dict[str, int] = {}  # loop key → how many times it was opened so far
    if paths is None or len(paths) != len(segments):
        paths = [path for path, _segment in grammar.walk(segments)]
    level = ""
    position = 0
    for segment, path in zip(segments, paths, strict=True):
        position += 1
        tag = segment[0]
        if tag == "HL":
            level = text(segment, 3)
        found = memo.get((path, tag, level))
        if found is None:
            found = _place_facts(table, path, tag, level)
            if len(memo) < _FACTS_LIMIT:  # garbage tags cannot grow it without end
                memo[path, tag, level] = found
        rule, counted, key, around = found
        if counted is not None:
            opened[counted] = opened.get(counted, 0) + 1
        if rule is None or rule is True:
            if unmapped_only:
                continue
            mapped = True
        elif rule is False:
            mapped = False
        elif rule == FIRST:
            mark = (key, tag, opened.get(key, 0))
            mapped = mark not in seen
            seen.add(mark)
        elif callable(rule):
            mapped = rule(segment, doc_rules)
        else:
            mapped = False
        if not (mapped and unmapped_only):
            yield tag, position, around, mapped


def _place_facts(table: dict[str, dict[str, Rule]], path: tuple[str, ...], tag: str, level: str) -> Facts:
    """What a segment's judging needs from its place alone: its rule, the loop key
    to count when the segment opens a loop some FIRST rule looks at (else None),
    its loop key and the loop around it."""
    opens = bool(path) and path[-1] == tag
    key = "/".join(f"HL:{level}" if name == "HL" else name for name in path)
    around = "/".join(path[:-1] if opens else path) or None
    rule: Rule | bool = True if tag in ALWAYS else table.get(key, {}).get(tag, False)
    counted = key if opens and FIRST in table.get(key, {}).values() else None
    return rule, counted, key, around


def place_segments(
    segments: list[Segment], kind: str, grammar: Grammar, rules: MappingRules | None = None
) -> Iterator[Placed]:
    """Every segment of one ST..SE set of ``kind``, placed and judged."""
    for tag, position, around, mapped in _judged(segments, kind, grammar, rules):
        yield Placed(tag, position, around, mapped)


def unmapped_segments(
    segments: list[Segment],
    kind: str,
    grammar: Grammar,
    rules: MappingRules | None = None,
    paths: list[tuple[str, ...]] | None = None,
) -> tuple[UnmappedSegment, ...]:
    """The segments of the set the contract does not map, for ``unmapped``.
    ``paths``: the loop paths validation recorded (``validate_set(paths=...)``),
    which spare a second walk through the grammar."""
    judged = _judged(segments, kind, grammar, rules, unmapped_only=True, paths=paths)
    return tuple(
        new_unmapped(segment=tag, position=position, loop=around) for tag, position, around, _mapped in judged
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
