"""Property: canonical Order/OrderAck → X12 text → canonical is the identity on every
contract field, with default rules and with a partner's (one-to-one) overrides."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from x12util import interchange_text, read_sets

from translators.canonical import (
    Allocation,
    Carrier,
    LineAcknowledgment,
    Order,
    OrderAck,
    OrderAckLine,
    OrderDates,
    OrderLine,
    Party,
    ProductIds,
    Reference,
    Terms,
)
from translators.mapping import MappingRules, render, to_canonical
from translators.mapping.common import FIELD_BY_QUALIFIER, ROLE_BY_CODE
from translators.mapping.rules import OrderAckRules, OrderRules, ProductIdRules
from translators.x12.model import Delimiters

PARTNER_ORDER = OrderRules(
    date_qualifiers={"requested_delivery": "074"},
    reference_qualifiers={"X9": "DP"},
    party_roles={"Z7": "mark_for"},
    locations={"0042": "STORE-42"},
    product_ids=ProductIdRules(outbound={"buyer_item": "BP", "vendor_item": "VN"}),
)
PARTNER_RULES = MappingRules(
    order=PARTNER_ORDER,
    order_ack=OrderAckRules(**PARTNER_ORDER.model_dump(), ack_date_qualifier="067"),
)
# Codes a partner rule above gives a meaning: canonical documents never hold them raw.
RESERVED = {"X9", "Z7", "0042", "074"}

SAFE = st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" -./&#,'()", max_codepoint=0x7F)
texts = st.text(SAFE, min_size=1, max_size=24).map(str.strip).filter(lambda s: bool(s) and s not in RESERVED)
codes = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=2, max_size=3).filter(
    lambda s: s not in RESERVED
)
decimals = st.builds(lambda n, p: Decimal(n).scaleb(-p), st.integers(-10**7, 10**7), st.integers(0, 4))
dates = st.dates(date(1900, 1, 1), date(2099, 12, 31))
opt = st.none().__or__


def _unknown_role(code: str) -> bool:
    return code not in ROLE_BY_CODE and code.lower() not in ROLE_BY_CODE.values()


roles = st.sampled_from([*ROLE_BY_CODE.values(), "mark_for"]) | codes.filter(_unknown_role).map(str.lower)
parties = st.builds(
    Party,
    role=roles,
    name=opt(texts),
    id_qualifier=opt(codes),
    id=opt(texts | st.just("STORE-42")),
    address_lines=st.lists(texts, max_size=3).map(tuple),
    city=opt(texts),
    state=opt(codes),
    postal_code=opt(texts),
    country=opt(codes),
)
references = st.builds(Reference, qualifier=codes | st.just("DP"), value=opt(texts), description=opt(texts))
product_ids = st.builds(
    ProductIds,
    upc=opt(texts),
    ean=opt(texts),
    gtin=opt(texts),
    vendor_item=opt(texts),
    buyer_item=opt(texts),
    sku=opt(texts),
    manufacturer_part=opt(texts),
    other=st.dictionaries(codes.filter(lambda q: q not in FIELD_BY_QUALIFIER), texts, max_size=2),
)
order_dates = st.builds(OrderDates, **{name: opt(dates) for name in OrderDates.model_fields})
order_lines = st.builds(
    OrderLine,
    line_number=opt(texts),
    quantity=opt(decimals),
    uom=opt(codes),
    unit_price=opt(decimals),
    price_basis=opt(codes),
    product_ids=product_ids,
    description=opt(texts),
    allocations=st.lists(
        st.builds(Allocation, location_id=texts | st.just("STORE-42"), quantity=decimals), max_size=12
    ).map(tuple),
    dates=order_dates,
)
orders = st.builds(
    Order,
    po_number=texts,
    po_date=dates,
    purpose=st.sampled_from(["original", "cancellation", "change", "replace", "confirmation", "02", "07"]),
    order_type=codes,
    release_number=opt(texts),
    currency=opt(codes),
    references=st.lists(references, max_size=3).map(tuple),
    dates=order_dates,
    parties=st.lists(parties, max_size=3).map(tuple),
    terms=opt(
        st.builds(
            Terms,
            discount_percent=opt(decimals.map(abs)),
            discount_days=opt(st.integers(0, 999)),
            net_days=opt(st.integers(0, 999)),
            description=opt(texts),
        )
    ),
    carrier=opt(st.builds(Carrier, scac=opt(codes), mode=opt(codes), routing=opt(texts))),
    lines=st.lists(order_lines, max_size=4).map(tuple),
)
acknowledgments = st.one_of(
    st.builds(LineAcknowledgment, status=codes, quantity=opt(decimals), uom=opt(codes)),
    st.builds(
        LineAcknowledgment,
        status=codes,
        quantity=opt(decimals),
        uom=opt(codes),
        date_qualifier=codes,
        date=opt(dates),
    ),
)
ack_lines = st.builds(
    lambda acks, **kw: OrderAckLine(acknowledgments=tuple(acks), **kw),
    st.lists(acknowledgments, max_size=3),
    line_number=opt(texts),
    quantity=opt(decimals),
    uom=opt(codes),
    unit_price=opt(decimals),
    price_basis=opt(codes),
    product_ids=product_ids,
    description=opt(texts),
)
order_acks = st.builds(
    OrderAck,
    po_number=texts,
    ack_type=codes,
    purpose=st.sampled_from(["original", "change", "06", "54"]),
    po_date=dates,
    release_number=opt(texts),
    ack_date=opt(dates),
    currency=opt(codes),
    references=st.lists(references, max_size=3).map(tuple),
    parties=st.lists(parties, max_size=3).map(tuple),
    lines=st.lists(ack_lines, max_size=4).map(tuple),
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


DELIMITER_STYLES = [
    Delimiters(),
    Delimiters(element="|", component=":", repetition="^", segment="~", suffix=""),
    Delimiters(element="\x1d", component="\x1f", repetition=None, segment="\x1c", suffix="\r\n"),
]


def _roundtrip(doc: Order | OrderAck, rules: MappingRules, functional_id: str, delimiters: Delimiters) -> object:
    segments = render(doc, rules=rules, control_number="0001")
    text = interchange_text([segments], functional_id=functional_id, delimiters=delimiters)
    (tset,) = read_sets(text)
    return to_canonical(tset, partner_id="p", rules=rules).document


@SETTINGS
@given(orders, st.sampled_from([MappingRules(), PARTNER_RULES]), st.sampled_from(DELIMITER_STYLES))
def test_order_roundtrip(order: Order, rules: MappingRules, delimiters: Delimiters) -> None:
    assert _roundtrip(order, rules, "PO", delimiters) == order


@SETTINGS
@given(order_acks, st.sampled_from([MappingRules(), PARTNER_RULES]), st.sampled_from(DELIMITER_STYLES))
def test_order_ack_roundtrip(ack: OrderAck, rules: MappingRules, delimiters: Delimiters) -> None:
    assert _roundtrip(ack, rules, "PR", delimiters) == ack


@SETTINGS
@given(orders)
def test_order_json_roundtrip(order: Order) -> None:
    assert Order.model_validate_json(order.model_dump_json()) == order
