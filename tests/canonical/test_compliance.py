"""Profile rules on canonical documents, both ways, and the sum an invoice we send
must add up to (translators.mapping.compliance)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from x12util import read_sets

from translators.canonical import Invoice, Shipment
from translators.mapping import MappingError, MappingRules, to_canonical
from translators.mapping.compliance import breaches_for, invoice_total_breach, invoice_totals, valid_sscc
from translators.mapping.rules import InvoiceRules, OrderRules, ShipmentRules

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def credit_invoice() -> Invoice:
    return Invoice.model_validate(json.loads((FIXTURES / "canonical" / "810_credit_sac.json").read_text()))


def test_invoice_total_is_lines_minus_allowances_plus_charges() -> None:
    doc = credit_invoice()
    # 24 x 12.50 - 2 x 12.5 + 1 x -4.75 = 270.25; line allowance 30.00; charge 15.00
    assert invoice_totals(doc) == {
        "lines": Decimal("270.25"),
        "allowances": Decimal("30.00"),
        "charges": Decimal("15.00"),
        "expected": Decimal("255.25"),
    }
    breach = invoice_total_breach(doc, InvoiceRules())
    assert breach is not None and breach.loc == "document.total_amount"
    assert breach.details == {
        "expected_total": "255.25",
        "given_total": "-123.45",
        "lines_total": "270.25",
        "allowances": "30.00",
        "charges": "15.00",
    }
    assert (
        invoice_total_breach(doc.model_copy(update={"total_amount": Decimal("255.25")}), InvoiceRules())
        is None
    )
    assert invoice_total_breach(doc, InvoiceRules(total_check="allow")) is None


def test_a_percent_allowance_counts_its_share_of_the_lines() -> None:
    doc = Invoice.model_validate(
        {
            "lines": [{"quantity": "10", "unit_price": "3.00"}, {"quantity": "1", "unit_price": "10.00"}],
            "allowances_charges": [{"type": "allowance", "percent": "10"}],
            "total_amount": "36.00",
        }
    )
    assert invoice_totals(doc) is not None and invoice_totals(doc)["expected"] == Decimal("36.00")  # type: ignore[index]
    assert invoice_total_breach(doc, InvoiceRules()) is None
    wrong = doc.model_copy(update={"total_amount": Decimal("40.00")})
    assert invoice_total_breach(wrong, InvoiceRules()) is not None


def test_a_line_without_price_cannot_be_summed_and_is_not_refused() -> None:
    doc = Invoice.model_validate({"lines": [{"quantity": "10"}], "total_amount": "5.00"})
    assert invoice_totals(doc) is None and invoice_total_breach(doc, InvoiceRules()) is None


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("106141412345678908", True),  # GS1's own example
        ("001234560000000018", True),  # GS1 mod 10 check digit 8
        ("00001234560000000018", True),  # with the (00) application identifier
        ("001234560000000017", False),
        ("00123456000000001", False),  # 17 digits
        ("00123456000000001X", False),
        (None, False),
    ],
)
def test_sscc_check_digit(value: str | None, valid: bool) -> None:
    assert valid_sscc(value) is valid


def test_shipment_rules_name_every_breach() -> None:
    doc = Shipment.model_validate(
        {
            "shipment_id": "S1",
            "parties": [{"role": "ship_to"}],
            "orders": [
                {"packs": [{"sscc": "001234560000000018"}, {"sscc": None}]},
                {"tares": [{"sscc": "001234560000000017", "packs": [{"sscc": "001234560000000018"}]}]},
            ],
        }
    )
    rules = ShipmentRules(
        required_references=("BM",), required_parties=("ship_to", "ship_from"), require_sscc=True
    )
    assert [(b.loc, b.segment) for b in breaches_for(doc, rules)] == [
        ("document.carrier", "REF"),
        ("document.parties", "N1"),
        ("document.orders.0.packs.1.sscc", "MAN"),
        ("document.orders.1.tares.0.sscc", "MAN"),
    ]
    # the bill of lading travels in the carrier: it satisfies REF*BM
    carried = Shipment.model_validate({**doc.model_dump(), "carrier": {"bill_of_lading": "BOL-1"}})
    assert "document.carrier" not in [b.loc for b in breaches_for(carried, rules)]


def test_inbound_sets_are_held_to_the_same_rules() -> None:
    (tset,) = read_sets(FIXTURES / "fidelity" / "850_4010_dropped_before.edi")
    rules = MappingRules(order=OrderRules(required_parties=("ship_to",)))
    assert to_canonical(tset, partner_id="p", rules=rules).document.parties[0].role == "ship_to"
    rules = MappingRules(order=OrderRules(required_parties=("bill_to",)))
    with pytest.raises(MappingError) as raised:
        to_canonical(tset, partner_id="p", rules=rules)
    assert raised.value.segment == "N1" and raised.value.segment_code is not None
    assert raised.value.segment_code.value == "3"  # AK304 3: mandatory segment missing
    assert "bill_to" in raised.value.reason


def test_an_inbound_ship_notice_is_held_to_require_sscc() -> None:
    (tset,) = read_sets(FIXTURES / "fidelity" / "856_5010_dropped_before.edi")
    assert to_canonical(tset, partner_id="p", rules=MappingRules()).document.orders[0].packs[0].sscc
    # its sample SSCCs carry no valid GS1 check digit
    with pytest.raises(MappingError) as raised:
        to_canonical(tset, partner_id="p", rules=MappingRules(shipment=ShipmentRules(require_sscc=True)))
    assert raised.value.segment == "MAN" and raised.value.segment_code is not None
    assert raised.value.segment_code.value == "8"  # AK304 8: segment has data element errors
