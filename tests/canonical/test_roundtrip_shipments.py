"""canonical → X12 → canonical is the identity for ship notices and invoices.

Random valid Shipment and Invoice documents are rendered, written as X12 text,
read back and mapped again; the result must equal the original on every field.
The corpus documents that can be rendered (they have the mandatory BSN/BIG/TDS
values) must survive the same trip.
"""

from __future__ import annotations

import string
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from x12util_b import interchange_text, read_sets

from translators.canonical.common import AllowanceCharge, Party, ProductIds, Reference, Terms
from translators.canonical.invoice import Invoice, InvoiceLine
from translators.canonical.shipment import (
    Pack,
    Packaging,
    Shipment,
    ShipmentCarrier,
    ShipmentItem,
    ShipmentOrder,
    Tare,
)
from translators.mapping.invoice import invoice_from_x12, render_invoice
from translators.mapping.rules import MappingRules, ProductIdRules, ShipmentRules
from translators.mapping.shipment import render_shipment, shipment_from_x12

RULES = MappingRules()
# A partner with other conventions: the trip must be the identity for it too.
PARTNER = MappingRules(
    shipment=ShipmentRules(
        bill_of_lading_qualifier="BL",
        tracking_qualifier="2I",
        date_qualifiers={"shipped_date": "067"},
        locations={"0042": "STORE-42"},
        product_ids=ProductIdRules(outbound={"buyer_item": "BP", "vendor_item": "VN"}),
    )
)
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "x12"

# Values are what a partner may send: no delimiters, no surrounding blanks.
ALPHABET = string.ascii_uppercase + string.digits + " -./#&,"
text = st.text(ALPHABET, min_size=1, max_size=14).map(str.strip).filter(bool)
code = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=4)
opt = st.none() | text
dates = st.none() | st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
real = st.decimals(min_value=-10**7, max_value=10**7, places=3, allow_nan=False, allow_infinity=False)
n2 = st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
# Qualifiers no default rule maps to a named field, so they stay under ``other``.
OTHER_QUALIFIERS = ["CB", "ON", "VC", "TP", "UA", "GC", "N4", "LT"]
ROLES = ["ship_to", "bill_to", "buyer", "vendor", "supplier", "ship_from", "remit_to", "sh", "ob", "re"]

product_ids = st.builds(
    ProductIds,
    upc=opt,
    ean=opt,
    gtin=opt,
    vendor_item=opt,
    buyer_item=opt,
    sku=opt,
    manufacturer_part=opt,
    other=st.dictionaries(st.sampled_from(OTHER_QUALIFIERS), text, max_size=3),
)
parties = st.builds(
    Party,
    role=st.sampled_from(ROLES),
    name=opt,
    id_qualifier=st.none() | code,
    id=opt,
    address_lines=st.lists(text, max_size=4).map(tuple),
    city=opt,
    state=opt,
    postal_code=opt,
    country=opt,
)


def references(excluded: set[str]) -> st.SearchStrategy[Reference]:
    qualifier = code.filter(lambda q: q not in excluded)
    return st.builds(Reference, qualifier=qualifier, value=opt, description=opt)


def small(strategy: st.SearchStrategy, size: int = 3) -> st.SearchStrategy[tuple]:  # type: ignore[type-arg]
    return st.lists(strategy, max_size=size).map(tuple)


items = st.builds(
    ShipmentItem, line_number=opt, product_ids=product_ids, quantity_shipped=st.none() | real, uom=st.none() | code
)
sscc = st.none() | st.text(string.digits, min_size=16, max_size=22)
packs = st.builds(Pack, sscc=sscc, items=small(items))
tares = st.builds(Tare, sscc=sscc, packs=small(packs, 2), items=small(items, 2))
orders = st.builds(
    ShipmentOrder, po_number=opt, po_date=dates, tares=small(tares, 2), packs=small(packs, 2), items=small(items)
)
carriers = st.builds(
    ShipmentCarrier, scac=opt, mode=st.none() | code, routing=opt, tracking_number=opt, bill_of_lading=opt
).filter(lambda c: any(v is not None for v in c.model_dump().values()))
packagings = st.builds(
    Packaging,
    code=st.none() | code,
    lading_quantity=st.none() | st.integers(0, 10**6),
    weight=st.none() | real,
    weight_uom=st.none() | code,
)
shipments = st.builds(
    Shipment,
    shipment_id=text,
    shipment_date=st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    purpose=st.sampled_from(["00", "05", "14"]),
    hierarchy=st.none() | st.sampled_from(["0001", "0002", "0004"]),
    shipped_date=dates,
    estimated_delivery=dates,
    carrier=st.none() | carriers,
    packaging=st.none() | packagings,
    parties=small(parties),
    references=small(references({"BM", "CN", "BL", "2I"})),
    orders=small(orders),
)

