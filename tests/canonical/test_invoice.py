"""810 invoice ↔ canonical Invoice: golden, the public corpus (N2 totals, negative
amounts, SAC placement), partner rules and rendering."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from x12util_b import golden, interchange_text, read_sets

from translators.canonical.common import AllowanceCharge
from translators.canonical.invoice import Invoice, InvoiceLine
from translators.mapping.errors import MappingError
from translators.mapping.invoice import invoice_from_x12, render_invoice
from translators.mapping.rules import InvoiceRules, MappingRules
from translators.x12.errors import RenderError
from translators.x12.model import Segment

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "canonical"
RULES = MappingRules()
CORPUS_810 = sorted((Path(__file__).resolve().parents[3] / "shared" / "corpus" / "x12" / "810").glob("*.edi"))


def one_invoice(source: str | Path, rules: MappingRules = RULES) -> Invoice:
    (tset,) = read_sets(source)
    return invoice_from_x12(tset, rules)


def envelope(body: str) -> str:
    """An 810 set around ``body`` (segments after ST, one per line, no terminators)."""
    segments = [line.strip().split("*") for line in body.strip().splitlines()]
    full: list[Segment] = [["ST", "810", "0001"], *segments]
    full.append(["SE", str(len(full) + 1), "0001"])
    return interchange_text([full], "IN")


# --------------------------------------------------------------------------- golden


def test_golden_canonical_and_rendering(regen_golden: bool) -> None:
    doc = one_invoice(FIXTURES / "810_credit_sac.edi")
    golden(FIXTURES / "810_credit_sac.json", doc.model_dump_json(indent=2) + "\n", regen_golden)
    rendered = interchange_text([render_invoice(doc, RULES, "0001")], "IN")
    golden(FIXTURES / "810_credit_sac.rendered.edi", rendered, regen_golden)


def test_credit_invoice_fixture_values() -> None:
    doc = one_invoice(FIXTURES / "810_credit_sac.edi")
    assert doc.total_amount == Decimal("-123.45")
    assert json.loads(doc.model_dump_json())["total_amount"] == "-123.45"
    assert doc.currency == "CAD" and doc.ship_date == date(2024, 3, 15)
    assert doc.terms is not None and (doc.terms.discount_percent, doc.terms.net_days) == (Decimal("2"), 30)
    first, returned, fee = doc.lines
    assert first.allowances_charges == (
        AllowanceCharge(type="allowance", code="C310", amount=Decimal("30.00"), percent=Decimal("10")),
    )
    assert returned.line_number is None and returned.quantity == Decimal("-2")
    assert returned.description == "KETTLE RETURN"  # PID*F wins over an earlier PID*X
    assert (
        fee.uom == "EA" and fee.unit_price == Decimal("-4.75") and fee.product_ids.other == {"ZZ": "FEE-ADJ"}
    )
    assert fee.allowances_charges == ()  # SAC*N is neither an allowance nor a charge
    assert [(a.type, a.code, a.amount, a.description) for a in doc.allowances_charges] == [
        ("charge", "D240", Decimal("15.00"), "FREIGHT"),
        ("allowance", "F800", Decimal("0.00"), None),
    ]


# --------------------------------------------------------------------------- public corpus


@pytest.mark.parametrize("path", CORPUS_810, ids=lambda p: p.name)
def test_every_corpus_810_maps(path: Path, corpus: Path) -> None:
    sets = read_sets(path)
    assert sets, "no transaction set read"
    for tset in sets:
        doc = invoice_from_x12(tset, RULES)
        assert doc.invoice_number and doc.invoice_date and doc.lines
        assert doc.total_amount is not None


def test_mattress_n2_total_keeps_implied_places(corpus: Path) -> None:
    doc = one_invoice(corpus / "x12/810/oop_810_4010_mattress_SAC_TDS_CAD.edi")
    out = json.loads(doc.model_dump_json())
    assert out["total_amount"] == "56358.00"  # TDS*5635800
    assert sum(
        line.quantity * line.unit_price for line in doc.lines if line.quantity and line.unit_price
    ) == (doc.total_amount)
    assert out["lines"][6]["allowances_charges"] == [
        {"type": "charge", "code": "D240", "amount": "0.00", "percent": None, "description": None}
    ]
    assert (doc.po_number, doc.po_date, doc.invoice_date) == ("981903", date(2011, 9, 14), date(2011, 10, 31))
    assert doc.lines[0].product_ids.sku == "10190150"
    assert doc.parties[0].role == "ship_to" and doc.parties[0].id == "334"


def test_caiso_negative_amounts(corpus: Path) -> None:
    doc = one_invoice(corpus / "x12/810/oop_810_4010_caiso_negative_amounts.edi")
    assert len(doc.lines) == 16
    assert doc.lines[4].unit_price == Decimal("-497.1")
    assert doc.lines[10].unit_price == Decimal("-457863.84")
    assert doc.lines[4].description == "Hour-Ahead Non-Spinning Reserve due ISO"  # PID*X
    assert doc.total_amount == Decimal("213516.63")
    assert sum(line.unit_price or 0 for line in doc.lines) == doc.total_amount
    assert json.loads(doc.model_dump_json())["lines"][4]["unit_price"] == "-497.1"


def test_walmart_style_blank_line_number_and_trailing_blanks(corpus: Path) -> None:
    doc = one_invoice(corpus / "x12/810/oop_810_4010_walmart_SAC_ISS_CAD.edi")
    (line,) = doc.lines
    assert line.line_number is None
    assert line.product_ids.gtin == "00221089552284"  # sent with a trailing blank
    assert line.product_ids.buyer_item == "001719653" and line.product_ids.upc == "022108955228"
    assert line.allowances_charges[0].amount == Decimal("23.50")
    assert doc.parties[1].postal_code == "72712"
    assert doc.total_amount == Decimal("3875.30")
    assert doc.terms is not None and doc.terms.net_days == 45


def test_ariba_line_and_summary_sacs(corpus: Path) -> None:
    doc = one_invoice(corpus / "x12/810/edinet_810a_4010_ariba_ITD_SAC.edi")
    assert doc.currency == "USD"
    assert [len(line.allowances_charges) for line in doc.lines] == [1, 1]  # SAC*N skipped
    assert [(a.code, a.amount) for a in doc.allowances_charges] == [
        ("G830", Decimal("6.00")),
        ("H850", Decimal("0.00")),
    ]
    assert doc.terms is not None and doc.terms.discount_percent == Decimal("10")  # first ITD tier
    assert doc.total_amount == Decimal("365.96")


def test_multi_invoice_percent_and_pipe_separated_books(corpus: Path) -> None:
    first, second = read_sets(corpus / "x12/810/oop_810_4030_multi_invoice_canada_CTP_SAC_ISS.edi")
    one, two = invoice_from_x12(first, RULES), invoice_from_x12(second, RULES)
    assert (one.invoice_number, two.invoice_number) == ("465266", "465267")
    assert one.lines[0].allowances_charges[0].percent == Decimal("7")
    assert two.total_amount == Decimal("1129.92")
    books = one_invoice(corpus / "x12/810/stupidedi_810_4010_pipe_element_sep_books.edi")
    assert books.lines[0].uom is None and books.lines[0].product_ids.ean == "9781501331978"


# --------------------------------------------------------------------------- partner rules


def test_rules_reference_translation_and_required_reference() -> None:
    text = envelope("BIG*20240101*I1\nREF*ZA*VEND\nIT1*1*1*EA*1\nTDS*100")
    rules = MappingRules(invoice=InvoiceRules(reference_qualifiers={"ZA": "IA"}, required_references=("IA",)))
    doc = one_invoice(text, rules)
    assert [(r.qualifier, r.value) for r in doc.references] == [("IA", "VEND")]
    assert ["REF", "ZA", "VEND"] in render_invoice(doc, rules, "1")
    with pytest.raises(MappingError, match=r"REF\*DP"):
        one_invoice(text, MappingRules(invoice=InvoiceRules(required_references=("DP",))))


def test_bad_sac_indicator_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="SAC01"):
        one_invoice(envelope("BIG*20240101*I1\nIT1*1*1*EA*1\nTDS*100\nSAC*X*D240***100"))


def test_partner_ship_date_qualifier() -> None:
    text = envelope("BIG*20240101*I1\nDTM*011*20240102\nDTM*086*20240103\nTDS*100")
    rules = MappingRules(invoice=InvoiceRules(date_qualifiers={"ship_date": "086"}))
    assert one_invoice(text, rules).ship_date == date(2024, 1, 3)
    assert one_invoice(text).ship_date == date(2024, 1, 2)


# --------------------------------------------------------------------------- rendering


def test_render_invoice_segments() -> None:
    doc = Invoice(
        invoice_number="I-9",
        invoice_date=date(2024, 2, 29),
        po_number="PO-1",
        currency="USD",
        lines=(
            InvoiceLine(
                line_number="1",
                quantity=Decimal("3"),
                uom="EA",
                unit_price=Decimal("-1.50"),
                product_ids={"buyer_item": "B1"},
                description="THING",
                allowances_charges=(AllowanceCharge(type="charge", code="D240", amount=Decimal("2.5")),),
            ),
        ),
        allowances_charges=(AllowanceCharge(type="allowance", code="C310", percent=Decimal("2.5")),),
        total_amount=Decimal("-4.50"),
    )
    segments = render_invoice(doc, RULES, "0077")
    assert segments == [
        ["ST", "810", "0077"],
        ["BIG", "20240229", "I-9", "", "PO-1"],
        ["CUR", "SE", "USD"],
        ["IT1", "1", "3", "EA", "-1.50", "", "IN", "B1"],
        ["PID", "F", "", "", "", "THING"],
        ["SAC", "C", "D240", "", "", "250"],
        ["TDS", "-450"],
        ["SAC", "A", "C310", "", "", "", "3", "2.5"],
        ["CTT", "1"],
        ["SE", "10", "0077"],
    ]


def test_render_requires_mandatory_values() -> None:
    with pytest.raises(RenderError, match="TDS01"):
        render_invoice(Invoice(invoice_number="1", invoice_date=date(2024, 1, 1)), RULES, "1")
