"""850 purchase orders: golden files, corpus files, partner rules, rendering."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from x12util import interchange_text, read_sets

from translators.canonical import CanonicalDocument, Order
from translators.mapping import MappingError, MappingRules, render, to_canonical
from translators.mapping.order import order_from_x12, render_order
from translators.mapping.rules import OrderRules, ProductIdRules
from translators.x12.errors import NotX12Error, RenderError
from translators.x12.validation import validate_set

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "canonical"
GOLDEN_INPUTS = sorted(FIXTURES.glob("850_*.edi"))


def canonical_json(doc: CanonicalDocument) -> str:
    return json.dumps(doc.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("source", GOLDEN_INPUTS, ids=lambda p: p.name)
def test_golden(source: Path, regen_golden: bool) -> None:
    (tset,) = read_sets(source)
    doc = to_canonical(tset, partner_id="acme", rules=MappingRules())
    produced = canonical_json(doc)
    golden = source.with_suffix(".json")
    if regen_golden:
        golden.write_text(produced, encoding="utf-8")
    assert golden.exists(), f"{golden.name} missing: run pytest --regen-golden"
    assert produced == golden.read_text(encoding="utf-8")
    # The golden JSON is also what the ERP parses back.
    assert CanonicalDocument.model_validate_json(golden.read_text(encoding="utf-8")) == doc


def test_golden_inputs_cover_both_versions() -> None:
    versions = {read_sets(p)[0].group.version for p in GOLDEN_INPUTS}  # type: ignore[union-attr]
    assert versions == {"004010", "005010"}


def _order(name: str, rules: MappingRules | None = None) -> Order:
    (tset,) = read_sets(FIXTURES / name)
    return order_from_x12(tset, rules or MappingRules())


def test_header_values_4010() -> None:
    order = _order("850_4010_star_tilde_lf.edi")
    assert order.po_number == "PO-4471"
    assert order.po_date == date(2024, 3, 12)
    assert order.purpose == "original"
    assert order.references[0].description == "HOUSEWARES"  # trailing blanks stripped
    assert order.references[-1].qualifier == "ST"  # REF inside the N1*ST loop comes last
    assert order.dates.requested_ship == date(2024, 3, 25)  # YYMMDD
    assert order.terms is not None and order.terms.discount_percent == Decimal("2.00")
    assert order.terms.net_days == 30
    assert order.carrier is not None and order.carrier.scac == "UPSN"
    ship_to = order.parties[1]
    assert (ship_to.role, ship_to.name, ship_to.id) == ("ship_to", "ACME STORE 42 RECEIVING DOCK B", "0042")
    assert order.parties[2].role == "zz"


def test_lines_4010() -> None:
    first, second, third = _order("850_4010_star_tilde_lf.edi").lines
    assert first.description == "BLUE WIDGET 12 PACK"
    assert first.product_ids.upc == "012345678905"
    assert first.product_ids.vendor_item == "WID-100"
    assert first.product_ids.buyer_item == "88001"
    assert [(a.location_id, a.quantity) for a in first.allocations] == [("0042", 12), ("0043", 12)]
    assert first.dates.requested_delivery == date(2024, 4, 5)
    assert second.quantity == Decimal("1.5")
    assert second.product_ids.other == {"XX": "SPECIAL"}
    assert third.line_number is None and third.unit_price is None


def test_partner_rules_apply() -> None:
    rules = MappingRules(
        order=OrderRules(
            date_qualifiers={"cancel_after": "002"},
            reference_qualifiers={"IA": "VR"},
            party_roles={"ZZ": "mark_for"},
            locations={"0042": "STORE-42"},
            product_ids=ProductIdRules(inbound={"XX": "sku"}),
        )
    )
    order = _order("850_4010_star_tilde_lf.edi", rules)
    assert order.dates.cancel_after == date(2024, 4, 1)  # their 002 is our cancel_after
    assert order.dates.requested_delivery is None  # ...so 002 is not requested delivery
    assert "VR" in {r.qualifier for r in order.references}
    assert order.parties[1].id == "STORE-42"
    assert order.parties[2].role == "mark_for"
    assert order.lines[0].allocations[0].location_id == "STORE-42"
    assert order.lines[1].product_ids.sku == "SPECIAL"
    # Rendering with the same rules writes the partner's codes back.
    text = "~".join("*".join(s) for s in render_order(order, rules, "0001"))
    assert "DTM*002*20240401" in text and "REF*IA*V7788" in text and "N1*ZZ*MYSTERY PARTY" in text
    assert "N1*ST*ACME STORE 42 RECEIVING DOCK B*92*0042" in text and "SDQ*EA*92*0042*12*0043*12" in text


def test_required_reference_missing_rejects() -> None:
    rules = MappingRules(order=OrderRules(required_references=("DP", "ZA")))
    with pytest.raises(MappingError, match=r"REF\*ZA") as caught:
        _order("850_4010_star_tilde_lf.edi", rules)
    assert caught.value.segment == "REF"


def test_unknown_codes_rejected_by_policy() -> None:
    with pytest.raises(MappingError, match="N101 'ZZ'"):
        _order("850_4010_star_tilde_lf.edi", MappingRules(order=OrderRules(unknown_codes="reject")))


def test_missing_beg_is_a_mapping_error() -> None:
    (tset,) = read_sets(FIXTURES / "850_4010_star_tilde_lf.edi")
    tset.segments = [s for s in tset.segments if s[0] != "BEG"]
    with pytest.raises(MappingError, match="no BEG"):
        to_canonical(tset, partner_id=None, rules=MappingRules())


def test_render_frames_and_counts() -> None:
    order = _order("850_5010_pipe_caret_colon_oneline.edi")
    segments = render(order, rules=MappingRules(), control_number="4321")
    assert segments[0] == ["ST", "850", "4321"]
    assert segments[-1] == ["SE", str(len(segments)), "4321"]
    assert ["BEG", "05", "KN", "PO-5010-9", "R2", "20240301"] in segments
    assert all(s[-1] != "" for s in segments)  # no trailing empty elements


def test_render_requires_po_date() -> None:
    with pytest.raises(RenderError, match="BEG05"):
        render_order(Order(po_number="X"), MappingRules(), "1")


@pytest.mark.parametrize("source", GOLDEN_INPUTS, ids=lambda p: p.name)
def test_golden_roundtrip_through_text(source: Path) -> None:
    (tset,) = read_sets(source)
    doc = to_canonical(tset, partner_id=None, rules=MappingRules())
    text = interchange_text([render(doc, rules=MappingRules(), control_number="0001")], functional_id="PO")
    (again,) = read_sets(text)
    assert to_canonical(again, partner_id=None, rules=MappingRules()).document == doc.document


# --------------------------------------------------------------------------- corpus


def _corpus_orders(path: Path) -> list[Order]:
    orders = []
    for tset in read_sets(path):
        doc = to_canonical(tset, partner_id=None, rules=MappingRules())
        assert isinstance(doc.document, Order)
        orders.append(doc.document)
    return orders


def test_corpus_850_translate_or_give_a_reason(corpus: Path) -> None:
    translated = 0
    for path in sorted((corpus / "x12" / "850").glob("*.edi")):
        try:
            sets = read_sets(path)
        except NotX12Error:  # nothing readable: the reader's tests cover that
            continue
        for tset in sets:
            if not validate_set(tset).accepted:
                continue  # rejected X12 never becomes a document; its mapping is moot
            try:
                doc = to_canonical(tset, partner_id=None, rules=MappingRules())
            except MappingError as exc:
                assert exc.reason  # a reason a person can act on
                continue
            translated += 1
            again = (
                interchange_text(
                    [render(doc, rules=MappingRules(), control_number="0001")], functional_id="PO"
                )
                if doc.document.po_date
                else None
            )  # type: ignore[union-attr]
            if again:
                (reread,) = read_sets(again)
                assert to_canonical(reread, partner_id=None, rules=MappingRules()).document == doc.document, (
                    path.name
                )
    assert translated >= 30  # valid corpus 850s (35 when this was written)


def test_corpus_sdq_allocations(corpus: Path) -> None:
    orders = _corpus_orders(
        corpus / "x12" / "850" / "bots_850_4010VICS_dept_store_SDQ_control_char_delims.edi"
    )
    assert len(orders) == 4
    first = orders[0]
    assert first.po_number == "15918851602"
    assert first.currency == "CAD"
    line = first.lines[0]
    assert line.product_ids.upc == "058824014093"
    assert line.product_ids.buyer_item == "01112061"
    assert [(a.location_id, a.quantity) for a in line.allocations] == [
        ("B1117", 1),
        ("B1120", 1),
        ("B1135", 1),
        ("B1164", 1),
        ("C1560", 2),
        ("D1634", 1),
    ]
    assert first.dates.delivery_not_before == date(2004, 8, 8)
    assert first.terms is not None and first.terms.discount_percent == Decimal("2.5")
    total_allocated = sum(a.quantity for o in orders for ln in o.lines for a in ln.allocations)
    total_ordered_with_sdq = sum(ln.quantity or 0 for o in orders for ln in o.lines if ln.allocations)
    assert total_allocated == total_ordered_with_sdq


def test_corpus_minimal_with_bom(corpus: Path) -> None:
    (order,) = _corpus_orders(corpus / "x12" / "850" / "edinet_850_4010_minimal_CSH_bom.edi")
    assert order.po_number == "1000012"
    assert order.order_type == "SA"
    assert order.carrier is not None and order.carrier.routing == "UPSG"
    (ship_to,) = order.parties
    assert ship_to.address_lines == ("126 Any St",)
    assert ship_to.postal_code == "11788-1234"
    (line,) = order.lines
    assert (line.quantity, line.unit_price, line.product_ids.vendor_item) == (1, Decimal("19.95"), "0054321")
