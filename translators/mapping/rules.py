"""Per-partner mapping overrides: how one partner's X12 differs from our defaults.

A partner profile (``partners/<id>/profile.toml``) embeds one :class:`MappingRules`.
Everything is declarative and every field has a default, so an empty profile means
"our defaults": ``MappingRules()`` is valid. There is one sub-model per document kind;
they share :class:`DocumentRules`.

The translation direction of every map is *partner code → our code* on the way in;
renderers use the inverse on the way out (so keep the maps one-to-one).

This module only describes rules; the mappers in this package apply them. It never
does I/O.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DocumentRules",
    "InvoiceRules",
    "LineCountPolicy",
    "MappingRules",
    "OrderAckRules",
    "OrderRules",
    "ProductIdRules",
    "ShipmentRules",
    "UnknownCodePolicy",
]

UnknownCodePolicy = Literal["keep", "reject"]
# What a CTT01 other than the number of PO1 loops does to an 850/855: ``reject`` the
# set (lines were lost or added on the way), or ``ignore`` it (partners that count
# something else there, e.g. unique items).
LineCountPolicy = Literal["reject", "ignore"]


class _Rules(BaseModel):
    # built when a profile is first validated, as one validator (see CanonicalModel)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class ProductIdRules(_Rules):
    """Product-id qualifiers.

    ``inbound``: extra partner qualifiers → canonical field (``upc``, ``ean``,
    ``gtin``, ``vendor_item``, ``buyer_item``, ``sku``, ``manufacturer_part``), on top
    of the defaults (e.g. ``{"CB": "buyer_item"}``).
    ``outbound``: the qualifier to write for a canonical field when it differs from
    our default (defaults: upc UP, ean EN, gtin UK, vendor_item VP, buyer_item IN,
    sku SK, manufacturer_part MG), e.g. ``{"buyer_item": "BP", "vendor_item": "VN"}``.
    """

    inbound: dict[str, str] = Field(default_factory=dict)
    outbound: dict[str, str] = Field(default_factory=dict)


class DocumentRules(_Rules):
    """Overrides shared by every document kind.

    - ``date_qualifiers``: canonical date name → the partner's DTM qualifier, when it
      differs from ours (e.g. ``{"requested_delivery": "074"}``); used both ways.
    - ``reference_qualifiers``: partner REF qualifier → ours (e.g. ``{"19": "DP"}``).
    - ``party_roles``: partner N101 code → canonical role (e.g. ``{"Z7": "mark_for"}``).
    - ``locations``: partner location code → ours, applied to party ids (N104) and
      store-distribution locations (SDQ); e.g. ``{"0042": "STORE-42"}``.
    - ``required_references``: REF qualifiers (ours, after translation) that must be
      present in the document, else it is rejected with a reason.
    - ``required_parties``: canonical party roles (after translation, e.g.
      ``ship_to``, ``ship_from``) every document of the kind must name, both ways.
    - ``unknown_codes``: what to do with an N101 role or product-id qualifier we do
      not know: ``keep`` (role lowercased / id under ``other``) or ``reject``.
    - ``product_ids``: see :class:`ProductIdRules`.
    """

    date_qualifiers: dict[str, str] = Field(default_factory=dict)
    reference_qualifiers: dict[str, str] = Field(default_factory=dict)
    party_roles: dict[str, str] = Field(default_factory=dict)
    locations: dict[str, str] = Field(default_factory=dict)
    required_references: tuple[str, ...] = ()
    required_parties: tuple[str, ...] = ()
    unknown_codes: UnknownCodePolicy = "keep"
    product_ids: ProductIdRules = Field(default_factory=ProductIdRules.model_construct)


class OrderRules(DocumentRules):
    """850 purchase order overrides (inbound and outbound).

    ``line_count``: what an inbound CTT01 that differs from the number of PO1 loops
    does: ``reject`` the set (the default) or ``ignore`` the count (a partner that
    puts something else there, such as the number of unique items).
    """

    line_count: LineCountPolicy = "reject"


class OrderAckRules(DocumentRules):
    """855 order acknowledgment overrides.

    ``ack_date_qualifier``: the ACK04 qualifier to write with a line's scheduled date
    when the canonical line does not say (default 068, current schedule ship).
    ``line_count``: as :attr:`OrderRules.line_count`, for the 855's CTT01.
    """

    ack_date_qualifier: str = "068"
    line_count: LineCountPolicy = "reject"


class ShipmentRules(DocumentRules):
    """856 ship notice overrides.

    ``bill_of_lading_qualifier`` / ``tracking_qualifier``: the REF qualifiers that carry
    the bill of lading and tracking number (defaults BM and CN).
    ``carrier_scac_in_td5``: write the carrier SCAC in TD5 (TD502 "2" + TD503).
    ``require_sscc``: every pack and tare carries an SSCC (MAN*GM: 18 digits with a
    valid GS1 check digit, or 20 with the "00" application identifier), both ways.
    """

    bill_of_lading_qualifier: str = "BM"
    tracking_qualifier: str = "CN"
    carrier_scac_in_td5: bool = True
    require_sscc: bool = False


class InvoiceRules(DocumentRules):
    """810 invoice overrides.

    ``total_check``: what an invoice we send whose total (TDS01) is not the sum of
    its lines (IT102 * IT104) and allowances/charges (SAC) does: ``reject`` it (the
    default: a 422 naming both totals) or ``allow`` it (a partner that bills
    otherwise, e.g. with taxes the document does not itemise).
    """

    total_check: Literal["reject", "allow"] = "reject"


class MappingRules(_Rules):
    """All mapping overrides of one partner, one sub-model per document kind."""

    order: OrderRules = Field(default_factory=OrderRules.model_construct)
    order_ack: OrderAckRules = Field(default_factory=OrderAckRules.model_construct)
    shipment: ShipmentRules = Field(default_factory=ShipmentRules.model_construct)
    invoice: InvoiceRules = Field(default_factory=InvoiceRules.model_construct)

    def for_kind(self, kind: str) -> DocumentRules:
        """The rules of document ``kind`` ("order", "order_ack", "shipment", "invoice")."""
        rules: DocumentRules = getattr(self, kind)
        return rules
