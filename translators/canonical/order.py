"""The canonical purchase order (X12 850): what the buyer orders, where and when.

Every contract field is always emitted, null or [] when absent (the rule of
:mod:`translators.canonical.common`). ``purpose`` is a word for the common BEG01
codes (00 original, 01 cancellation, 04 change, 05 replace, 06 confirmation) and
the code itself otherwise; a document built with one of those codes holds the word.

This module only describes documents; it never reads X12 and never does I/O.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
from datetime import date
from typing import Annotated

from pydantic import AfterValidator

from translators.canonical.common import (
    AllowanceCharge,
    CanonicalModel,
    Carrier,
    Money,
    Party,
    ProductIds,
    Reference,
    Terms,
)
from translators.canonical.details import Note, PackDetails, Totals

__all__ = ["PURPOSE_BY_CODE", "Allocation", "Order", "OrderDates", "OrderLine", "Purpose"]

# BEG01 / BAK01 transaction set purpose codes with a canonical word.
PURPOSE_BY_CODE: dict[str, str] = {
    "00": "original",
    "01": "cancellation",
    "04": "change",
    "05": "replace",
    "06": "confirmation",
    "07": "duplicate",
}


def purpose_word(value: str) -> str:
    """A purpose code with a canonical word becomes that word ("00" → "original")."""
    return PURPOSE_BY_CODE.get(value, value)


Purpose = Annotated[str, AfterValidator(purpose_word)]


class OrderDates(CanonicalModel):
    """DTM dates of an order or an order line, by DTM01 qualifier: 002
    requested_delivery, 010 requested_ship, 037 ship_not_before, 038 ship_no_later,
    001 cancel_after, 063 delivery_not_after, 064 delivery_not_before, 106
    required_by. Other qualifiers are not part of the contract (listed in the
    document's ``unmapped``)."""

    requested_delivery: date | None = None
    requested_ship: date | None = None
    ship_not_before: date | None = None
    ship_no_later: date | None = None
    cancel_after: date | None = None
    delivery_not_after: date | None = None
    delivery_not_before: date | None = None
    required_by: date | None = None


class Allocation(CanonicalModel):
    """One store/location share of a line (an SDQ location/quantity pair)."""

    location_id: str
    quantity: Money


class OrderLine(CanonicalModel):
    """A PO1 line: PO101 line number, PO102 quantity, PO103 unit of measure, PO104
    unit price, PO105 price basis, PO106.. product ids; PID*F description (several
    PID*F texts are joined with a space; a PID*F with PID02 73/75 is the ``color``,
    74/91 the ``size``, not part of the description), SDQ allocations, line DTM
    dates, PO4 ``pack`` details, the line's SAC ``allowances_charges`` and its
    notes (MSG, NTE, N9 loops of the PO1 loop)."""

    line_number: str | None = None
    quantity: Money | None = None
    uom: str | None = None
    unit_price: Money | None = None
    price_basis: str | None = None
    product_ids: ProductIds = ProductIds.model_construct()
    description: str | None = None
    allocations: tuple[Allocation, ...] = ()
    dates: OrderDates = OrderDates.model_construct()
    color: str | None = None
    size: str | None = None
    pack: PackDetails | None = None
    allowances_charges: tuple[AllowanceCharge, ...] = ()
    notes: tuple[Note, ...] = ()


class Order(CanonicalModel):
    """An 850 purchase order. BEG01 purpose, BEG02 order type, BEG03 po_number,
    BEG04 release number, BEG05 po_date; CUR02 currency; REF references (the REFs
    inside N1 loops follow the header ones); DTM dates; N1 parties; the first ITD
    terms and TD5 carrier; BEG06 contract_number; the heading SAC
    allowances_charges; notes (heading N9 loops with their MSGs, NTE); totals (CTT,
    heading and summary AMT)."""

    po_number: str
    po_date: date | None = None
    purpose: Purpose = "original"
    order_type: str | None = None
    release_number: str | None = None
    currency: str | None = None
    references: tuple[Reference, ...] = ()
    dates: OrderDates = OrderDates.model_construct()
    parties: tuple[Party, ...] = ()
    terms: Terms | None = None
    carrier: Carrier | None = None
    lines: tuple[OrderLine, ...] = ()
    contract_number: str | None = None
    allowances_charges: tuple[AllowanceCharge, ...] = ()
    notes: tuple[Note, ...] = ()
    totals: Totals | None = None
