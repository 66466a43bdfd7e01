"""canonical → X12 → canonical is the identity for ship notices and invoices.

Random Shipment and Invoice documents that X12 can carry are rendered through
``translators.mapping.render`` (which validates its output), written as X12 text,
read back, validated again with ``validate_set`` exactly as an inbound set is, and
mapped again; the result must equal the original on every field. The corpus
documents that can be rendered (they have the mandatory BSN/BIG/TDS values) must
survive the same trip.
"""

from __future__ import annotations

import string
from datetime import date
from decimal import Decimal
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
from translators.engine import describe_rejection
from translators.mapping import RenderValidationError, render
from translators.mapping.invoice import invoice_from_x12
from translators.mapping.rules import MappingRules, ProductIdRules, ShipmentRules
from translators.mapping.shipment import shipment_from_x12
from translators.x12.grammar import grammar_version
from translators.x12.model import TransactionSet
from translators.x12.validation import validate_set

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

# Values are what a partner may send (no delimiters, no surrounding blanks) and what
# the 004010 elements hold: lengths within bounds, and the combinations the syntax
# notes ask for (SN102 with SN103, TD107 with TD108, an N103 with its N104 ...).
ALPHABET = string.ascii_uppercase + string.digits + " -./#&,"


def texts(max_size: int = 14, min_size: int = 1) -> st.SearchStrategy[str]:
    return (
        st.text(ALPHABET, min_size=min_size, max_size=max_size)
        .map(str.strip)
        .filter(lambda s: len(s) >= min_size)
    )


