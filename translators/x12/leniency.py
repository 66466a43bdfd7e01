"""Which validation findings reject a set, which are only noted, which are ignored.

Validation (``validation.check_segments``) finds every error the grammar can see;
this module then sorts them by the check that found them and the action chosen for
that check: ``reject`` (the default: AK5 R), ``note`` (the set is accepted, the
997/999 says E with the same AK3/AK4 detail, the document carries a warning) or
``ignore``. The actions come from a partner's ``[x12.validation]`` profile table
and, for a set validated with another release's grammar, from
``NEAREST_GRAMMAR_LENIENCY`` (decision 0004). Pure: no I/O, never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum

from translators.x12.codes import ElementSyntaxCode as E
from translators.x12.codes import SegmentSyntaxCode as S
from translators.x12.model import ElementError, SegmentError
from translators.x12.valuechecks import valid_date


class Check(StrEnum):
    """A family of findings a partner may relax (the ``[x12.validation]`` keys)."""

    ELEMENT_LENGTH = "element_length"  # AK403 4/5, and YYMMDD where CCYYMMDD is due
    CODE_VALUES = "code_values"  # AK403 7
    CONDITIONAL = "conditional"  # AK403 2 and 10: syntax notes P/R/C/L/E
    SEGMENT_ORDER = "segment_order"  # AK304 7
    UNKNOWN_SEGMENTS = "unknown_segments"  # AK304 1/2/6, and elements past the grammar (AK403 3, 13)


class Action(StrEnum):
    REJECT = "reject"
    NOTE = "note"
    IGNORE = "ignore"


Leniency = Mapping[Check, Action]

# A set validated with another release's map: what releases change is noted.
NEAREST_GRAMMAR_LENIENCY: Leniency = {
    Check.ELEMENT_LENGTH: Action.NOTE,
    Check.CODE_VALUES: Action.NOTE,
    Check.CONDITIONAL: Action.NOTE,
    Check.UNKNOWN_SEGMENTS: Action.NOTE,
}

_RANK = {Action.REJECT: 0, Action.NOTE: 1, Action.IGNORE: 2}

_SEGMENT_CHECKS = {
    S.UNRECOGNIZED: Check.UNKNOWN_SEGMENTS,
    S.UNEXPECTED: Check.UNKNOWN_SEGMENTS,
    S.NOT_IN_DEFINED_SET: Check.UNKNOWN_SEGMENTS,
    S.NOT_IN_SEQUENCE: Check.SEGMENT_ORDER,
}
_ELEMENT_CHECKS = {
    E.TOO_SHORT: Check.ELEMENT_LENGTH,
    E.TOO_LONG: Check.ELEMENT_LENGTH,
    E.INVALID_CODE: Check.CODE_VALUES,
    E.CONDITIONAL_MISSING: Check.CONDITIONAL,
    E.EXCLUSION_VIOLATED: Check.CONDITIONAL,
    E.TOO_MANY_ELEMENTS: Check.UNKNOWN_SEGMENTS,
    E.TOO_MANY_COMPONENTS: Check.UNKNOWN_SEGMENTS,
}


def most_lenient(*tables: Leniency | None) -> dict[Check, Action]:
    """Per check, the most lenient action any table asks for."""
    merged: dict[Check, Action] = {}
    for table in tables:
        for check, action in (table or {}).items():
            if _RANK[action] > _RANK[merged.get(check, Action.REJECT)]:
                merged[check] = action
    return merged


def segment_check(error: SegmentError) -> Check | None:
    return _SEGMENT_CHECKS.get(error.code)


def element_check(error: ElementError) -> Check | None:
    if (
        error.code is E.INVALID_DATE
        and error.value
        and len(error.value) == 6
        and valid_date(error.value, True)
    ):
        return Check.ELEMENT_LENGTH  # a YYMMDD date (003xxx) where CCYYMMDD is due
    return _ELEMENT_CHECKS.get(error.code)


def sort_findings(
    errors: list[SegmentError], leniency: Leniency
) -> tuple[list[SegmentError], list[SegmentError]]:
    """Split findings into (errors that reject, errors only noted); ignored ones go."""
    if not leniency:
        return errors, []
    rejected: list[SegmentError] = []
    noted: list[SegmentError] = []
    for error in errors:
        if error.code is S.HAS_ELEMENT_ERRORS:
            keep: list[ElementError] = []
            note: list[ElementError] = []
            for element in error.elements:
                action = _action(leniency, element_check(element))
                if action is Action.REJECT:
                    keep.append(element)
                elif action is Action.NOTE:
                    note.append(element)
            if keep:
                rejected.append(replace(error, elements=tuple(keep)))
            if note:
                noted.append(replace(error, elements=tuple(note)))
            continue
        action = _action(leniency, segment_check(error))
        if action is Action.REJECT:
            rejected.append(error)
        elif action is Action.NOTE:
            noted.append(error)
    return rejected, noted


def _action(leniency: Leniency, check: Check | None) -> Action:
    return Action.REJECT if check is None else leniency.get(check, Action.REJECT)


def switch_for(error: SegmentError) -> Check | None:
    """The check whose switch would accept this error, None when none would
    (mandatory data, invalid characters, repeats...)."""
    if error.code is S.HAS_ELEMENT_ERRORS:
        checks = {element_check(e) for e in error.elements}
        return checks.pop() if len(checks) == 1 else None
    return segment_check(error)
