"""Shared canonical pieces and X12 helpers: decimals, dates, parties, product ids,
rules defaults, the registry's envelope and errors."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from x12util import read_sets

from translators.canonical import ProductIds, Terms
from translators.canonical.common import format_decimal_n, implied_decimal, parse_date
from translators.mapping import MappingError, MappingRules, envelope_of, to_canonical
from translators.mapping.common import (
    party_segments,
    product_id_pairs,
    read_allowance_charge,
    read_party_at,
    read_product_ids,
)
from translators.mapping.rules import DocumentRules, ProductIdRules
from translators.x12.codes import ElementSyntaxCode, SetSyntaxCode


@pytest.mark.parametrize(
    ("raw", "places", "expected"),
    [
        ("316300", 2, "3163.00"),
        ("10000", 2, "100.00"),
        ("-500", 2, "-5.00"),
        ("5", 2, "0.05"),
        ("12.5", 2, "12.5"),
    ],
)
def test_implied_decimal_keeps_trailing_zeros(raw: str, places: int, expected: str) -> None:
    value = implied_decimal(raw, places)
    assert value is not None and format(value, "f") == expected


def test_implied_decimal_rejects_garbage() -> None:
    assert implied_decimal("", 2) is None
    assert implied_decimal("12A", 2) is None
    assert implied_decimal("NaN", 2) is None


def test_format_decimal_n_inverts_implied() -> None:
    assert format_decimal_n(Decimal("3163.00"), 2) == "316300"
    assert format_decimal_n(Decimal("-5"), 2) == "-500"
    assert format_decimal_n(Decimal("0.005"), 2) == "1"  # rounded half up: N2 holds cents


def test_parse_date_forms() -> None:
    assert parse_date("20240229") == date(2024, 2, 29)
    assert parse_date("990101") == date(1999, 1, 1)
    assert parse_date("240101") == date(2024, 1, 1)
    assert parse_date("990101", century="20") == date(2099, 1, 1)
    assert parse_date("20230229") is None
    assert parse_date("2024-01-01") is None
    assert parse_date("") is None


def test_decimals_serialize_as_plain_strings() -> None:
    terms = Terms(discount_percent=Decimal("1E+2"))
    assert json.loads(terms.model_dump_json())["discount_percent"] == "100"
    assert Terms.model_validate_json('{"discount_percent": "2.50"}').discount_percent == Decimal("2.50")


def test_models_are_frozen_and_strict_about_keys() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        ProductIds.model_validate({"upc": "1", "color": "red"})
    ids = ProductIds(upc="1")
    with pytest.raises(ValueError, match="frozen"):
        ids.upc = "2"  # type: ignore[misc]


def test_product_ids_first_wins_and_rest_go_to_other() -> None:
    ids = read_product_ids([("VN", "A"), ("VP", "B"), ("ZZ", "C"), ("UP", "1")], DocumentRules())
    assert (ids.vendor_item, ids.upc, ids.other) == ("A", "1", {"VP": "B", "ZZ": "C"})
    assert product_id_pairs(ids, DocumentRules()) == [("UP", "1"), ("VP", "A"), ("VP", "B"), ("ZZ", "C")]


def test_product_id_rules_both_ways() -> None:
    rules = DocumentRules(
        product_ids=ProductIdRules(inbound={"CB": "buyer_item"}, outbound={"buyer_item": "BP"})
    )
    ids = read_product_ids([("CB", "X1")], rules)
    assert ids.buyer_item == "X1"
    assert product_id_pairs(ids, rules) == [("BP", "X1")]


def test_unknown_product_qualifier_rejected_with_code() -> None:
    with pytest.raises(MappingError) as caught:
        read_product_ids([("QQ", "1")], DocumentRules(unknown_codes="reject"))
    assert caught.value.element_code is ElementSyntaxCode.INVALID_CODE


def test_party_loop_reads_names_lines_and_refs_then_writes_back() -> None:
    segments = [
        ["N1", "ST", "STORE 9 ", "92", "0009"],
        ["N2", "BACK DOOR"],
        ["N3", "1 A ST", "UNIT 2"],
        ["N3", "BLDG 3"],
        ["N4", "TOWN", "ON", "K1A 0B1", "CA"],
        ["REF", "ZZ", "X"],
        ["PO1", "1"],
    ]
    rules = DocumentRules(locations={"0009": "S9"})
    party, refs, end = read_party_at(segments, 0, rules)
    assert end == 6
    assert party.name == "STORE 9 BACK DOOR"
    assert party.address_lines == ("1 A ST", "UNIT 2", "BLDG 3")
    assert (party.id, party.country) == ("S9", "CA")
    assert refs[0].qualifier == "ZZ"
    written = party_segments(party, rules)
    assert written[0] == ["N1", "ST", "STORE 9 BACK DOOR", "92", "0009"]
    assert written[1:] == [
        ["N3", "1 A ST", "UNIT 2"],
        ["N3", "BLDG 3"],
        ["N4", "TOWN", "ON", "K1A 0B1", "CA"],
    ]


def test_sac_amount_is_n2() -> None:
    item = read_allowance_charge(["SAC", "A", "C310", "", "", "10000", "3", "2.5"])
    assert (item.type, item.amount, item.percent) == ("allowance", Decimal("100.00"), Decimal("2.5"))
    with pytest.raises(MappingError, match="SAC01"):
        read_allowance_charge(["SAC", "X"])


def test_empty_rules_are_valid_and_reject_unknown_keys() -> None:
    assert MappingRules.model_validate({}) == MappingRules()
    assert MappingRules.model_validate(
        {"order": {"required_references": ["DP"]}}
    ).order.required_references == ("DP",)
    with pytest.raises(ValueError, match="Extra inputs"):
        MappingRules.model_validate({"order": {"requierd_references": ["DP"]}})


ORDER = (
    "ISA*00*          *00*          *ZZ*SENDER         *12*RECEIVER       *240101*1200*U*00401*000000007*0*T*>~"
    "GS*PO*SENDER*RECEIVER*20240101*1200*55*X*004010VICS~ST*850*0001~BEG*00*SA*P1**20240101~SE*3*0001~"
    "GE*1*55~IEA*1*000000007~"
)


def test_envelope_from_isa_gs_st() -> None:
    (tset,) = read_sets(ORDER)
    envelope = envelope_of(tset)
    assert (envelope.sender_id, envelope.receiver_qualifier, envelope.version) == (
        "SENDER",
        "12",
        "004010VICS",
    )
    assert (envelope.interchange_control, envelope.group_control, envelope.set_control) == (
        "000000007",
        "55",
        "0001",
    )
    assert envelope.test is True


def test_unsupported_set_is_a_mapping_error() -> None:
    (tset,) = read_sets(ORDER.replace("ST*850", "ST*860"))
    with pytest.raises(MappingError, match="860") as caught:
        to_canonical(tset, partner_id=None, rules=MappingRules())
    assert caught.value.set_code is SetSyntaxCode.NOT_SUPPORTED