def codes(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(string.ascii_uppercase + string.digits, min_size=min_size, max_size=max_size)


def decimals(max_digits: int, places: int = 3) -> st.SearchStrategy[Decimal]:
    """R values with at most ``max_digits`` digits."""
    limit = 10**max_digits - 1
    return st.builds(
        lambda n, p: Decimal(n).scaleb(-p),
        st.integers(-limit, limit),
        st.integers(0, min(places, max_digits - 1)),
    )


text = texts()
opt = st.none() | text
dates = st.none() | st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
n2 = st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
# Qualifiers no default rule maps to a named field, so they stay under ``other``.
OTHER_QUALIFIERS = ["CB", "ON", "VC", "TP", "UA", "GC", "N4", "LT"]
ROLES = ["ship_to", "bill_to", "buyer", "vendor", "supplier", "ship_from", "remit_to", "sh", "ob", "re"]
both_or_neither = st.tuples(st.none(), st.none()).__or__

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


@st.composite
def parties(draw: st.DrawFn) -> Party:
    # N1 needs a name (N102) or an id (N103 qualifier with its N104)
    ident = draw(st.none() | st.tuples(codes(1, 2), texts(min_size=2)))
    return Party(
        role=draw(st.sampled_from(ROLES)),
        name=draw(text if ident is None else opt),
        id_qualifier=ident[0] if ident else None,
        id=ident[1] if ident else None,
        address_lines=tuple(draw(st.lists(text, max_size=4))),
        city=draw(st.none() | texts(min_size=2)),
        state=draw(st.none() | codes(2, 2)),
        postal_code=draw(st.none() | texts(min_size=3)),
        country=draw(st.none() | codes(2, 3)),
    )


def references(excluded: set[str]) -> st.SearchStrategy[Reference]:
    # REF02 or REF03 (syntax note R0203)
    return st.builds(
        lambda qualifier, data: Reference(qualifier=qualifier, value=data[0], description=data[1]),
        codes(2, 3).filter(lambda q: q not in excluded),
        st.tuples(text, opt) | st.tuples(st.none(), text),
    )


def small(strategy: st.SearchStrategy, size: int = 3) -> st.SearchStrategy[tuple]:  # type: ignore[type-arg]
    return st.lists(strategy, max_size=size).map(tuple)


@st.composite
def items(draw: st.DrawFn) -> ShipmentItem:
    ids = draw(product_ids)
    quantity, uom = draw(
        both_or_neither(st.tuples(decimals(10), codes(2, 2)))
    )  # SN102 and SN103 are mandatory
    # the line number travels in LIN01, or in SN101 when there is no product id (a
    # LIN needs one); with neither there is nowhere to write it
    line_number = draw(opt) if not ids.is_empty() or quantity is not None else None
    return ShipmentItem(line_number=line_number, product_ids=ids, quantity_shipped=quantity, uom=uom)


sscc = st.none() | st.text(string.digits, min_size=16, max_size=22)
packs = st.builds(Pack, sscc=sscc, items=small(items()))
tares = st.builds(Tare, sscc=sscc, packs=small(packs, 2), items=small(items(), 2))
orders = st.builds(
    lambda prf, tares, packs, items: ShipmentOrder(
        po_number=prf[0], po_date=prf[1], tares=tares, packs=packs, items=items
    ),
    both_or_neither(st.tuples(text, dates)),  # PRF01 is mandatory: no date without a number
    small(tares, 2),
    small(packs, 2),
    small(items()),
)
carriers = st.builds(
    ShipmentCarrier,
    scac=st.none() | texts(min_size=2),
    mode=st.none() | codes(1, 2),
    routing=opt,
    tracking_number=opt,
    bill_of_lading=opt,
).filter(lambda c: any(v is not None for v in c.model_dump().values()))
packagings = st.builds(
    lambda coded, weighed: Packaging(
        code=coded[0], lading_quantity=coded[1], weight=weighed[0], weight_uom=weighed[1]
    ),
    # TD101 needs TD102 (C0102); TD107 and TD108 go together (P0708)
    st.tuples(st.none(), st.none() | st.integers(0, 10**7 - 1))
    | st.tuples(codes(3, 5), st.integers(0, 10**7 - 1)),
    both_or_neither(st.tuples(decimals(10), codes(2, 2))),
).filter(lambda p: any(v is not None for v in p.model_dump().values()))
shipments = st.builds(
    Shipment,
    shipment_id=texts(min_size=2),
    shipment_date=st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    purpose=st.sampled_from(["00", "05", "14"]),
    hierarchy=st.none() | st.sampled_from(["0001", "0002", "0004"]),
    shipped_date=dates,
    estimated_delivery=dates,
    carrier=st.none() | carriers,
    packaging=st.none() | packagings,
    parties=small(parties()),
    references=small(references({"BM", "CN", "BL", "2I"})),
    orders=small(orders),
)

allowances = st.builds(
    AllowanceCharge,
    type=st.sampled_from(["allowance", "charge"]),
    code=codes(4, 4),  # SAC02 (or SAC03, not in the contract) is required: R0203
    amount=st.none() | n2,
    percent=st.none() | decimals(6),
    description=opt,
)
lines = st.builds(
    lambda priced, **kw: InvoiceLine(quantity=priced[0], uom=priced[1], unit_price=priced[2], **kw),
    # IT102, IT103 and IT104 all or none (P020304)
    st.tuples(st.none(), st.none(), st.none()) | st.tuples(decimals(10), codes(2, 2), decimals(17)),
    line_number=opt,
    product_ids=product_ids,
    description=opt,
    allowances_charges=small(allowances, 2),
)
terms = st.one_of(
    st.builds(
        Terms,
        discount_days=st.none() | st.integers(0, 999),
        net_days=st.none() | st.integers(0, 999),
        description=opt,
    ),
    # ITD03 needs ITD05 (L03040513)
    st.builds(
        Terms,
        discount_percent=decimals(6),
        discount_days=st.integers(0, 999),
        net_days=st.none() | st.integers(0, 999),
        description=opt,
    ),
)
invoices = st.builds(
    Invoice,
    invoice_number=text,
    invoice_date=st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    po_number=opt,
    po_date=dates,
    currency=st.none() | st.sampled_from(["USD", "CAD", "EUR"]),
    references=small(references(set())),
    parties=small(parties()),
    terms=st.none() | terms,
    ship_date=dates,
    lines=small(lines, 4),
    allowances_charges=small(allowances, 2),
    total_amount=n2,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_back(segments: list[list[str]], functional_id: str) -> TransactionSet:
    """The rendered set as the engine would receive it, validated like any inbound set."""
    (tset,) = read_sets(interchange_text([segments], functional_id))
    outcome = validate_set(tset)
    assert outcome.accepted, describe_rejection(outcome)
    return tset


def shipment_trip(doc: Shipment, rules: MappingRules) -> Shipment:
    segments = render(doc, rules=rules, control_number="0001", version="004010")
    return shipment_from_x12(read_back(segments, "SH"), rules)


def invoice_trip(doc: Invoice, rules: MappingRules) -> Invoice:
    segments = render(doc, rules=rules, control_number="0001", version="004010")
    return invoice_from_x12(read_back(segments, "IN"), rules)


def judged_valid(tset: TransactionSet) -> bool:
    """Whether a corpus set is valid X12 by one of our grammars. A set no grammar
    judged (002040, 003060 ...) or one the validator rejects may hold values no
    004010 set can carry; rendering those may refuse (RenderValidationError)."""
    version = tset.group.version if tset.group is not None else tset.interchange.version
    return grammar_version(tset.set_id, version) is not None and validate_set(tset).accepted


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
    doc = Shipment(shipment_id="S1", shipment_date=date(2024, 1, 1), purpose="00")
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
        try:
            again = shipment_trip(doc, RULES)
        except RenderValidationError:
            if judged_valid(tset):
                raise
            continue
        assert again == doc


@pytest.mark.parametrize("path", sorted((CORPUS / "810").glob("*.edi")), ids=lambda p: p.name)
def test_corpus_810_survives_render_and_read(path: Path, corpus: Path) -> None:
    for tset in read_sets(path):
        doc = invoice_from_x12(tset, RULES)
        try:
            again = invoice_trip(doc, RULES)
        except RenderValidationError:
            if judged_valid(tset):
                raise
            continue
        assert again == doc
