"""Exceptions of the X12 layer.

Recoverable problems (a bad count, a wrong code, a missing trailer) are never raised:
they are recorded with their acknowledgment code in the reader's events and in
validation results. Exceptions are for input the engine cannot read at all, and for
documents it cannot render::

    X12Error
     ├── NotX12Error        no interchange could be found (nothing to acknowledge)
     └── RenderError        a document lacks what the X12 output requires

``NotX12Error`` carries the character offset where reading gave up and a reason a
person can act on.
"""

from __future__ import annotations


class X12Error(Exception):
    """Base of every error the X12 layer raises."""


class NotX12Error(X12Error):
    """The input holds no readable X12 interchange."""

    def __init__(self, reason: str, offset: int = 0) -> None:
        super().__init__(f"{reason} (at offset {offset})")
        self.reason = reason
        self.offset = offset


class RenderError(X12Error):
    """A document cannot be written as X12 (a mandatory value is missing or too long)."""
