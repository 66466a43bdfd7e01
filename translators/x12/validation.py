"""Check one transaction set against its grammar and collect every error.

``validate_set`` places each segment with the grammar's cursor (order, loops,
repeats, mandatory segments, max use) and checks each segment's elements with the
checkers the grammar precompiled (mandatory, length, type, date, time, code list,
composites, syntax notes). Every finding carries its AK304/IK304 or AK403/IK403
code; envelope findings the reader put in ``TransactionSet.errors`` are merged in.

It collects, it never raises on bad data, and it never renders acknowledgments
(the ack builders do that from the returned ``SetOutcome``). At most
``MAX_SEGMENT_ERRORS`` segment errors are kept per set so garbage input stays cheap.
"""

from __future__ import annotations

from translators.x12.codes import ElementSyntaxCode, SegmentSyntaxCode, SetSyntaxCode
from translators.x12.compiled import SegmentCheck
from translators.x12.grammar import (
    GOOD_VALUES_LIMIT,
    SYNTAX_MEMO_LIMIT,
    CompositeRule,
    ElementRule,
    Grammar,
    SegmentRule,
    SyntaxRule,
    load_nearest_grammar,
)
from translators.x12.leniency import NEAREST_GRAMMAR_LENIENCY, Leniency, most_lenient, sort_findings
from translators.x12.model import ElementError, Segment, SegmentError, SetOutcome, TransactionSet

MAX_SEGMENT_ERRORS = 100
# a segment rule's generated check is compiled after this many segments went through
# the detailed path (see warm_check): about where compiling starts to pay
COMPILE_AFTER = 256

_MISSING = ElementSyntaxCode.MANDATORY_MISSING
_CONDITIONAL = ElementSyntaxCode.CONDITIONAL_MISSING
_EXCLUSION = ElementSyntaxCode.EXCLUSION_VIOLATED


def set_grammar(tset: TransactionSet) -> tuple[Grammar, bool] | None:
    """The grammar for a set as enveloped (GS08 when there is a group, else ISA12),
    and whether it is that version's own map (False: the nearest release's)."""
    version = tset.group.version if tset.group is not None else tset.interchange.version
    return load_nearest_grammar(tset.set_id, version)


def validate_set(
    tset: TransactionSet,
    grammar: Grammar | None = None,
    *,
    strict: bool = False,
    leniency: Leniency | None = None,
    paths: list[tuple[str, ...]] | None = None,
) -> SetOutcome:
    """Validate one transaction set; return its AK2..AK5 / IK5 outcome.

    With no ``grammar`` the one for the set's id and version is looked up; a set
    of a release we ship no map for is validated with the nearest release's map and
    judged leniently (``NEAREST_GRAMMAR_LENIENCY``, decision 0004). ``leniency``
    (a partner's ``[x12.validation]``) turns findings of some checks into notes
    (``outcome.noted``: accepted, AK5 E) or ignores them. When no grammar applies
    the set is only judged on its envelope errors, unless ``strict`` asks for it to
    be rejected as not supported (AK502 1).

    ``paths``, when given, receives the loop path of each segment as validation
    placed it (see :func:`check_segments`): the unmapped-segment listing reads them
    instead of walking the set through the grammar a second time.
    """
    outcome = SetOutcome(
        set_id=tset.set_id,
        control_number=tset.control_number,
        implementation_reference=tset.implementation_reference,
    )
    set_errors = list(dict.fromkeys(tset.errors))
    if grammar is None:
        found = set_grammar(tset)
        if found is not None:
            grammar, outcome.grammar_exact = found
            if not outcome.grammar_exact:
                leniency = most_lenient(leniency, NEAREST_GRAMMAR_LENIENCY)
    if grammar is None:
        if strict and SetSyntaxCode.NOT_SUPPORTED not in set_errors:
            set_errors.insert(0, SetSyntaxCode.NOT_SUPPORTED)
        outcome.set_errors = set_errors
        return outcome
    delimiters = tset.interchange.delimiters
    # the repetition separator only exists from 00402 on; older ISA11 is a standards id
    repetition = delimiters.repetition if grammar.version >= "004020" else None
    outcome.grammar_version = grammar.version
    errors, outcome.noted = sort_findings(
        check_segments(tset.segments, grammar, delimiters.component, repetition, paths), leniency or {}
    )
    if tset.segments and tset.segments[-1][0] != "SE" and SetSyntaxCode.TRAILER_MISSING not in set_errors:
        set_errors.append(SetSyntaxCode.TRAILER_MISSING)
    if errors and SetSyntaxCode.ONE_OR_MORE_SEGMENTS_IN_ERROR not in set_errors:
        set_errors.append(SetSyntaxCode.ONE_OR_MORE_SEGMENTS_IN_ERROR)
    outcome.set_errors = set_errors
    outcome.segment_errors = errors
    return outcome


