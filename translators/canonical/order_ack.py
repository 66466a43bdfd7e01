"""The canonical purchase order acknowledgment (X12 855): which ordered lines the
seller accepts, changes, back-orders or rejects.

Every contract field is always emitted, null or [] when absent (the rule of
:mod:`translators.canonical.common`). ``ack_type`` (BAK02) and line ``status``
(ACK01) keep their X12 codes (AC, AD, RJ ... / IA, IB, IR, R2 ...): the ERP acts on
them and a word would lose detail.

This module only describes documents; it never reads X12 and never does I/O.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
import datetime as dt
from typing import Any

from pydantic import model_validator

from translators.canonical.common import CanonicalModel, Money, Party, ProductIds, Reference
from translators.canonical.details import Note, Totals
from translators.canonical.order import Purpose

__all__ = ["LineAcknowledgment", "OrderAck", "OrderAckLine"]


class LineAcknowledgment(CanonicalModel):
    """One ACK segment: ACK01 status, ACK02 quantity, ACK03 unit, ACK04 date
    qualifier with the ACK05 date (e.g. 068 current scheduled ship), and the
    product ids of ACK07/ACK08 .. ACK27/ACK28 (the item as the seller confirms it,
    e.g. a substitute)."""

    status: str
    quantity: Money | None = None
    uom: str | None = None
    date_qualifier: str | None = None
    date: dt.date | None = None
    product_ids: ProductIds = ProductIds.model_construct()


class OrderAckLine(CanonicalModel):
    """A PO1 line as acknowledged. ``status`` is the first ACK01 under the line
    (null when the line has no ACK); ``acknowledgments`` holds every ACK of the line
    (a line can be split, e.g. IA for 5 and IB for 3). The first acknowledgment's
    status always equals ``status``: give either and the other is filled in
    (``status`` alone becomes one bare acknowledgment)."""

    line_number: str | None = None
    quantity: Money | None = None
    uom: str | None = None
    unit_price: Money | None = None
    price_basis: str | None = None
    product_ids: ProductIds = ProductIds.model_construct()
    description: str | None = None
    status: str | None = None
    acknowledgments: tuple[LineAcknowledgment, ...] = ()
    color: str | None = None
    size: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_status_or_acknowledgments(cls, data: Any) -> Any:
        # Either field alone is enough; the other is derived so the two never disagree
        # and X12 → canonical → X12 is stable (a bare ACK reads back as one ACK).
        if not isinstance(data, dict):
            return data
        status, acks = data.get("status"), data.get("acknowledgments") or ()
        if status is not None and not acks:
            return {**data, "acknowledgments": ({"status": status},)}
        if status is None and acks:
            first = acks[0]
            first_status = first.status if isinstance(first, LineAcknowledgment) else first.get("status")
            return {**data, "status": first_status}
        return data

    @model_validator(mode="after")
    def _status_matches_first_ack(self) -> "OrderAckLine":
        if self.acknowledgments and self.status != self.acknowledgments[0].status:
            raise ValueError("status must equal the first acknowledgment's status")
        return self


class OrderAck(CanonicalModel):
    """An 855 acknowledgment: BAK01 purpose, BAK02 ack_type, BAK03 po_number, BAK04
    po_date, BAK05 release number, BAK09 ack_date; CUR02 currency; REF references;
    N1 parties; PO1/ACK lines; notes (N9 loops with their MSGs, NTE); totals (CTT,
    AMT)."""

    po_number: str
    ack_type: str
    purpose: Purpose = "original"
    po_date: dt.date | None = None
    release_number: str | None = None
    ack_date: dt.date | None = None
    currency: str | None = None
    references: tuple[Reference, ...] = ()
    parties: tuple[Party, ...] = ()
    lines: tuple[OrderAckLine, ...] = ()
    notes: tuple[Note, ...] = ()
    totals: Totals | None = None
