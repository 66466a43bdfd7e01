"""The exceptions of the mappers: a set that was read but cannot be translated
(:class:`MappingError`), and a rendered set that is not valid X12
(:class:`RenderValidationError`, a :class:`~translators.x12.errors.RenderError`).

Reading never raises anything but :class:`MappingError` on input the envelope
reader accepted. The error carries a reason a person can act on and, where it fits, the X12 codes an
acknowledgment should report (the set is rejected with AK5/IK5 ``set_code``; when a
segment or element is to blame, ``segment``/``segment_code`` and
``element``/``element_code`` say which and why). A :class:`RenderValidationError`
holds one :class:`FieldError` per problem: the canonical field, the X12 element and
the rule it breaks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from translators.x12.codes import ElementSyntaxCode, SegmentSyntaxCode, SetSyntaxCode
from translators.x12.errors import RenderError


class MappingError(Exception):
    """A transaction set (or canonical document) cannot be mapped."""

    def __init__(
        self,
        reason: str,
        *,
        set_code: SetSyntaxCode = SetSyntaxCode.ONE_OR_MORE_SEGMENTS_IN_ERROR,
        segment: str | None = None,
        segment_code: SegmentSyntaxCode | None = None,
        element: int | None = None,
        element_code: ElementSyntaxCode | None = None,
        switch: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        # the [x12.validation] key that would accept the set instead ("line_count")
        self.switch = switch
        self.set_code = set_code
        self.segment = segment
        self.segment_code = segment_code
        self.element = element
        self.element_code = element_code


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason a rendered set is not valid X12, tied to the canonical field to fix.

    ``loc`` is the dotted path into the canonical document (``document.po_number``,
    ``document.lines.0.unit_price``: the same form as the API's request validation
    errors); ``element`` is the X12 element (``BEG03``) or, for a segment-level
    finding, the segment tag; ``msg`` names the element and the rule it breaks
    (``BEG03 is at most 22 characters, got 40``); ``code`` is the AK304/AK403
    (IK304/IK403) code validation gave.
    """

    loc: str
    element: str
    msg: str
    code: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.msg}"


class RenderValidationError(RenderError):
    """A rendered transaction set failed validation against its grammar: the
    document holds values the X12 output cannot carry. ``errors`` says which field
    breaks which rule; the message lists them."""

    MAX_LISTED = 10

    def __init__(self, what: str, errors: Sequence[FieldError]) -> None:
        listed = "; ".join(str(e) for e in errors[: self.MAX_LISTED])
        more = len(errors) - self.MAX_LISTED
        if more > 0:
            listed += f"; and {more} more"
        super().__init__(f"{what} would not be valid X12: {listed}")
        self.errors: tuple[FieldError, ...] = tuple(errors)