def check_segments(
    segments: list[Segment],
    grammar: Grammar,
    component: str = ">",
    repetition: str | None = None,
    paths: list[tuple[str, ...]] | None = None,
) -> list[SegmentError]:
    """Every segment error of one ST..SE set (capped at MAX_SEGMENT_ERRORS).

    ``paths``, when given, receives each segment's loop path (``Grammar.walk``'s:
    the loops it sits in once placed, ``()`` for ST), one per segment, unless the
    check stops early at MAX_SEGMENT_ERRORS (then it holds fewer)."""
    errors: list[SegmentError] = []
    if not segments:
        return errors
    cursor = grammar.cursor()
    place = cursor.place
    record = paths.append if paths is not None else None
    loop_path = cursor.loop_path
    root_st = grammar.root.children[0]
    st_rule = root_st if isinstance(root_st, SegmentRule) else None
    trailer_seen = segments[-1][0] == "SE"
    has_repetition = repetition is not None
    position = 0
    for segment in segments:
        position += 1
        if position == 1:
            rule = st_rule
            if record is not None:
                record(())
        else:
            rule, issues = place(segment[0])
            if record is not None:
                record(loop_path())
            if issues is not None:
                for issue in issues:
                    errors.append(SegmentError(issue.tag, position, issue.code, issue.loop_id))
                if len(errors) >= MAX_SEGMENT_ERRORS:
                    return errors[:MAX_SEGMENT_ERRORS]
        if rule is None or rule.elements is None:
            continue
        # the generated check answers "clean?" cheaply; only a segment it doubts goes
        # through the detailed, error-collecting path (so does every segment of a rule
        # seen too seldom yet to be worth compiling its check: warm_check)
        clean = rule.clean_checks[has_repetition] or warm_check(rule, has_repetition)
        if clean is not None and clean(segment, component, repetition):
            continue
        element_errors = check_elements(segment, rule, component, repetition)
        if element_errors:
            errors.append(
                SegmentError(
                    segment[0],
                    position,
                    SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
                    cursor.loop_id(),
                    tuple(element_errors),
                )
            )
            if len(errors) >= MAX_SEGMENT_ERRORS:
                return errors[:MAX_SEGMENT_ERRORS]
    final = cursor.finish()
    if final:
        for issue in final:
            # the reader reports a missing trailer (AK502 2); do not repeat it here
            if issue.tag == "SE" and not trailer_seen:
                continue
            errors.append(SegmentError(issue.tag, position, issue.code, issue.loop_id))
    return errors[:MAX_SEGMENT_ERRORS]


def warm_check(rule: SegmentRule, repetition: bool) -> SegmentCheck | None:
    """``rule``'s generated check once it has been asked for COMPILE_AFTER times,
    else None: the segment is then checked on the detailed path. Compiling a check
    costs what the detailed path costs on hundreds of segments (0.5 to 4 ms against
    1 to 5 µs), so a small file never pays for it and a big one once per rule."""
    slot = 1 if repetition else 0
    check = rule.clean_checks[slot]
    if check is None:
        count = rule.uses[slot] = rule.uses[slot] + 1
        if count < COMPILE_AFTER:
            return None
        check = rule.clean_check(repetition)
    return check


def check_elements(
    segment: Segment, rule: SegmentRule, component: str, repetition: str | None = None
) -> list[ElementError] | None:
    """The element errors of one segment whose place is known (None when clean)."""
    elements = rule.elements
    assert elements is not None
    count = len(segment) - 1
    errors: list[ElementError] | None = None
    for part in elements:
        position = part.position
        if position > count:
            break
        value = segment[position]
        if not value:
            if part.mandatory:
                errors = _add(errors, ElementError(position, _MISSING, reference=part.reference))
            continue
        if repetition is not None and repetition in value:
            errors = _check_repeated(position, value, part, component, repetition, errors)
        elif type(part) is ElementRule:
            good = part.good
            if value in good:
                continue
            code = part.check(value)
            if code is not None:
                errors = _add(errors, ElementError(position, code, reference=part.reference, value=value))
            elif len(good) < GOOD_VALUES_LIMIT:
                good.add(value)
        else:
            # a composite's verdict depends on the component separator: key on both
            key = component + value
            good = part.good
            if key in good:
                continue
            before = len(errors) if errors else 0
            errors = _check_composite(position, value, part, component, errors)  # type: ignore[arg-type]
            if (len(errors) if errors else 0) == before and len(good) < GOOD_VALUES_LIMIT:
                good.add(key)
    if count < len(elements):
        for position in rule.mandatory_positions:
            if position > count:
                ref = elements[position - 1].reference if position <= len(elements) else None
                errors = _add(errors, ElementError(position, _MISSING, reference=ref))
    if count > len(elements):
        last = elements[-1].position if elements else 0
        for position in range(last + 1, count + 1):
            if segment[position]:
                errors = _add(
                    errors,
                    ElementError(position, ElementSyntaxCode.TOO_MANY_ELEMENTS, value=segment[position]),
                )
    if rule.syntax:
        pattern = tuple(map(bool, segment))
        found = rule.syntax_memo.get(pattern)
        if found is None:
            found = _syntax_findings(pattern, rule.syntax)
            if len(rule.syntax_memo) < SYNTAX_MEMO_LIMIT:
                rule.syntax_memo[pattern] = found
        for position, code in found:
            if code is _CONDITIONAL and errors and any(e.position == position for e in errors):
                continue
            errors = _add(
                errors,
                ElementError(
                    position,
                    code,
                    reference=_reference(elements, position),
                    value=segment[position] if code is _EXCLUSION else None,
                ),
            )
    return errors


