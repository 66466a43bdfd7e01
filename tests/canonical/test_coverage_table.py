"""The coverage table (translators/mapping/coverage.py) says what the mappers read;
checked against the mappers themselves on every valid public 850/855/856/810 set:
a segment called mapped changes the document when it is taken out, and a segment
called unmapped does not.

Known exceptions, each for a reason: a CTT whose CTT01 equals the number of lines
(and an 856 CTT, a control count), and an 856 HL whose level holds nothing the
contract maps, are structure, not data; taking out the head of a loop the contract
does not map (SLN, SPI) hands the loop's segments to the loop around it, which is
the removal's doing, not a mapping."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from x12util import read_sets

from translators.mapping import KIND_BY_SET, MappingRules, to_canonical
from translators.mapping.coverage import place_segments
from translators.mapping.errors import MappingError
from translators.x12.errors import NotX12Error
from translators.x12.model import TransactionSet
from translators.x12.validation import set_grammar, validate_set

STRUCTURE = {"CTT", "HL"}
UNMAPPED_LOOP_HEADS = {"SLN", "SPI"}


def _document(tset: TransactionSet) -> object:
    try:
        return to_canonical(tset, partner_id=None, rules=MappingRules()).document
    except MappingError:
        return None


def test_the_table_agrees_with_the_mappers(corpus: Path) -> None:
    wrong: Counter[tuple[str, str, str | None, bool]] = Counter()
    judged = 0
    for path in sorted((corpus / "x12").rglob("*")):
        if not path.is_file():
            continue
        try:
            sets = read_sets(path)
        except (NotX12Error, UnicodeDecodeError):
            continue
        for tset in sets:
            kind = KIND_BY_SET.get(tset.set_id.strip())
            found = set_grammar(tset)
            if kind is None or found is None or not validate_set(tset).accepted:
                continue
            base = _document(tset)
            if base is None:
                continue
            for placed in place_segments(tset.segments, kind, found[0]):
                if placed.segment in ("ST", "SE"):
                    continue
                fewer = tset.segments[: placed.position - 1] + tset.segments[placed.position :]
                changed = _document(dataclasses.replace(tset, segments=fewer)) != base
                judged += 1
                if placed.mapped and not changed and placed.segment not in STRUCTURE:
                    wrong[kind, placed.segment, placed.loop, True] += 1
                if not placed.mapped and changed and placed.segment not in UNMAPPED_LOOP_HEADS:
                    wrong[kind, placed.segment, placed.loop, False] += 1
    assert judged > 1000
    assert dict(wrong) == {}
