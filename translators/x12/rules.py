"""Compiled grammar rules: the records a grammar is made of (segments, elements,
composites, syntax notes, loops), built by :mod:`translators.x12.grammar` from a map
and read by the validator and the mappers.

Each element rule carries its precompiled value check and the values already seen
to pass it; a segment rule compiles its fast "clean?" check
(:mod:`translators.x12.compiled`) on first use; a loop rule holds the per-position
lookup tables that make placing a segment a dict lookup. Rules pickle as data: what
is learned or generated is rebuilt after loading. This module never does I/O and
never imports ``gateway``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from translators.x12.codes import ElementSyntaxCode
from translators.x12.compiled import SegmentCheck, compile_segment_check
from translators.x12.valuechecks import GOOD_VALUES_LIMIT, ValueCheck, make_value_check

__all__ = [
    "GOOD_VALUES_LIMIT",
    "CompositeRule",
    "ElementRule",
    "LoopRule",
    "SegmentRule",
    "SyntaxRule",
    "compile_loop",
]


@dataclass(frozen=True, slots=True)
class ElementRule:
    """One simple element (or one component of a composite)."""

    position: int
    reference: str  # data element reference number, e.g. "353"
    name: str
    mandatory: bool
    data_type: str
    min_length: int
    max_length: int
    codes: frozenset[str] | None
    check: ValueCheck = field(compare=False, repr=False)
    repeat: int = 1  # occurrences allowed with the repetition separator (005010+)
    # values already seen to pass ``check`` (seeded with the code list): the hot path
    # is one set lookup; bounded by GOOD_VALUES_LIMIT
    good: set[str] = field(default_factory=set, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as data: its check is rebuilt
        return _element_rule, (self.position, self.reference, self.name, self.mandatory, self.data_type,
                               self.min_length, self.max_length, self.codes, self.repeat)  # fmt: skip


def _element_rule(position: int, reference: str, name: str, mandatory: bool, data_type: str, lo: int,
                  hi: int, codes: frozenset[str] | None, repeat: int) -> ElementRule:  # fmt: skip
    check = make_value_check(data_type, lo, hi, codes)
    good = set(codes) if codes else set()
    return ElementRule(position, reference, name, mandatory, data_type, lo, hi, codes, check, repeat, good)


@dataclass(frozen=True, slots=True)
class CompositeRule:
    position: int
    reference: str  # e.g. "C001"
    name: str
    mandatory: bool
    components: tuple[ElementRule, ...]
    repeat: int = 1
    good: set[str] = field(default_factory=set, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SyntaxRule:
    """An X12 syntax note: P paired, R required, E exclusion, C conditional, L list."""

    kind: str
    positions: tuple[int, ...]


@dataclass(slots=True)
class SegmentRule:
    tag: str
    name: str
    mandatory: bool
    max_use: int
    elements: tuple[ElementRule | CompositeRule, ...] | None  # None: content not described
    syntax: tuple[SyntaxRule, ...] = ()
    mandatory_positions: tuple[int, ...] = ()
    # syntax-note findings by element presence pattern: notes only look at which
    # elements are present, and real traffic repeats a handful of patterns
    syntax_memo: dict[tuple[bool, ...], tuple[tuple[int, ElementSyntaxCode], ...]] = field(
        default_factory=dict, repr=False
    )
    # generated "clean?" checks (x12.compiled), [0] without repetition separator, [1] with
    clean_checks: list[SegmentCheck | None] = field(default_factory=lambda: [None, None], repr=False)
    uses: list[int] = field(default_factory=lambda: [0, 0], repr=False)  # validation.warm_check

    @property
    def trigger(self) -> str:
        return self.tag

    def __reduce__(self) -> tuple[Any, ...]:  # pickled without what is learned or generated
        fields = (self.tag, self.name, self.mandatory, self.max_use, self.elements, self.syntax)
        return SegmentRule, (*fields, self.mandatory_positions)

    def clean_check(self, repetition: bool) -> SegmentCheck:
        """The generated fast-path check for this rule (compiled once)."""
        slot = 1 if repetition else 0
        check = self.clean_checks[slot]
        if check is None:
            check = self.clean_checks[slot] = compile_segment_check(self, repetition)
        return check


@dataclass(slots=True)
class LoopRule:
    loop_id: str
    mandatory: bool
    repeat: int
    children: list[SegmentRule | LoopRule]
    # compiled by ``compile_loop``
    lookup: list[dict[str, int]] = field(default_factory=list, repr=False)
    mandatory_before: list[int] = field(default_factory=list, repr=False)

    @property
    def trigger(self) -> str:
        return self.children[0].trigger


def compile_loop(loop: LoopRule) -> None:
    """Per child index i, map each tag to the first child j >= max(i, 1) it can start.
    Child 0 is the loop's own trigger: seeing it again starts a new repeat, which the
    parent handles, so it is never matched from inside."""
    n = len(loop.children)
    loop.lookup = [{} for _ in range(n)]
    following: dict[str, int] = {}
    for j in range(n - 1, -1, -1):
        if j >= 1:
            following = {**following, loop.children[j].trigger: j}
        loop.lookup[j] = following
    loop.lookup[0] = loop.lookup[1] if n > 1 else {}
    counts = [0]
    for child in loop.children:
        counts.append(counts[-1] + (1 if child.mandatory else 0))
    loop.mandatory_before = counts
    for child in loop.children:
        if isinstance(child, LoopRule):
            compile_loop(child)
