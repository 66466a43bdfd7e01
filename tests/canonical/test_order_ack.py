"""855 order acknowledgments: golden files, corpus files, line status, rendering."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from x12util import interchange_text, read_sets

from translators.canonical import CanonicalDocument, OrderAck, OrderAckLine
from translators.mapping import MappingError, MappingRules, render, to_canonical
from translators.mapping.order_ack import order_ack_from_x12, render_order_ack
from translators.mapping.rules import OrderAckRules, ProductIdRules
from translators.x12.errors import NotX12Error, RenderError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "canonical"
GOLDEN_INPUTS = sorted(FIXTURES.glob("855_*.edi"))


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
    assert CanonicalDocument.model_validate_json(golden.read_text(encoding="utf-8")) == doc


def _ack(name: str, rules: MappingRules | None = None) -> OrderAck:
    (tset,) = read_sets(FIXTURES / name)
    return order_ack_from_x12(tset, rules or MappingRules())


def test_split_line_keeps_every_ack() -> None:
    ack = _ack("855_4010_star_tilde_crlf.edi")
    assert (ack.po_number, ack.ack_type, ack.ack_date) == ("PO-4471", "AC", date(2024, 3, 13))
    first, second, third = ack.lines
    assert first.status == "IA"
    assert [(a.status, a.quantity, a.date) for a in first.acknowledgments] == [
        ("IA", 20, date(2024, 3, 20)),
        ("IB", 4, date(2024, 4, 10)),
    ]
    assert first.description == "BLUE WIDGET"
    assert second.status == "IR" and second.acknowledgments[0].quantity == Decimal("1.5")
    assert third.status is None and third.acknowledgments == ()


def test_control_character_delimiters_and_cancellation() -> None:
    ack = _ack("855_5010_control_char_delims.edi")
    assert ack.purpose == "cancellation"
    assert ack.ack_type == "RJ"
    assert ack.release_number == "R2"
    assert ack.references[0].value is None and ack.references[0].description == "CANCELLED BY BUYER"
    assert ack.lines[0].line_number == "item-1"
    assert ack.lines[0].status == "R2"


def test_status_alone_becomes_one_acknowledgment() -> None:
    line = OrderAckLine(status="IA")
    assert [a.status for a in line.acknowledgments] == ["IA"]
    assert OrderAckLine(acknowledgments=[{"status": "IB"}]).status == "IB"  # type: ignore[list-item]
    with pytest.raises(ValueError, match="first acknowledgment"):
        OrderAckLine(status="IA", acknowledgments=[{"status": "IB"}])  # type: ignore[list-item]


def test_render_writes_ack_date_qualifier_default_and_partner_ids() -> None:
    rules = MappingRules(
        order_ack=OrderAckRules(
            ack_date_qualifier="067", product_ids=ProductIdRules(outbound={"vendor_item": "VN"})
        )
    )
    doc = OrderAck.model_validate(
        {
            "po_number": "P1",
            "ack_type": "AD",
            "po_date": "2024-01-02",
            "lines": [
                {
                    "line_number": "1",
                    "quantity": "5",
                    "uom": "EA",
                    "product_ids": {"vendor_item": "V-1"},
                    "acknowledgments": [{"status": "IA", "quantity": "5", "uom": "EA", "date": "2024-01-09"}],
                }
            ],
        }
    )
    segments = render_order_ack(doc, rules, "77")
    assert ["BAK", "00", "AD", "P1", "20240102"] in segments
    assert ["PO1", "1", "5", "EA", "", "", "VN", "V-1"] in segments
    assert ["ACK", "IA", "5", "EA", "067", "20240109"] in segments
    assert segments[-1] == ["SE", str(len(segments)), "77"]


def test_render_requires_po_date() -> None:
    with pytest.raises(RenderError, match="BAK04"):
        render_order_ack(OrderAck(po_number="P", ack_type="AC"), MappingRules(), "1")


def test_empty_bak02_is_a_mapping_error() -> None:
    (tset,) = read_sets(FIXTURES / "855_5010_control_char_delims.edi")
    tset.segments = [["BAK", "00", " ", "P"] if s[0] == "BAK" else s for s in tset.segments]
    with pytest.raises(MappingError, match="BAK02") as caught:
        to_canonical(tset, partner_id=None, rules=MappingRules())
    assert caught.value.element == 2


@pytest.mark.parametrize("source", GOLDEN_INPUTS, ids=lambda p: p.name)
def test_golden_roundtrip_through_text(source: Path) -> None:
    (tset,) = read_sets(source)
    doc = to_canonical(tset, partner_id=None, rules=MappingRules())
    text = interchange_text([render(doc, rules=MappingRules(), control_number="0001")], functional_id="PR")
    (again,) = read_sets(text)
    assert to_canonical(again, partner_id=None, rules=MappingRules()).document == doc.document


# --------------------------------------------------------------------------- corpus


def test_corpus_855_translate(corpus: Path) -> None:
    translated = 0
    for path in sorted((corpus / "x12" / "855").glob("*.edi")):
        try:
            sets = read_sets(path)
        except NotX12Error:  # nothing readable: the reader's tests cover that
            continue
        for tset in sets:
            doc = to_canonical(tset, partner_id=None, rules=MappingRules())
            assert isinstance(doc.document, OrderAck)
            translated += 1
    assert translated >= 24


def test_corpus_rejected_lines(corpus: Path) -> None:
    sets = read_sets(corpus / "x12" / "855" / "oboe_855_4010_tilde_elem_LF_term_rejected_lines.edi")
    acks = [order_ack_from_x12(t, MappingRules()) for t in sets]
    assert len(acks) == 12
    first = acks[0]
    assert (first.po_number, first.ack_type, first.ack_date) == ("2171045", "NA", date(2001, 10, 11))
    assert [ln.status for ln in first.lines] == ["R2", "R2"]
    assert first.lines[0].product_ids.upc == "0004787512237"
    assert first.lines[0].product_ids.vendor_item == "ACT12237"
    assert first.lines[0].product_ids.other == {"PL": "1"}


def test_corpus_dropship_5010(corpus: Path) -> None:
    (tset,) = read_sets(corpus / "x12" / "855" / "stedi_855_5010_dropship_ACK.edi")
    doc = to_canonical(tset, partner_id="stedi", rules=MappingRules())
    assert doc.envelope is not None and doc.envelope.version == "005010"
    ack = doc.document
    assert isinstance(ack, OrderAck)
    assert [p.role for p in ack.parties] == ["se", "ship_to"]
    assert ack.parties[1].city == "Phoenix"
    assert [(ln.line_number, ln.status, ln.description) for ln in ack.lines] == [
        ("item-1", "IA", "400 pound anvil"),
        ("item-2", "IA", "Detonator"),
    ]
    assert ack.lines[0].product_ids.sku == "ACM/8900-400"
    assert ack.lines[0].unit_price == 400
