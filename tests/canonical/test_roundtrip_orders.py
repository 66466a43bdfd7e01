"""Property: canonical Order/OrderAck → X12 text → canonical is the identity on every
contract field, with default rules and with a partner's (one-to-one) overrides, in
004010 and 005010.

Every rendered set must also pass the grammar validation inbound sets go through
(``validate_set`` on the set read back from the text): a renderer that writes X12
our own validator rejects fails here. The documents generated are the ones X12 can
carry: values within their elements' lengths, and the combinations the syntax notes
require (a unit of measure needs a quantity, an N103 needs its N104 ...).
"""

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
from translators.engine import describe_rejection
from translators.mapping import MappingRules, render, to_canonical
from translators.mapping.common import FIELD_BY_QUALIFIER, ROLE_BY_CODE
from translators.mapping.rules import OrderAckRules, OrderRules, ProductIdRules
from translators.x12.grammar import ElementRule, load_grammar
from translators.x12.model import Delimiters
from translators.x12.validation import validate_set

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
DEFAULT_RULES = MappingRules()
# Codes a partner rule above gives a meaning: canonical documents never hold them raw.
RESERVED = {"X9", "Z7", "0042", "074"}

SAFE = st.characters(
    whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" -./&#,'()", max_codepoint=0x7F
)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def texts(max_size: int, min_size: int = 1) -> st.SearchStrategy[str]:
    """AN values of ``min_size``..``max_size`` characters, no surrounding blanks."""
    return (
        st.text(SAFE, min_size=min_size, max_size=max_size)
        .map(str.strip)
        .filter(lambda s: len(s) >= min_size and s not in RESERVED)
    )


