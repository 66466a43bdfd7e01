"""The canonical invoice (X12 810).

Allowances and charges (SAC) are kept where they were sent: SACs of the summary
(and header) area go to ``Invoice.allowances_charges``; a SAC inside an IT1 loop goes
to that line's ``allowances_charges``. Amounts are exact: TDS01 and SAC05 are N2
(implied decimals applied, trailing zeros kept: TDS*316300 → "3163.00"); IT102 and
IT104 are explicit decimals, negatives allowed (credits). Every contract field is
always emitted, null or [] when absent.

This module only describes documents; it never reads X12 and never does I/O.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
from datetime import date

from translators.canonical.common import (
    AllowanceCharge,
    CanonicalModel,
    Money,
    Party,
    ProductIds,
    Reference,
    Terms,
)
from translators.canonical.details import Note, Totals
from translators.canonical.order import Allocation, Purpose

__all__ = ["Invoice", "InvoiceLine"]


class InvoiceLine(CanonicalModel):
    """An IT1 loop: IT101 line number (often empty), IT102 quantity invoiced, IT103
    unit, IT104 unit price, IT106.. product ids, PID description (PID*F with PID02
    73/75 is the ``color``, 74/91 the ``size``), the line's SACs and its SDQ
    ``allocations`` (store/quantity pairs)."""

    line_number: str | None = None
    quantity: Money | None = None
    uom: str | None = None
    unit_price: Money | None = None
    product_ids: ProductIds = ProductIds.model_construct()
    description: str | None = None
    allowances_charges: tuple[AllowanceCharge, ...] = ()
    color: str | None = None
    size: str | None = None
    allocations: tuple[Allocation, ...] = ()


class Invoice(CanonicalModel):
    """An invoice: BIG02 number and BIG01 date, BIG04/BIG03 the purchase order it
    bills, CUR02 currency, ITD terms, DTM 011 ship date, lines, summary SACs and the
    TDS01 total (N2); BIG08 ``purpose`` (the order's words: 00 original, 05
    replace ...; null when BIG08 is empty), notes (NTE, N9 loops with their MSGs), and totals (CTT,
    summary AMT)."""

    invoice_number: str | None = None
    invoice_date: date | None = None
    po_number: str | None = None
    po_date: date | None = None
    currency: str | None = None
    references: tuple[Reference, ...] = ()
    parties: tuple[Party, ...] = ()
    terms: Terms | None = None
    ship_date: date | None = None
    lines: tuple[InvoiceLine, ...] = ()
    allowances_charges: tuple[AllowanceCharge, ...] = ()
    total_amount: Money | None = None
    purpose: Purpose | None = None
    notes: tuple[Note, ...] = ()
    totals: Totals | None = None