allowances = st.builds(
    AllowanceCharge,
    type=st.sampled_from(["allowance", "charge"]),
    code=st.none() | code,
    amount=st.none() | n2,
    percent=st.none() | real,
    description=opt,
)
lines = st.builds(
    InvoiceLine,
    line_number=opt,
    quantity=st.none() | real,
    uom=st.none() | code,
    unit_price=st.none() | real,
    product_ids=product_ids,
    description=opt,
    allowances_charges=small(allowances, 2),
)
terms = st.builds(
    Terms,
    discount_percent=st.none() | real,
    discount_days=st.none() | st.integers(0, 999),
    net_days=st.none() | st.integers(0, 999),
    description=opt,
)
invoices = st.builds(
    Invoice,
    invoice_number=text,
    invoice_date=st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    po_number=opt,
    po_date=dates,
    currency=st.none() | st.sampled_from(["USD", "CAD", "EUR"]),
    references=small(references(set())),
    parties=small(parties),
    terms=st.none() | terms,
    ship_date=dates,
    lines=small(lines, 4),
    allowances_charges=small(allowances, 2),
    total_amount=n2,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shipment_trip(doc: Shipment, rules: MappingRules) -> Shipment:
    (tset,) = read_sets(interchange_text([render_shipment(doc, rules, "0001")], "SH"))
    return shipment_from_x12(tset, rules)


def invoice_trip(doc: Invoice, rules: MappingRules) -> Invoice:
    (tset,) = read_sets(interchange_text([render_invoice(doc, rules, "0001")], "IN"))
    return invoice_from_x12(tset, rules)


@SETTINGS
@given(shipments)
def test_shipment_round_trip(doc: Shipment) -> None:
    assert shipment_trip(doc, RULES) == doc


@SETTINGS
@given(shipments)
def test_shipment_round_trip_with_partner_conventions(doc: Shipment) -> None:
    # "0042" is the partner's code for our STORE-42: an id equal to it cannot be ours.
    assume(all(p.id != "0042" for p in doc.parties))
    assert shipment_trip(doc, PARTNER) == doc


@SETTINGS
@given(invoices)
def test_invoice_round_trip(doc: Invoice) -> None:
    assert invoice_trip(doc, RULES) == doc


def test_equality_is_strict_enough_to_fail() -> None:
    doc = Shipment(shipment_id="S", shipment_date=date(2024, 1, 1), purpose="00")
    assert shipment_trip(doc, RULES) != doc.model_copy(update={"hierarchy": "0001"})


# MALFORMED in PROVENANCE.md: a segment terminator the ISA does not declare leaves
# "~" and a newline inside an N1 element, which no X12 text can carry.
MALFORMED = {"stupidedi_856_4010_mixed_terminators_canada.edi"}


@pytest.mark.parametrize("path", sorted((CORPUS / "856").glob("*.edi")), ids=lambda p: p.name)
def test_corpus_856_survives_render_and_read(path: Path, corpus: Path) -> None:
    if path.name in MALFORMED:
        pytest.skip("malformed sample: values hold delimiters")
    for tset in read_sets(path):
        doc = shipment_from_x12(tset, RULES)
        if doc.shipment_id is None:  # BSN02 empty: cannot be rendered (see test_shipment)
            continue
        assert shipment_trip(doc, RULES) == doc


@pytest.mark.parametrize("path", sorted((CORPUS / "810").glob("*.edi")), ids=lambda p: p.name)
def test_corpus_810_survives_render_and_read(path: Path, corpus: Path) -> None:
    for tset in read_sets(path):
        doc = invoice_from_x12(tset, RULES)
        assert invoice_trip(doc, RULES) == doc
