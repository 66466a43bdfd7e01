"""Canonical details several documents share beyond the basics of ``common``: notes
(MSG, NTE, N9), amounts and totals (AMT, CTT), pack details (PO4), marks and numbers
(MAN), and the list of segments a document does not map (``unmapped``).

Nothing a partner sends disappears unseen: a segment the contract maps lands in one of
these fields or the basics; every other one is named in the document's ``unmapped``
(segment id, position counting ST as 1, and the loop it sits in), so an operator sees
what a partner uses that the ERP never gets.

This module only describes documents; it never reads X12 and never does I/O.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
from translators.canonical.common import CanonicalModel, Money

__all__ = ["Amount", "Mark", "Note", "PackDetails", "Totals", "UnmappedSegment"]


class Note(CanonicalModel):
    """Free text the partner sent. An NTE gives ``qualifier`` NTE01 (e.g. GEN) and
    ``text`` NTE02, an MTX (005010) MTX01 and MTX02; an N9 loop gives ``qualifier``
    N901, ``reference`` N902 and ``text`` the MSG01 (MTX02) texts of the loop joined
    with a line break (N903 when the loop has none); a MSG outside an N9 loop has
    ``text`` only."""

    qualifier: str | None = None
    reference: str | None = None
    text: str | None = None


class Amount(CanonicalModel):
    """An AMT segment: AMT01 qualifier (e.g. TT total transaction amount, 1 line
    item total), AMT02 amount (R, exact), AMT03 credit/debit flag (C or D)."""

    qualifier: str
    amount: Money | None = None
    credit_debit: str | None = None


class Totals(CanonicalModel):
    """The summary a sender states: CTT01 number of line items, CTT02 hash total,
    and the AMT amounts of the heading and summary areas (in the order sent). A
    document's ``totals`` is null when they state nothing it does not already
    hold: no AMT, no hash total, and a CTT01 equal to its number of lines (or none);
    rendering always writes CTT01 as the number of lines."""

    line_count: int | None = None
    hash_total: Money | None = None
    amounts: tuple[Amount, ...] = ()


class PackDetails(CanonicalModel):
    """PO4 item physical details: PO401 ``pack`` (outer pack: inner units per case),
    PO402 ``size`` with its PO403 ``size_uom``, PO404 ``packaging_code``, PO414
    ``inner_pack``."""

    pack: int | None = None
    size: Money | None = None
    size_uom: str | None = None
    packaging_code: str | None = None
    inner_pack: int | None = None


class Mark(CanonicalModel):
    """A MAN segment other than the one that gives an ``sscc``: MAN01 qualifier
    (GM SSCC, SM shipper-assigned, CP carrier-assigned package id (tracking), UC
    UCC-128 ...) and MAN02 number; MAN03 ``number_to`` ends a range."""

    qualifier: str
    number: str | None = None
    number_to: str | None = None


class UnmappedSegment(CanonicalModel):
    """A segment of the set the contract has no field for: its id, its position
    (ST = 1, as the 997 counts), and the loops it sits in, outermost first, joined
    with "/" (e.g. "PO1", "HL", "PO1/N9"; null at the heading level). A segment that
    opens a loop is placed in the loop around it."""

    segment: str
    position: int
    loop: str | None = None