def _add(errors: list[ElementError] | None, error: ElementError) -> list[ElementError]:
    if errors is None:
        return [error]
    errors.append(error)
    return errors


def _check_repeated(
    position: int,
    value: str,
    part: ElementRule | CompositeRule,
    component: str,
    repetition: str,
    errors: list[ElementError] | None,
) -> list[ElementError] | None:
    occurrences = value.split(repetition)
    if len(occurrences) > part.repeat:
        return _add(
            errors,
            ElementError(
                position, ElementSyntaxCode.TOO_MANY_REPETITIONS, reference=part.reference, value=value
            ),
        )
    for index, occurrence in enumerate(occurrences, 1):
        if not occurrence:
            continue
        if isinstance(part, ElementRule):
            code = part.check(occurrence)
            if code is not None:
                errors = _add(
                    errors,
                    ElementError(
                        position, code, repetition=index, reference=part.reference, value=occurrence
                    ),
                )
        else:
            errors = _check_composite(position, occurrence, part, component, errors, index)
    return errors


def _check_composite(
    position: int,
    value: str,
    rule: CompositeRule,
    component: str,
    errors: list[ElementError] | None,
    repeat_index: int | None = None,
) -> list[ElementError] | None:
    parts = value.split(component)
    components = rule.components
    if len(parts) > len(components):
        errors = _add(
            errors,
            ElementError(
                position,
                ElementSyntaxCode.TOO_MANY_COMPONENTS,
                repetition=repeat_index,
                reference=rule.reference,
                value=value,
            ),
        )
    for comp in components:
        index = comp.position
        part = parts[index - 1] if index <= len(parts) else ""
        if not part:
            if comp.mandatory:
                errors = _add(
                    errors,
                    ElementError(
                        position, _MISSING, component=index, repetition=repeat_index, reference=comp.reference
                    ),
                )
            continue
        code = comp.check(part)
        if code is not None:
            errors = _add(
                errors,
                ElementError(
                    position,
                    code,
                    component=index,
                    repetition=repeat_index,
                    reference=comp.reference,
                    value=part,
                ),
            )
    return errors


def _reference(elements: tuple[ElementRule | CompositeRule, ...], position: int) -> str | None:
    return elements[position - 1].reference if position <= len(elements) else None


def _syntax_findings(
    pattern: tuple[bool, ...], rules: tuple[SyntaxRule, ...]
) -> tuple[tuple[int, ElementSyntaxCode], ...]:
    """Syntax-note violations for one presence pattern (index 0 is the tag)."""
    count = len(pattern) - 1
    found: list[tuple[int, ElementSyntaxCode]] = []
    for rule in rules:
        positions = rule.positions
        present = [p for p in positions if p <= count and pattern[p]]
        kind = rule.kind
        missing: list[int] = []
        if kind == "P":
            if present and len(present) < len(positions):
                missing = [p for p in positions if p not in present]
        elif kind == "R":
            if not present:
                missing = [positions[0]]
        elif kind == "C":
            if positions[0] in present:
                missing = [p for p in positions[1:] if p not in present]
        elif kind == "L":
            if positions[0] in present and len(present) == 1:
                missing = [positions[1]]
        elif kind == "E" and len(present) > 1:
            found.extend((p, _EXCLUSION) for p in present[1:])
        for p in missing:
            # two notes can blame the same element (C0506 and P0607 on PO406): once
            if (p, _CONDITIONAL) not in found:
                found.append((p, _CONDITIONAL))
    return tuple(found)