def codes(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """ID values (no code list) of ``min_size``..``max_size`` characters."""
    return st.text(st.sampled_from(ALNUM), min_size=min_size, max_size=max_size).filter(
        lambda s: s not in RESERVED
    )


def decimals(max_digits: int) -> st.SearchStrategy[Decimal]:
    """R values with at most ``max_digits`` digits (up to 4 decimals)."""
    limit = 10**max_digits - 1
    return st.builds(
        lambda n, p: Decimal(n).scaleb(-p), st.integers(-limit, limit), st.integers(0, min(4, max_digits - 1))
    )


dates = st.dates(date(1900, 1, 1), date(2099, 12, 31))
opt = st.none().__or__


def _n101_codes() -> frozenset[str]:
    found: frozenset[str] | None = None
    for set_id in ("850", "855"):
        for version in ("004010", "005010"):
            grammar = load_grammar(set_id, version)
            assert grammar is not None
            part = grammar.segments["N1"][0].elements[0]  # type: ignore[index]
            assert isinstance(part, ElementRule) and part.codes
            found = part.codes if found is None else found & part.codes
    assert found
    return found


# N101 codes with no canonical name are kept as their code lowercased.
UNKNOWN_ROLES = sorted(
    code.lower()
    for code in _n101_codes()
    if code not in ROLE_BY_CODE and code not in RESERVED and code.lower() not in ROLE_BY_CODE.values()
)
words = st.text(st.sampled_from(ALNUM + "&-."), min_size=1, max_size=14)
# Names up to N102's 60 characters, and longer ones that go on in N2 (N201/N202).
names = texts(60) | st.lists(words, min_size=5, max_size=22).map(" ".join).filter(lambda s: len(s) <= 300)


def roles(rules: MappingRules) -> st.SearchStrategy[str]:
    known = [*ROLE_BY_CODE.values(), *(["mark_for"] if rules is PARTNER_RULES else [])]
    return st.sampled_from(known) | st.sampled_from(UNKNOWN_ROLES)


@st.composite
def parties(draw: st.DrawFn, rules: MappingRules) -> Party:
    # N1: a name (N102) or an id (N103 qualifier + N104 id, always as a pair)
    ident = draw(opt(st.tuples(codes(1, 2), texts(80, min_size=2) | st.just("STORE-42"))))
    return Party(
        role=draw(roles(rules)),
        name=draw(names if ident is None else opt(names)),
        id_qualifier=ident[0] if ident else None,
        id=ident[1] if ident else None,
        address_lines=tuple(draw(st.lists(texts(55), max_size=4))),
        city=draw(opt(texts(30, min_size=2))),
        state=draw(opt(codes(2, 2))),
        postal_code=draw(opt(texts(15, min_size=3))),
        country=draw(opt(codes(2, 3))),
    )


# REF02 or REF03 (syntax note R0203)
references = st.builds(
    lambda qualifier, data: Reference(qualifier=qualifier, value=data[0], description=data[1]),
    codes(2, 3) | st.just("DP"),
    st.tuples(texts(30), opt(texts(80))) | st.tuples(st.none(), texts(80)),
)
product_ids = st.builds(
    ProductIds,
    upc=opt(texts(48)),
    ean=opt(texts(48)),
    gtin=opt(texts(48)),
    vendor_item=opt(texts(48)),
    buyer_item=opt(texts(48)),
    sku=opt(texts(48)),
    manufacturer_part=opt(texts(48)),
    other=st.dictionaries(codes(2, 2).filter(lambda q: q not in FIELD_BY_QUALIFIER), texts(48), max_size=2),
)
order_dates = st.builds(OrderDates, **{name: opt(dates) for name in OrderDates.model_fields})
# PO102/PO103 and PO104/PO105: a unit needs its quantity, a price basis its price
quantities = st.tuples(st.none(), st.none()) | st.tuples(decimals(15), opt(codes(2, 2)))
prices = st.tuples(st.none(), st.none()) | st.tuples(decimals(17), opt(codes(2, 2)))


@st.composite
def po1_fields(draw: st.DrawFn) -> dict[str, object]:
    quantity, uom = draw(quantities)
    unit_price, price_basis = draw(prices)
    return {
        "line_number": draw(opt(texts(20))),
        "quantity": quantity,
        "uom": uom,
        "unit_price": unit_price,
        "price_basis": price_basis,
        "product_ids": draw(product_ids),
        "description": draw(opt(texts(80))),
    }


order_lines = st.builds(
    lambda fields, allocations, line_dates: OrderLine(
        **fields, allocations=tuple(allocations), dates=line_dates
    ),
    po1_fields(),
    st.lists(
        st.builds(Allocation, location_id=texts(80, min_size=2) | st.just("STORE-42"), quantity=decimals(15)),
        max_size=12,
    ),
    order_dates,
)
# ITD03 (discount percent, R 1/6) needs ITD05 (discount days): syntax note L03040513
terms = st.one_of(
    st.builds(
        Terms,
        discount_days=opt(st.integers(0, 999)),
        net_days=opt(st.integers(0, 999)),
        description=opt(texts(80)),
    ),
    st.builds(
        Terms,
        discount_percent=decimals(6).map(abs),
        discount_days=st.integers(0, 999),
        net_days=opt(st.integers(0, 999)),
        description=opt(texts(80)),
    ),
)
# A carrier with no value at all is not written (a TD5 needs TD502, 04, 05, 06 or 12)
carriers = st.builds(Carrier, scac=opt(codes(2, 4)), mode=opt(codes(1, 2)), routing=opt(texts(35))).filter(
    lambda c: any(v is not None for v in c.model_dump().values())
)


def orders(rules: MappingRules) -> st.SearchStrategy[Order]:
    return st.builds(
        Order,
        po_number=texts(22),
        po_date=dates,
        purpose=st.sampled_from(
            ["original", "cancellation", "change", "replace", "confirmation", "02", "07"]
        ),
        order_type=codes(2, 2),
        release_number=opt(texts(30)),
        currency=opt(codes(3, 3)),
        references=st.lists(references, max_size=3).map(tuple),
        dates=order_dates,
        parties=st.lists(parties(rules), max_size=3).map(tuple),
        terms=opt(terms),
        carrier=opt(carriers),
        lines=st.lists(order_lines, min_size=1, max_size=4).map(tuple),  # the PO1 loop is mandatory
    )


# ACK02/ACK03 go together (P0203); ACK04 needs ACK05 (C0405)
acknowledgments = st.builds(
    lambda status, shipped, when: LineAcknowledgment(
        status=status, quantity=shipped[0], uom=shipped[1], date_qualifier=when[0], date=when[1]
    ),
    codes(2, 2),
    st.tuples(st.none(), st.none()) | st.tuples(decimals(15), codes(2, 2)),
    st.tuples(st.none(), st.none()) | st.tuples(codes(3, 3), dates),
)
ack_lines = st.builds(
    lambda acks, fields: OrderAckLine(acknowledgments=tuple(acks), **fields),
    st.lists(acknowledgments, max_size=3),
    po1_fields(),
)


def order_acks(rules: MappingRules) -> st.SearchStrategy[OrderAck]:
    return st.builds(
        OrderAck,
        po_number=texts(22),
        ack_type=codes(2, 2),
        purpose=st.sampled_from(["original", "change", "06", "54"]),
        po_date=dates,
        release_number=opt(texts(30)),
        ack_date=opt(dates),
        currency=opt(codes(3, 3)),
        references=st.lists(references, max_size=3).map(tuple),
        parties=st.lists(parties(rules), max_size=3).map(tuple),
        lines=st.lists(ack_lines, max_size=4).map(tuple),
    )


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DELIMITER_STYLES = [
    Delimiters(),
    Delimiters(element="|", component=":", repetition="^", segment="~", suffix=""),
    Delimiters(element="\x1d", component="\x1f", repetition=None, segment="\x1c", suffix="\r\n"),
]
# (GS08, delimiters): 005010 needs a repetition separator in ISA11
ENVELOPES = [("004010", d) for d in DELIMITER_STYLES] + [
    ("005010", d) for d in DELIMITER_STYLES if d.repetition is not None
]
RULES = [DEFAULT_RULES, PARTNER_RULES]


def _roundtrip(
    doc: Order | OrderAck, rules: MappingRules, functional_id: str, envelope: tuple[str, Delimiters]
) -> object:
    version, delimiters = envelope
    segments = render(doc, rules=rules, control_number="0001", version=version, delimiters=delimiters)
    text = interchange_text([segments], functional_id=functional_id, version=version, delimiters=delimiters)
    (tset,) = read_sets(text)
    outcome = validate_set(tset)
    assert outcome.accepted, describe_rejection(outcome)
    return to_canonical(tset, partner_id="p", rules=rules).document


@SETTINGS
@given(st.sampled_from(RULES).flatmap(lambda r: st.tuples(st.just(r), orders(r))), st.sampled_from(ENVELOPES))
def test_order_roundtrip(case: tuple[MappingRules, Order], envelope: tuple[str, Delimiters]) -> None:
    rules, order = case
    assert _roundtrip(order, rules, "PO", envelope) == order


@SETTINGS
@given(
    st.sampled_from(RULES).flatmap(lambda r: st.tuples(st.just(r), order_acks(r))), st.sampled_from(ENVELOPES)
)
def test_order_ack_roundtrip(case: tuple[MappingRules, OrderAck], envelope: tuple[str, Delimiters]) -> None:
    rules, ack = case
    assert _roundtrip(ack, rules, "PR", envelope) == ack


@SETTINGS
@given(orders(PARTNER_RULES))
def test_order_json_roundtrip(order: Order) -> None:
    assert Order.model_validate_json(order.model_dump_json()) == order
