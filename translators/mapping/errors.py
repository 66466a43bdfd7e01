"""The one exception mappers raise: a set that was read but cannot be translated.

A mapper never raises anything else on input the envelope reader accepted. The
error carries a reason a person can act on and, where it fits, the X12 codes an
acknowledgment should report (the set is rejected with AK5/IK5 ``set_code``; when a
segment or element is to blame, ``segment``/``segment_code`` and
``element``/``element_code`` say which and why).
"""

from __future__ import annotations

from translators.x12.codes import ElementSyntaxCode, SegmentSyntaxCode, SetSyntaxCode


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
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.set_code = set_code
        self.segment = segment
        self.segment_code = segment_code
        self.element = element
        self.element_code = element_code
