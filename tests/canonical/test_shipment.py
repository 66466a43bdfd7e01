"""856 ship notice ↔ canonical Shipment: goldens, the public corpus, the HL tree,
partner rules and rendering."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from x12util_b import golden, interchange_text, read_sets

from translators.canonical.shipment import Pack, Shipment, ShipmentItem, ShipmentOrder, Tare
from translators.mapping.errors import MappingError
from translators.mapping.rules import MappingRules, ShipmentRules
from translators.mapping.shipment import render_shipment, shipment_from_x12
from translators.x12.errors import RenderError
from translators.x12.model import Segment

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "canonical"
RULES = MappingRules()
CORPUS_856 = sorted((Path(__file__).resolve().parents[3] / "shared" / "corpus" / "x12" / "856").glob("*.edi"))


def one_shipment(source: str | Path, rules: MappingRules = RULES) -> Shipment:
    (tset,) = read_sets(source)
    return shipment_from_x12(tset, rules)


def envelope(body: str) -> str:
    """An 856 set around ``body`` (segments after BSN, one per line, no terminators)."""
    segments = [line.strip().split("*") for line in body.strip().splitlines()]
    st: Segment = ["ST", "856", "0001"]
    bsn: Segment = ["BSN", "00", "S1", "20240101", "1200", "0001"]
    full = [st, bsn, *segments]
    full.append(["SE", str(len(full) + 1), "0001"])
    return interchange_text([full], "SH")


def items_of(order: ShipmentOrder) -> list[ShipmentItem]:
    found = list(order.items)
    for tare in order.tares:
        found.extend(tare.items)
        for pack in tare.packs:
            found.extend(pack.items)
    for pack in order.packs:
        found.extend(pack.items)
    return found


# --------------------------------------------------------------------------- goldens


@pytest.mark.parametrize("name", ["856_sotpi_out_of_order", "856_si_blank_parents"])
def test_golden_canonical_and_rendering(name: str, regen_golden: bool) -> None:
    doc = one_shipment(FIXTURES / f"{name}.edi")
    golden(FIXTURES / f"{name}.json", doc.model_dump_json(indent=2) + "\n", regen_golden)
    rendered = interchange_text([render_shipment(doc, RULES, "0001")], "SH")
    golden(FIXTURES / f"{name}.rendered.edi", rendered, regen_golden)


def test_out_of_order_hl_builds_tree_from_parent_ids() -> None:
    doc = one_shipment(FIXTURES / "856_sotpi_out_of_order.edi")
    first, second = doc.orders
    assert first.po_number == "PO-88120"
    # HL 5 (item) comes before its pack HL 4, which comes before its tare HL 3.
    (tare,) = first.tares
    assert tare.sscc == "00012345600000000024"
    assert [p.sscc for p in tare.packs] == ["00012345600000000017"]
    assert tare.packs[0].items[0].product_ids.vendor_item == "KT-100"
    assert [i.line_number for i in tare.items] == ["2"]
    assert [p.sscc for p in first.packs] == ["00012345600000000031"]
    assert first.packs[0].items[0].quantity_shipped == Decimal("12.5")
    assert second.po_number == "PO-88121" and second.items[0].product_ids.sku == "SKU-9"


# --------------------------------------------------------------------------- public corpus


@pytest.mark.parametrize("path", CORPUS_856, ids=lambda p: p.name)
def test_every_corpus_856_maps(path: Path, corpus: Path) -> None:
    sets = read_sets(path)
    assert sets, "no transaction set read"
    for tset in sets:
        doc = shipment_from_x12(tset, RULES)
        assert doc.orders, "every corpus 856 ships at least one item"
        assert all(items_of(order) or order.tares for order in doc.orders)


def test_bots_sopi_22_digit_man_gm_kept_as_sent(corpus: Path) -> None:
    doc = one_shipment(corpus / "x12/856/bots_856_4010_SOPI_MAN_GM_22digit.edi")
    (order,) = doc.orders
    assert order.po_number == "ordernumber" and order.po_date == date(2004, 8, 8)
    assert [p.sscc for p in order.packs] == [
        "0000123456781234567892",
        "0000123456781234567891",
        "0000123456781234567890",
    ]
    assert [len(p.items) for p in order.packs] == [4, 2, 52]
    first = order.packs[0].items[0]
    assert first.line_number == "4"
    assert first.product_ids.upc == "058824077500" and first.product_ids.buyer_item == "01113481"
    assert first.quantity_shipped == Decimal("11") and first.uom == "EA"
    assert doc.hierarchy == "0001" and doc.estimated_delivery == date(2004, 8, 5)


def test_blank_hl_parents_still_give_one_order_with_all_items(corpus: Path) -> None:
    doc = one_shipment(corpus / "x12/856/oop_856_4010_SOI_blank_HL_parent.edi")
    (order,) = doc.orders
    assert order.po_number == "PO NUMBER"
    assert [i.line_number for i in order.items] == ["001", "002", "003", "004", "005", "006", "007"]
    assert order.items[0].product_ids.sku == "100014544"
    assert order.items[0].product_ids.vendor_item == "25555120"
    assert doc.carrier is not None
    assert doc.carrier.bill_of_lading == "10000-2378635" and doc.carrier.tracking_number == "620940"
    assert doc.carrier.routing == "CHR"  # the shipment TD5, not the order-level one
    assert [r.qualifier for r in doc.references] == ["IA"]


def test_vics_sopi_header_values(corpus: Path) -> None:
    doc = one_shipment(corpus / "x12/856/oop_856_4010VICS_SOPI_MAN_GM.edi")
    assert doc.packaging is not None
    assert (doc.packaging.code, doc.packaging.lading_quantity) == ("CTN25", 1)
    assert (doc.packaging.weight, doc.packaging.weight_uom) == (Decimal("1"), "LB")
    assert doc.carrier is not None and doc.carrier.scac == "FED2" and doc.carrier.mode == "M"
    assert doc.shipped_date == date(2012, 5, 10)
    assert doc.orders[0].packs[0].sscc == "00007121610006156802"


def test_shipment_item_levels_grouped_by_their_prf(corpus: Path) -> None:
    doc = one_shipment(corpus / "x12/856/oop_856_3060_SI_CLD_6digit_dates.edi")
    assert doc.shipment_id is None  # BSN02 is empty in this file
    assert doc.shipment_date == date(2003, 6, 19)
    assert [o.po_number for o in doc.orders] == ["B00000389", "B00003489"]
    assert [o.items[0].quantity_shipped for o in doc.orders] == [Decimal("1400"), Decimal("1500")]
    assert doc.packaging is not None and doc.packaging.code == "BIN52"  # leading blank stripped


def test_tare_item_pack_keeps_items_on_tares_and_ignores_sub_packs(corpus: Path) -> None:
    first, _second = read_sets(corpus / "x12/856/stupidedi_856_002001_bang_terminator_STIP.edi")
    doc = shipment_from_x12(first, RULES)
    (order,) = doc.orders
    assert order.po_number is None and not order.packs
    assert [[i.quantity_shipped for i in t.items] for t in order.tares] == [
        [Decimal("1000")],
        [Decimal("176")],
        [Decimal("100"), Decimal("156")],
    ]


def test_blank_hl_parents_in_our_own_fixture() -> None:
    doc = one_shipment(FIXTURES / "856_si_blank_parents.edi")
    assert [o.po_number for o in doc.orders] == ["PO-1", "PO-2"]
    assert [i.product_ids.buyer_item for i in doc.orders[0].items] == ["A-1", "A-3"]
    assert doc.orders[0].items[0].line_number == "10"  # SN101 when LIN01 is empty
    assert doc.shipment_date == date(2024, 3, 16)  # six-digit BSN03


# --------------------------------------------------------------------------- HL tree edge cases


def test_child_before_parent_and_dangling_parent() -> None:
    text = envelope(
        """
        HL*3*2*I
        LIN*1*UP*111
        SN1**1*EA
        HL*1**S
        HL*2*1*O
        PRF*PO-A
        HL*4*99*I
        LIN*2*UP*222
        """
    )
    (order,) = one_shipment(text).orders
    assert order.po_number == "PO-A"
    assert [i.product_ids.upc for i in order.items] == ["111", "222"]


def test_cyclic_parents_do_not_loop() -> None:
    text = envelope(
        """
        HL*1**S
        HL*2*3*O
        PRF*PO-A
        HL*3*2*P
        MAN*GM*123
        HL*4*3*I
        LIN*1*UP*111
        """
    )
    doc = one_shipment(text)
    items = [i for o in doc.orders for i in items_of(o)]
    assert [i.product_ids.upc for i in items] == ["111"]


def test_duplicate_and_empty_hl_ids_do_not_crash() -> None:
    text = envelope(
        """
        HL*1**S
        HL*2*1*O
        HL***I
        LIN*1*UP*1
        HL*2*1*O
        HL*3*2*X
        HL*4*3*I
        LIN*2*UP*2
        """
    )
    doc = one_shipment(text)
    assert sorted(i.product_ids.upc or "" for o in doc.orders for i in items_of(o)) == ["1", "2"]


# --------------------------------------------------------------------------- partner rules


def test_partner_qualifiers_for_bill_of_lading_and_dates() -> None:
    text = envelope(
        """
        HL*1**S
        REF*BL*B-1
        REF*BM*NOT-A-BOL
        DTM*067*20240105
        DTM*017*20240109
        """
    )
    rules = MappingRules(
        shipment=ShipmentRules(bill_of_lading_qualifier="BL", date_qualifiers={"estimated_delivery": "067"})
    )
    doc = one_shipment(text, rules)
    assert doc.carrier is not None and doc.carrier.bill_of_lading == "B-1"
    assert [r.qualifier for r in doc.references] == ["BM"]
    assert doc.estimated_delivery == date(2024, 1, 5)
    rendered = render_shipment(doc, rules, "0009")
    assert ["REF", "BL", "B-1"] in rendered and ["DTM", "067", "20240105"] in rendered


def test_required_reference_missing_rejects_with_reason() -> None:
    text = envelope("HL*1**S\nREF*IA*V1\nHL*2*1*O\nPRF*PO")
    rules = MappingRules(shipment=ShipmentRules(required_references=("DP",)))
    with pytest.raises(MappingError, match=r"REF\*DP"):
        one_shipment(text, rules)
    # the carrier's REF numbers count as present
    bol_rules = MappingRules(shipment=ShipmentRules(required_references=("BM",)))
    assert one_shipment(text.replace("REF*IA*V1", "REF*BM*B1"), bol_rules).carrier is not None


def test_location_lookup_and_unknown_code_policy() -> None:
    text = envelope("HL*1**S\nN1*ST**92*0042\nHL*2*1*I\nLIN*1*ZZ*9")
    mapped = one_shipment(text, MappingRules(shipment=ShipmentRules(locations={"0042": "STORE-42"})))
    assert mapped.parties[0].id == "STORE-42"
    with pytest.raises(MappingError, match="ZZ"):
        one_shipment(text, MappingRules(shipment=ShipmentRules(unknown_codes="reject")))


# --------------------------------------------------------------------------- rendering


def _item(upc: str) -> ShipmentItem:
    return ShipmentItem(line_number="1", product_ids={"upc": upc}, quantity_shipped=Decimal("2"), uom="EA")


def _levels(segments: list[Segment]) -> list[tuple[str, str, str]]:
    return [(s[1], s[2], s[3]) for s in segments if s[0] == "HL"]


def test_render_picks_structure_from_content() -> None:
    doc = Shipment(
        shipment_id="S1",
        shipment_date=date(2024, 1, 2),
        purpose="00",
        orders=(
            ShipmentOrder(po_number="A", items=(_item("1"),)),
            ShipmentOrder(po_number="B", packs=(Pack(sscc="00000000000000000017", items=(_item("2"),)),)),
            ShipmentOrder(
                po_number="C", tares=(Tare(sscc="T1", packs=(Pack(sscc="P1", items=(_item("3"),)),)),)
            ),
        ),
    )
    segments = render_shipment(doc, RULES, "0042")
    assert _levels(segments) == [
        ("1", "", "S"),
        ("2", "1", "O"),
        ("3", "2", "I"),
        ("4", "1", "O"),
        ("5", "4", "P"),
        ("6", "5", "I"),
        ("7", "1", "O"),
        ("8", "7", "T"),
        ("9", "8", "P"),
        ("10", "9", "I"),
    ]
    assert segments[0] == ["ST", "856", "0042"]
    assert segments[1] == ["BSN", "00", "S1", "20240102", "0000"]
    assert segments[-2] == ["CTT", "10"]
    assert segments[-1] == ["SE", str(len(segments)), "0042"]
    assert ["MAN", "GM", "00000000000000000017"] in segments
    assert ["LIN", "1", "UP", "1"] in segments and ["SN1", "", "2", "EA"] in segments


def test_render_requires_bsn_values() -> None:
    with pytest.raises(RenderError, match="BSN02"):
        render_shipment(Shipment(purpose="00", shipment_date=date(2024, 1, 1)), RULES, "1")


def test_render_without_scac_in_td5_when_partner_says_so() -> None:
    doc = Shipment(
        shipment_id="S1",
        shipment_date=date(2024, 1, 2),
        purpose="00",
        carrier={"scac": "ODFL", "mode": "M", "bill_of_lading": "B1"},
    )
    plain = render_shipment(doc, RULES, "1")
    assert ["TD5", "", "2", "ODFL", "M"] in plain and ["REF", "BM", "B1"] in plain
    rules = MappingRules(shipment=ShipmentRules(carrier_scac_in_td5=False))
    assert ["TD5", "", "", "", "M"] in render_shipment(doc, rules, "1")
