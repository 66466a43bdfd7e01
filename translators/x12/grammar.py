"""Transaction-set grammars: load the XML maps and compile them into fast rules.

A grammar is data: one pyx12-format XML map per set and version under
``translators/x12/maps/`` (see docs/decisions/0001-grammars.md). This module reads
a map once with lxml, compiles it into

* ``LoopRule`` trees whose per-position lookup tables (tag -> child index) make
  placing a segment a dict lookup, and
* ``SegmentRule``/``ElementRule`` records with a precompiled value checker per
  element, so validation never interprets XML or runs a regex per element.

``load_grammar`` is cached. ``Grammar.walk`` exposes the loop structure to
consumers (mappers) that want it. This module never does I/O beyond reading its
own package data, never raises on bad EDI data, and never imports ``gateway``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lxml import etree  # imported when a map is compiled: a stored grammar needs none

from translators.x12.codes import SegmentSyntaxCode
from translators.x12.model import Segment
from translators.x12.rules import (
    GOOD_VALUES_LIMIT,
    CompositeRule,
    ElementRule,
    LoopRule,
    SegmentRule,
    SyntaxRule,
    compile_loop,
)
from translators.x12.valuechecks import make_value_check

__all__ = [  # the rules are read through this module too
    "GOOD_VALUES_LIMIT",
    "CompositeRule",
    "ElementRule",
    "Grammar",
    "GrammarStore",
    "LoopRule",
    "SegmentRule",
    "StructureIssue",
    "SyntaxRule",
    "grammar_version",
    "known_segment_tags",
    "load_grammar",
    "load_nearest_grammar",
    "nearest_grammar_version",
    "use_grammar_store",
]

UNBOUNDED = sys.maxsize
SYNTAX_MEMO_LIMIT = 256  # presence patterns remembered per segment

# Versions we ship maps for; other releases of the same major version borrow them.
_SHIPPED_VERSIONS = ("004010", "005010")
_SETS = {
    "004010": ("810", "850", "855", "856", "997"),
    "005010": ("810", "850", "855", "856", "997", "999"),
}


# --------------------------------------------------------------------------- the cursor


@dataclass(frozen=True, slots=True)
class StructureIssue:
    """A structural finding while placing a segment (AK3 without element errors)."""

    tag: str
    code: SegmentSyntaxCode
    loop_id: str | None


@dataclass(slots=True)
class _State:
    """Where the cursor is, apart from use counts: the open loops and the child index
    in each. States are interned per grammar, so learned steps are shared by every
    set read with that grammar."""

    frames: tuple[tuple[LoopRule, int], ...]
    loop_path: tuple[str, ...]
    loop_id: str | None
    steps: dict[str, _Step] = field(default_factory=dict)
    finish_issues: list[StructureIssue] | None = None
    finished: bool = False


_NOT_PLACED, _REPEAT, _ADVANCE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Step:
    """What placing one tag in one state does. Every finding is fixed by the state
    and the tag except "used too often", which depends on the use count of the frame
    the tag lands in (``limit``); ``over_issues`` is the finding list for that case."""

    kind: int  # _NOT_PLACED, _REPEAT (same child again) or _ADVANCE
    target: _State
    rule: SegmentRule | None
    issues: list[StructureIssue] | None
    keep: int = 0  # frames (use counters) kept before the landing one is updated
    limit: int = UNBOUNDED
    over_issues: list[StructureIssue] | None = None
    opened: tuple[int, ...] = ()  # use counters of loops opened by the step (all 1)


class Cursor:
    """Places segments one by one into a grammar's loop structure.

    ``place(tag)`` returns the matched ``SegmentRule`` (None when the segment has no
    place), and the issues found getting there: skipped mandatory segments or loops
    (3), a loop repeated too often (4), a segment used too often (5), or the segment
    itself being unrecognized (1), out of place (2/7) or foreign to the set (6).
    The first segment (ST) is taken as already placed.

    The walk is learned: the first time a tag is placed in a state the cursor works
    the step out from the loop tables (``_learn``) and keeps it on the state; later
    placements are a dict lookup plus use counting. Only tags the grammar defines
    are remembered, so garbage input cannot grow the tables.
    """

    __slots__ = ("_grammar", "_state", "_uses")

    def __init__(self, grammar: Grammar) -> None:
        self._grammar = grammar
        self._state = grammar.state(((grammar.root, 0),))
        self._uses = [1]

    def loop_path(self) -> tuple[str, ...]:
        return self._state.loop_path

    def loop_id(self) -> str | None:
        return self._state.loop_id

    def place(self, tag: str) -> tuple[SegmentRule | None, list[StructureIssue] | None]:
        state = self._state
        step = state.steps.get(tag) or self._learn(state, tag)
        kind = step.kind
        if kind == _NOT_PLACED:
            return None, step.issues
        uses = self._uses
        del uses[step.keep + 1 :]
        issues = step.issues
        if kind == _REPEAT:
            count = uses[-1] = uses[-1] + 1
            if count > step.limit:
                issues = step.over_issues
        else:
            uses[-1] = 1
        if step.opened:
            uses.extend(step.opened)
        self._state = step.target
        return step.rule, issues

    def finish(self) -> list[StructureIssue] | None:
        """Close every open loop; report mandatory segments never seen."""
        state = self._state
        if not state.finished:
            issues: list[StructureIssue] | None = None
            for loop, index in reversed(state.frames):
                issues = self._missing(loop, index + 1, len(loop.children), issues)
            state.finish_issues = issues
            state.finished = True
        root = self._grammar.root
        self._state = self._grammar.state(((root, len(root.children) - 1),))
        self._uses = [1]
        return state.finish_issues

    def _learn(self, state: _State, tag: str) -> _Step:
        frames = state.frames
        depth = len(frames) - 1
        found = -1
        while depth >= 0:
            loop, index = frames[depth]
            j = loop.lookup[index].get(tag)
            if j is not None:
                found = j
                break
            depth -= 1
        if found < 0:
            issue = StructureIssue(tag, self._classify(frames, tag), state.loop_id)
            step = _Step(_NOT_PLACED, state, None, [issue])
        else:
            issues: list[StructureIssue] | None = None
            for closed_loop, closed_index in reversed(frames[depth + 1 :]):
                issues = self._missing(closed_loop, closed_index + 1, len(closed_loop.children), issues)
            loop, index = frames[depth]
            child = loop.children[found]
            kept = frames[:depth]
            over: StructureIssue | None = None
            if found == index:
                kind = _REPEAT
                if isinstance(child, LoopRule):
                    limit, over = (
                        child.repeat,
                        StructureIssue(tag, SegmentSyntaxCode.LOOP_OVER_MAX, child.loop_id),
                    )
                else:
                    owner = loop.loop_id if depth > 0 else None
                    limit, over = (
                        child.max_use,
                        StructureIssue(tag, SegmentSyntaxCode.SEGMENT_OVER_MAX_USE, owner),
                    )
            else:
                kind, limit = _ADVANCE, UNBOUNDED
                issues = self._missing(loop, index + 1, found, issues)
            new_frames = [*kept, (loop, found)]
            while isinstance(child, LoopRule):
                new_frames.append((child, 0))
                child = child.children[0]
            step = _Step(
                kind,
                self._grammar.state(tuple(new_frames)),
                child,
                issues,
                keep=depth,
                limit=limit,
                over_issues=[*(issues or ()), over] if over is not None else None,
                opened=(1,) * (len(new_frames) - depth - 1),
            )
        if tag in self._grammar.tags:
            state.steps[tag] = step
        return step

    def _missing(
        self, loop: LoopRule, start: int, stop: int, issues: list[StructureIssue] | None
    ) -> list[StructureIssue] | None:
        if loop.mandatory_before[stop] - loop.mandatory_before[start] <= 0:
            return issues
        found = list(issues or [])
        owner = loop.loop_id if loop is not self._grammar.root else None
        for child in loop.children[start:stop]:
            if child.mandatory:
                if isinstance(child, LoopRule):
                    found.append(
                        StructureIssue(child.trigger, SegmentSyntaxCode.MANDATORY_MISSING, child.loop_id)
                    )
                else:
                    found.append(StructureIssue(child.tag, SegmentSyntaxCode.MANDATORY_MISSING, owner))
        return found

    def _classify(self, frames: tuple[tuple[LoopRule, int], ...], tag: str) -> SegmentSyntaxCode:
        grammar = self._grammar
        if tag not in grammar.tags:
            return (
                SegmentSyntaxCode.NOT_IN_DEFINED_SET
                if tag in known_segment_tags()
                else SegmentSyntaxCode.UNRECOGNIZED
            )
        # a tag this set defines at an earlier place in the open loops came too late
        for loop, index in frames:
            if any(child.trigger == tag for child in loop.children[: index + 1]):
                return SegmentSyntaxCode.NOT_IN_SEQUENCE
        return SegmentSyntaxCode.UNEXPECTED


# --------------------------------------------------------------------------- grammar


@dataclass(slots=True)
class Grammar:
    """A compiled transaction set grammar for one set id and base version."""

    set_id: str
    version: str  # the version of the map used, e.g. "004010"
    name: str
    root: LoopRule  # the ST loop: ST ... SE
    tags: frozenset[str]
    segments: dict[str, list[SegmentRule]] = field(repr=False, default_factory=dict)
    # the cursor's interned states, by the identities of their (loop, index) frames
    states: dict[tuple[tuple[int, int], ...], _State] = field(repr=False, default_factory=dict)

    def cursor(self) -> Cursor:
        return Cursor(self)

    def state(self, frames: tuple[tuple[LoopRule, int], ...]) -> _State:
        """The one cursor state for these open loops (created on first use)."""
        key = tuple((id(loop), index) for loop, index in frames)
        found = self.states.get(key)
        if found is None:
            path = tuple(loop.loop_id for loop, _ in frames[1:])
            found = self.states[key] = _State(frames, path, path[-1] if path else None)
        return found

    def walk(self, segments: Iterable[Segment]) -> Iterator[tuple[tuple[str, ...], Segment]]:
        """Yield ``(loop_path, segment)`` for each segment of one set, ST first.

        ``loop_path`` names the loops the segment sits in, outermost first, e.g.
        ``("PO1", "SLN")`` for an SLN subline or ``()`` for BEG. A segment that has
        no place in the grammar is yielded with the path where it was found. The
        walk never raises on bad data.
        """
        cursor = Cursor(self)
        first = True
        for segment in segments:
            if first:
                first = False
                yield (), segment
                continue
            cursor.place(segment[0])
            yield cursor.loop_path(), segment


def _text(
    node: etree._Element, tag: str, default: str = "", kids: dict[str, etree._Element] | None = None
) -> str:
    found = kids.get(tag) if kids is not None else next(node.iterchildren(tag), None)
    if found is not None and found.text is not None:
        return found.text.strip()
    value = node.get(tag)
    return value.strip() if value is not None else default


def _max(value: str) -> int:
    value = value.strip()
    if value.startswith(">") or not value.isdigit():
        return UNBOUNDED
    return int(value)


class _MapReader:
    def __init__(self, dictionary: dict[str, tuple[str, int, int]]) -> None:
        self.dictionary = dictionary
        self.segments: dict[str, list[SegmentRule]] = {}

    def element(self, node: etree._Element, position: int) -> ElementRule:
        kids = {child.tag: child for child in reversed(node)}  # one pass; first of a tag wins, as find()
        ref = _text(node, "data_ele", kids=kids)
        data_type, lo, hi = self.dictionary.get(ref, ("AN", 1, 9999))
        listed = kids["valid_codes"].findall("code") if "valid_codes" in kids else ()
        codes = frozenset((c.text or "").strip() for c in listed) or None
        return ElementRule(
            position=position,
            reference=ref,
            name=_text(node, "name", kids=kids),
            mandatory=_text(node, "usage", kids=kids) == "R",
            data_type=data_type,
            min_length=lo,
            max_length=hi,
            codes=codes,
            check=make_value_check(data_type, lo, hi, codes),
            repeat=int(_text(node, "repeat", "1", kids) or 1),
            good=set(codes) if codes else set(),
        )

    def segment(self, node: etree._Element) -> SegmentRule:
        parts: list[ElementRule | CompositeRule] = []
        for child in node:
            if child.tag == "element":
                parts.append(self.element(child, int(_text(child, "seq"))))
            elif child.tag == "composite":
                components = tuple(
                    self.element(comp, int(_text(comp, "seq"))) for comp in child.findall("element")
                )
                parts.append(
                    CompositeRule(
                        position=int(_text(child, "seq")),
                        reference=_text(child, "data_ele"),
                        name=_text(child, "name"),
                        mandatory=_text(child, "usage") == "R",
                        components=components,
                        repeat=int(_text(child, "repeat", "1") or 1),
                    )
                )
        syntax = []
        for note in node.findall("syntax"):
            text = (note.text or "").strip()
            syntax.append(SyntaxRule(text[0], tuple(int(text[i : i + 2]) for i in range(1, len(text), 2))))
        tag = node.get("xid") or ""
        rule = SegmentRule(
            tag=tag,
            name=_text(node, "name"),
            mandatory=_text(node, "usage") == "R",
            max_use=_max(_text(node, "max_use", ">1")),
            elements=tuple(sorted(parts, key=lambda p: p.position)) if parts else None,
            syntax=tuple(syntax),
            mandatory_positions=tuple(p.position for p in parts if p.mandatory),
        )
        self.segments.setdefault(tag, []).append(rule)
        return rule

    def children(self, node: etree._Element) -> list[SegmentRule | LoopRule]:
        out: list[SegmentRule | LoopRule] = []
        for child in node:
            if child.tag == "segment":
                out.append(self.segment(child))
            elif child.tag == "loop":
                if child.get("type") == "wrapper":
                    # pyx12's HEADER/DETAIL/FOOTER wrappers carry no X12 meaning
                    out.extend(self.children(child))
                else:
                    out.append(self.loop(child))
        return out

    def loop(self, node: etree._Element) -> LoopRule:
        children = self.children(node)
        return LoopRule(
            loop_id=node.get("xid") or "",
            mandatory=_text(node, "usage") == "R" and bool(children) and children[0].mandatory,
            repeat=_max(_text(node, "repeat", ">1")),
            children=children,
        )


@functools.cache
def _dictionary(version: str) -> dict[str, tuple[str, int, int]]:
    from lxml import etree

    table: dict[str, tuple[str, int, int]] = {}
    names = ["dataele.xml"] + (["dataele.005010.xml"] if version.startswith("005") else [])
    for name in names:
        root = etree.fromstring(resources.files("translators.x12").joinpath("maps", name).read_bytes())
        for node in root.iter("data_ele"):
            table[node.get("ele_num") or ""] = (
                node.get("data_type") or "AN",
                int(node.get("min_len") or 1),
                int(node.get("max_len") or 9999),
            )
    return table


def compile_map(xml: bytes, dictionary: dict[str, tuple[str, int, int]], version: str) -> Grammar:
    """Compile one pyx12-format map (the whole document) into a Grammar."""
    from lxml import etree

    doc = etree.fromstring(xml)
    st_loop = next((n for n in doc.iter("loop") if n.get("xid") == "ST_LOOP"), None)
    if st_loop is None:
        raise ValueError("map has no ST_LOOP")
    reader = _MapReader(dictionary)
    root = reader.loop(st_loop)
    root.loop_id = ""
    root.mandatory = True
    compile_loop(root)
    return Grammar(
        set_id=doc.get("xid") or "",
        version=version,
        name=_text(doc, "name"),
        root=root,
        tags=frozenset(reader.segments),
        segments=reader.segments,
    )


def grammar_version(set_id: str, version: str) -> str | None:
    """The shipped map version that applies to a GS08 version, or None.

    Implementation guides (004010VICS, 005010X231A1) use their base version;
    other releases of the same major version (004030, 004060, 005020...) use that
    major version's map; older or newer majors (002xxx, 003xxx, 006xxx...) get none.
    """
    base = version.strip()[:6]
    if len(base) == 5 and base.isdigit():  # an ISA12 such as 00401
        base = base + "0"
    if len(base) != 6 or not base.isdigit():
        return None
    for shipped in _SHIPPED_VERSIONS:
        if base[:3] == shipped[:3] and set_id in _SETS[shipped]:
            return shipped
    return None


def nearest_grammar_version(set_id: str, version: str) -> tuple[str, bool] | None:
    """The shipped map to validate a set of this GS08 version with, and whether it
    is the version's own (True) or only the nearest one (False). None when no map
    of this set is shipped, or the version is not a release number.

    Own: the same six digits (004010, 004010VICS, 004010X358 and ISA12 00401 all use
    004010). Nearest: another release of the same set, the closest by release number
    (003050 and 004030 → 004010; 005020 and 006020 → 005010; decision 0004). A set
    validated with a nearest map is judged leniently on what releases change
    (``validation.NEAREST_GRAMMAR_LENIENCY``).
    """
    base = version.strip()[:6]
    if len(base) == 5 and base.isdigit():
        base = base + "0"
    if len(base) != 6 or not base.isdigit():
        return None
    candidates = [v for v in _SHIPPED_VERSIONS if set_id in _SETS[v]]
    if not candidates:
        return None
    if base in candidates:
        return base, True
    # ties go to the older map (its segments are the ones a partner most likely uses)
    return min(candidates, key=lambda v: (abs(int(v) - int(base)), v)), False


class GrammarStore(Protocol):
    """Where compiled grammars are kept between processes (pickles by key)."""

    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, data: bytes) -> None: ...


_store: list[GrammarStore] = []


def use_grammar_store(store: GrammarStore | None) -> None:
    """Load grammars from ``store`` (compiled maps pickled under a key that changes
    with the map, the dictionary, the compiler and the Python version) and put what
    is compiled there; None: compile every map."""
    _store[:] = [store] if store is not None else []


def _source_key(set_id: str, version: str) -> str:
    import hashlib

    files = resources.files("translators.x12")
    digest = hashlib.sha256(sys.version.encode())
    names = [f"maps/{set_id}.{version}.xml", "maps/dataele.xml", "maps/dataele.005010.xml"]
    for name in [*names, "grammar.py", "rules.py", "compiled.py", "valuechecks.py", "codes.py"]:
        digest.update(files.joinpath(name).read_bytes())
    return f"{set_id}.{version}.{digest.hexdigest()[:32]}"


@functools.cache
def _load(set_id: str, version: str) -> Grammar:
    import pickle

    key = _source_key(set_id, version) if _store else None
    data = _store[0].get(key) if key is not None else None
    if data is not None:
        try:
            grammar = pickle.loads(data)
        except Exception:  # a damaged entry is compiled again
            grammar = None
        if isinstance(grammar, Grammar) and (grammar.set_id, grammar.version) == (set_id, version):
            return grammar
    xml = resources.files("translators.x12").joinpath("maps", f"{set_id}.{version}.xml").read_bytes()
    grammar = compile_map(xml, _dictionary(version), version)
    if key is not None:
        _store[0].put(key, pickle.dumps(grammar, protocol=pickle.HIGHEST_PROTOCOL))
    return grammar


def load_nearest_grammar(set_id: str, version: str) -> tuple[Grammar, bool] | None:
    """The grammar :func:`nearest_grammar_version` picks, and whether it is exact."""
    choice = nearest_grammar_version(set_id, version)
    if choice is None:
        return None
    return _load(set_id, choice[0]), choice[1]


def load_grammar(set_id: str, version: str) -> Grammar | None:
    """The grammar for a transaction set id and a (GS08-style) version, or None when
    no shipped grammar applies. Cached: every call for the same map returns the same
    compiled object."""
    shipped = grammar_version(set_id, version)
    if shipped is None:
        return None
    return _load(set_id, shipped)


@functools.cache
def known_segment_tags() -> frozenset[str]:
    """Segment ids described by any shipped map (plus the envelopes): a tag outside
    this set is reported as unrecognized (1) rather than foreign to the set (6)."""
    tags: set[str] = set()
    for version, sets in _SETS.items():
        for set_id in sets:
            tags |= _load(set_id, version).tags
    return frozenset(tags | {"ISA", "IEA", "GS", "GE", "TA1"})
