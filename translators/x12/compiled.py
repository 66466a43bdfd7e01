"""Generated per-segment "is this segment clean?" functions: the validator's fast path.

For every ``SegmentRule`` this module writes the Python source of one function
``check(seg, comp, rep) -> bool`` and compiles it once. The function answers True
only when ``validation.check_elements`` would find no error at all in the segment;
whenever it answers False the validator runs the detailed, error-collecting path,
which stays the single source of truth for codes. So the fast path may be
conservative (False on a clean segment costs time, not correctness) but must never
say True on a segment with an error.

The generated code is straight-line: one printable/ASCII test over the joined
segment, one guard per element position (``n <= p`` means the segment ends here,
and what that implies for mandatory elements and syntax notes is decided at
generation time), then cheap str methods per value (``isdigit``, length bounds,
code-list membership). Values that need
real parsing (dates, times, composites) are remembered per element in the rule's
bounded ``good`` set, shared with the detailed path. ``segment_source`` returns the
source for inspection; ``python -m translators.x12.show_check 850 004010 PO1`` prints it.

This module never does I/O and never raises on bad EDI data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from translators.x12.valuechecks import GOOD_VALUES_LIMIT

if TYPE_CHECKING:  # the rules import this module to compile their checks
    from translators.x12.rules import CompositeRule, ElementRule, SegmentRule, SyntaxRule

SegmentCheck = Callable[[list[str], str, "str | None"], bool]


def composite_ok(value: str, rule: CompositeRule, component: str) -> bool:
    """True when ``validation._check_composite`` would find nothing in ``value``."""
    parts = value.split(component)
    components = rule.components
    if len(parts) > len(components):
        return False
    for comp in components:
        index = comp.position
        part = parts[index - 1] if index <= len(parts) else ""
        if not part:
            if comp.mandatory:
                return False
        elif comp.check(part) is not None:
            return False
    return True


def _value_lines(p: int, part: ElementRule, names: dict[str, Any]) -> list[str]:
    """Statements that ``return False`` unless the non-empty value ``v<p>`` passes."""
    # the same dispatch as valuechecks.make_value_check; a value in the element's
    # ``good`` set (seeded with its code list) passes whatever its type
    v = f"v{p}"
    data_type, lo, hi = part.data_type, part.min_length, part.max_length
    if data_type.startswith("N") or data_type == "R":
        # plain unsigned digits (and one point for R) inline; anything else (a minus
        # sign, odd characters) asks the exact checker
        names[f"K{p}"] = part.check
        names[f"G{p}"] = part.good
        body = f'{v}.replace(".", "", 1)' if data_type == "R" else v
        coded = f" and {v} not in G{p}" if part.codes else ""
        return [
            f"w = {body}",
            f"if not (w.isdigit() and plain and {lo} <= len(w) <= {hi}){coded} and K{p}({v}) is not None:",
            "    return False",
        ]
    if data_type in ("DT", "TM"):
        names[f"K{p}"] = part.check
        names[f"G{p}"] = part.good
        return [
            f"if {v} not in G{p}:",
            f"    if K{p}({v}) is not None: return False",
            f"    if len(G{p}) < LIMIT: G{p}.add({v})",
        ]
    if part.codes:
        # only codes ever pass a coded text element, so its ``good`` set is the list
        names[f"C{p}"] = frozenset(part.codes)
        return [f"if {v} not in C{p}: return False"]
    # AN, and ID without a code list: length bounds (the whole segment was found
    # free of control characters on entry)
    length = f"len({v}) > {hi}" if lo <= 1 else f"not {lo} <= len({v}) <= {hi}"
    return [f"if {length}: return False"]


def _composite_lines(p: int, part: CompositeRule, names: dict[str, Any]) -> list[str]:
    names[f"R{p}"] = part
    names[f"G{p}"] = part.good
    key = f"comp + v{p}"  # the verdict depends on the component separator
    return [
        f"if {key} not in G{p}:",
        f"    if not composite_ok(v{p}, R{p}, comp): return False",
        f"    if len(G{p}) < LIMIT: G{p}.add({key})",
    ]


def _note_ok(note: SyntaxRule, present: Callable[[int], str | None]) -> str | None:
    """A Python condition that holds when the syntax note finds nothing, given each
    position's presence as an expression (None: statically absent). Returns None
    when the note is always satisfied here, "False" when it is always violated."""
    terms = [t for t in (present(p) for p in note.positions) if t is not None]
    kind = note.kind
    first = present(note.positions[0])
    if kind == "P":  # all or none
        if not terms:
            return None
        if len(terms) < len(note.positions):
            return f"not ({' or '.join(terms)})"
        return f"({' and '.join(terms)}) or not ({' or '.join(terms)})"
    if kind == "R":  # at least one
        return f"({' or '.join(terms)})" if terms else "False"
    if kind == "C":  # if the first, then all the others
        if first is None:
            return None
        rest = [present(p) for p in note.positions[1:]]
        if any(t is None for t in rest):
            return f"not {first}"
        return f"not {first} or ({' and '.join(t for t in rest if t)})"
    if kind == "L":  # if the first, then at least one other
        if first is None:
            return None
        others = [t for t in (present(p) for p in note.positions[1:]) if t is not None]
        return f"not {first} or ({' or '.join(others)})" if others else f"not {first}"
    if kind == "E":  # at most one
        if len(terms) < 2:
            return None
        return f"({' + '.join(f'bool({t})' for t in terms)}) <= 1"
    return "False"  # an unknown note: let the detailed path judge


def _exit_lines(k: int, rule: SegmentRule) -> list[str]:
    """What holds when the segment has exactly ``k`` items (tag + k-1 elements)."""
    if any(p >= k for p in rule.mandatory_positions):
        return ["return False"]
    conditions = []
    for note in rule.syntax:
        cond = _note_ok(note, lambda p: f"v{p}" if p < k else None)
        if cond is not None:
            conditions.append(cond)
    if not conditions:
        return ["return True"]
    return [f"return bool(({') and ('.join(conditions)}))"]


def segment_source(rule: SegmentRule, repetition_aware: bool) -> tuple[str, dict[str, Any]]:
    """The source of ``check`` for one rule, and the names it needs."""
    names: dict[str, Any] = {"LIMIT": GOOD_VALUES_LIMIT, "composite_ok": composite_ok}
    elements = rule.elements or ()
    by_position = {part.position: part for part in elements}
    last = max(by_position, default=0)
    mandatory = set(rule.mandatory_positions)
    lines = [
        f"def check(seg, comp, rep):  # {rule.tag}",
        "    n = len(seg)",
        # one pass over the whole segment instead of one per element: a control
        # character anywhere sends the segment to the detailed path; ``plain`` (all
        # ASCII) lets digit checks trust str.isdigit
        '    joined = "".join(seg)',
        "    if not joined.isprintable(): return False",
        "    plain = joined.isascii()",
    ]
    for p in range(1, last + 1):
        lines.append(f"    if n <= {p}:")
        lines.extend("        " + line for line in _exit_lines(p, rule))
        lines.append(f"    v{p} = seg[{p}]")
        part = by_position.get(p)
        if part is None:
            continue
        checks: list[str] = []
        if repetition_aware:
            checks.append(f"if rep is not None and rep in v{p}: return False")
        if getattr(part, "components", None) is not None:
            checks += _composite_lines(p, part, names)  # type: ignore[arg-type]
        else:
            checks += _value_lines(p, part, names)  # type: ignore[arg-type]
        lines.append(f"    if v{p}:")
        lines.extend("        " + line for line in checks)
        if p in mandatory:
            lines.append("    else:")
            lines.append("        return False")
    # elements beyond the last described one must be empty
    lines.append(f"    if n > {last + 1} and any(seg[{last + 1}:]): return False")
    lines.extend("    " + line for line in _exit_lines(last + 1, rule))
    return "\n".join(lines) + "\n", names


def compile_segment_check(rule: SegmentRule, repetition_aware: bool) -> SegmentCheck:
    source, names = segment_source(rule, repetition_aware)
    code = compile(source, f"<segment check {rule.tag}>", "exec")
    exec(code, names)  # our own source, generated from the map above
    check: SegmentCheck = names["check"]
    return check
