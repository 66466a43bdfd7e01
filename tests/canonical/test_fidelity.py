"""Nothing dropped silently (issue 10, section 4): what public files carried and the
mappers used to drop is mapped, everything else is listed in ``unmapped``, and the
new fields survive rendering and reading back.

Goldens: fixtures/fidelity/NAME.edi → NAME.json (one canonical document per set, as
the engine makes it for an unknown sender read with default rules).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from x12util import interchange_text, read_sets

from translators.canonical import CanonicalDocument, Invoice, Note, Order, OrderAck, Shipment
from translators.engine import TranslatedSet, translate
from translators.mapping import MappingRules, render, to_canonical
from translators.mapping.coverage import place_segments
from translators.x12.validation import set_grammar

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fidelity"
INPUTS = sorted(FIXTURES.glob("*.edi"))
FUNCTIONAL_ID = {"850": "PO", "855": "PR", "856": "SH", "810": "IN"}


class NoPartners:
    def get(self, partner_id: str) -> None:
        return None

    def by_interchange(self, qualifier: str, interchange_id: str) -> None:
        return None


def documents(path: Path) -> list[CanonicalDocument]:
    found = []
    for item in translate(path.read_bytes(), partners=NoPartners(), unknown_sender_rules=MappingRules()):
        if isinstance(item, TranslatedSet):
            assert item.document is not None, item.reason
            found.append(item.document)
    return found


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_golden(path: Path, regen_golden: bool) -> None:
    produced = "".join(
        json.dumps(d.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n" for d in documents(path)
    )
    golden = path.with_suffix(".json")
    if regen_golden:
        golden.write_text(produced, encoding="utf-8")
    assert produced == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_new_fields_survive_render_and_read(path: Path) -> None:
    for doc in documents(path):
        assert doc.envelope is not None
        version = doc.envelope.version
        segments = render(doc, rules=MappingRules(), control_number="0001", version=version)
        text = interchange_text(
            [segments], functional_id=FUNCTIONAL_ID[doc.envelope.transaction_set], version=version
        )
        (again,) = read_sets(text)
        assert to_canonical(again, partner_id=None, rules=MappingRules()).document == doc.document


def test_order_details() -> None:
    (doc,) = documents(FIXTURES / "850_4010_dropped_before.edi")
    order = doc.document
    assert isinstance(order, Order)
    assert order.contract_number == "CN-2026-17"
    assert [(a.type, a.code, a.amount) for a in order.allowances_charges] == [
        ("allowance", "C310", Decimal("25.00")),
        ("charge", "D240", Decimal("15.00")),
    ]
    assert order.dates.required_by == date(2026, 12, 20)
    assert order.notes[0].text == "DELIVER TO DOCK 4\nCALL BEFORE DELIVERY"
    assert order.totals is not None and order.totals.hash_total == Decimal("17")
    assert [a.amount for a in order.totals.amounts] == [Decimal("1234.50")] * 2
    first = order.lines[0]
    # colour and size are not run into the description any more
    assert (first.description, first.color, first.size) == ("COTTON T-SHIRT", "NAVY BLUE", "LARGE")
    assert first.pack is not None and (first.pack.pack, first.pack.packaging_code) == (6, "CTN25")
    assert first.allowances_charges[0].amount == Decimal("1.20")
    assert first.notes[0].reference == "LINE NOTE"
    # what is still not mapped is listed, with its place
    assert [(u.segment, u.position, u.loop) for u in doc.unmapped] == [
        ("PER", 5, None),
        ("FOB", 6, None),
        ("PKG", 28, "PO1"),
    ]


def test_order_ack_line_product_ids() -> None:
    (doc,) = documents(FIXTURES / "855_4010_dropped_before.edi")
    ack = doc.document
    assert isinstance(ack, OrderAck)
    line = ack.lines[0]
    assert line.color == "NAVY" and line.description is None
    assert line.acknowledgments[0].product_ids.vendor_item == "AB-100"
    assert line.acknowledgments[1].product_ids.upc == "012345678929"  # the rejected substitute


def test_shipment_marks_and_purpose_word() -> None:
    (doc,) = documents(FIXTURES / "856_5010_dropped_before.edi")
    shipment = doc.document
    assert isinstance(shipment, Shipment)
    assert shipment.purpose == "replace"  # BSN01 05, the order's word
    packs = shipment.orders[0].packs
    assert [(p.sscc, [(m.qualifier, m.number) for m in p.marks]) for p in packs] == [
        ("00000123450000000017", [("CP", "1Z999AA10123456784")]),
        ("00000123450000000024", [("SM", "SHIPPER-REF-2")]),
    ]
    assert [(u.segment, u.loop) for u in doc.unmapped] == [("PKG", "HL")]


def test_invoice_sdq_notes_and_purpose() -> None:
    (doc,) = documents(FIXTURES / "810_4010_dropped_before.edi")
    invoice = doc.document
    assert isinstance(invoice, Invoice)
    assert invoice.purpose == "original"
    assert invoice.notes[0].qualifier == "GEN"
    line = invoice.lines[0]
    assert [(a.location_id, a.quantity) for a in line.allocations] == [("0042", 6), ("0043", 6)]
    assert line.color == "NAVY BLUE" and line.description == "COTTON T-SHIRT"
    assert doc.unmapped == ()


def test_purpose_codes_and_words_both_accepted() -> None:
    assert Shipment(purpose="05").purpose == "replace"
    assert Shipment(purpose="replace").purpose == "replace"
    assert Shipment(purpose="14").purpose == "14"  # a code without a word stays a code
    assert Invoice(purpose="01").purpose == "cancellation"


def test_coverage_places_every_segment() -> None:
    (tset,) = read_sets(FIXTURES / "850_4010_dropped_before.edi")
    found = set_grammar(tset)
    assert found is not None
    placed = list(place_segments(tset.segments, "order", found[0]))
    assert len(placed) == len(tset.segments)
    assert [p.position for p in placed] == list(range(1, len(tset.segments) + 1))
    by_position = {p.position: p for p in placed}
    assert by_position[1].segment == "ST" and by_position[1].mapped
    pkg = next(p for p in placed if p.segment == "PKG")
    assert not pkg.mapped and pkg.loop == "PO1"
    # the second SAC of the heading is mapped as well, a PO1 loop's SAC sits in "PO1"
    sacs = [p for p in placed if p.segment == "SAC"]
    assert [(p.loop, p.mapped) for p in sacs] == [(None, True), (None, True), ("PO1", True)]


@pytest.mark.parametrize("version", ["004010", "005010"])
def test_notes_are_written_as_each_release_carries_them(version: str) -> None:
    (doc,) = documents(FIXTURES / "850_4010_dropped_before.edi")
    order = doc.document
    assert isinstance(order, Order)
    # a line's loose MSG comes before its N9 loops in the PO1 loop
    line = order.lines[0].model_copy(update={"notes": (Note(text="LOOSE LINE NOTE"), *order.lines[0].notes)})
    order = order.model_copy(update={"lines": (line, *order.lines[1:])})
    segments = render(order, rules=MappingRules(), control_number="0001", version=version)
    tags = {s[0] for s in segments}
    # 005010 850s have MTX where 004010 has MSG
    assert ("MTX" in tags, "MSG" in tags) == ((True, False) if version == "005010" else (False, True))
    (again,) = read_sets(interchange_text([segments], functional_id="PO", version=version))
    read = to_canonical(again, partner_id=None, rules=MappingRules()).document
    assert isinstance(read, Order)
    assert read.notes == order.notes and read.lines[0].notes == line.notes
