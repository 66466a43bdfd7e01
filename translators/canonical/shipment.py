"""The canonical ship notice (X12 856): what was shipped, how, and in which cartons.

The hierarchy is always shipment → orders → (tares → packs → items | packs → items |
items), whatever HL structure the partner sent: S-O-P-I, S-O-T-P-I and S-O-I map to
it directly; items, packs or tares that sit under no order level (S-I, S-T-I files)
are gathered into orders keyed by the PRF found at their own level (``po_number``
null when there is none). Every contract field is always emitted, null or [] when
absent (the rule of :mod:`translators.canonical.common`).

This module only describes documents; it never reads X12 and never does I/O.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
from datetime import date

from translators.canonical.common import CanonicalModel, Carrier, Money, Party, ProductIds, Reference
from translators.canonical.details import Mark
from translators.canonical.order import Purpose

__all__ = [
    "Pack",
    "Packaging",
    "Shipment",
    "ShipmentCarrier",
    "ShipmentItem",
    "ShipmentOrder",
    "Tare",
]


class ShipmentCarrier(Carrier):
    """TD5 carrier plus the shipment-level REF numbers that identify the load:
    ``tracking_number`` (REF CN by default) and ``bill_of_lading`` (REF BM by default;
    a partner profile may name other qualifiers)."""

    tracking_number: str | None = None
    bill_of_lading: str | None = None


class Packaging(CanonicalModel):
    """TD1: TD101 packaging code (e.g. CTN25), TD102 lading quantity, TD107 weight
    with its TD108 unit."""

    code: str | None = None
    lading_quantity: int | None = None
    weight: Money | None = None
    weight_uom: str | None = None


class ShipmentItem(CanonicalModel):
    """An item level (HL I): LIN01 line number (SN101 when LIN01 is empty), LIN
    product ids, SN102 quantity shipped, SN103 unit of measure, and its MAN
    ``marks``."""

    line_number: str | None = None
    product_ids: ProductIds = ProductIds.model_construct()
    quantity_shipped: Money | None = None
    uom: str | None = None
    marks: tuple[Mark, ...] = ()


class Pack(CanonicalModel):
    """A pack level (HL P): a carton identified by MAN*GM (SSCC-18 normally; kept as
    the digits were sent, whatever their count), and the items inside it. Every
    other MAN of the level (MAN*CP carrier tracking number, MAN*SM, a second GM
    ...) is in ``marks``."""

    sscc: str | None = None
    items: tuple[ShipmentItem, ...] = ()
    marks: tuple[Mark, ...] = ()


class Tare(CanonicalModel):
    """A tare level (HL T): a pallet (MAN*GM), the packs on it and any items placed
    on it directly; its other MANs in ``marks``."""

    sscc: str | None = None
    packs: tuple[Pack, ...] = ()
    items: tuple[ShipmentItem, ...] = ()
    marks: tuple[Mark, ...] = ()


class ShipmentOrder(CanonicalModel):
    """An order level (HL O): PRF01 purchase order number and PRF04 date, and what
    was shipped against it."""

    po_number: str | None = None
    po_date: date | None = None
    tares: tuple[Tare, ...] = ()
    packs: tuple[Pack, ...] = ()
    items: tuple[ShipmentItem, ...] = ()


class Shipment(CanonicalModel):
    """An advance ship notice.

    ``purpose`` is BSN01 in the order's words (00 original, 01 cancellation, 04
    change, 05 replace, 06 confirmation, 07 duplicate), any other code as sent (14
    ...); a word or its code is accepted. ``hierarchy`` is BSN05 as sent (0001
    S-O-P-I, 0004 S-O-I ...), kept verbatim because partners read it back. ``shipped_date`` is DTM 011 and ``estimated_delivery``
    DTM 017 (qualifiers a partner profile may override). ``references`` holds the
    shipment-level REFs other than the ones carried in ``carrier``; ``marks`` the
    shipment level's MANs.
    """

    shipment_id: str | None = None
    shipment_date: date | None = None
    purpose: Purpose | None = None
    hierarchy: str | None = None
    shipped_date: date | None = None
    estimated_delivery: date | None = None
    carrier: ShipmentCarrier | None = None
    packaging: Packaging | None = None
    parties: tuple[Party, ...] = ()
    references: tuple[Reference, ...] = ()
    orders: tuple[ShipmentOrder, ...] = ()
    marks: tuple[Mark, ...] = ()
