"""``trusted`` constructors build exactly what validation builds, refuse what typing
cannot vouch for, and are refused for models whose validation does more than check
types. Documents the engine builds with them survive their own validation unchanged."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.generate import generate
from translators.canonical import (
    CanonicalDocument,
    Order,
    OrderAck,
    OrderAckLine,
    OrderDates,
    OrderLine,
    ProductIds,
    Terms,
)
from translators.canonical.common import trusted, trusted_source
from translators.engine import TranslatedSet, translate
from translators.profile import PartnerProfile
from translators.x12.errors import NotX12Error

new_line = trusted(OrderLine)


class AnyPartner:
    def __init__(self) -> None:
        self.profile = PartnerProfile.model_validate(
            {
                "id": "p",
                "name": "P",
                "x12": {
                    "interchange_qualifier": "ZZ",
                    "interchange_id": "P",
                    "group_id": "P",
                    "version": "004010",
                },
            }
        )

    def get(self, partner_id: str) -> PartnerProfile | None:
        return self.profile

    def by_interchange(self, qualifier: str, interchange_id: str) -> PartnerProfile | None:
        return self.profile


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"line_number": "1"},
        {"line_number": "1", "quantity": Decimal("2.50"), "uom": "EA", "product_ids": ProductIds(upc="1")},
        {
            "line_number": "7",
            "quantity": Decimal("1E+3"),
            "uom": "CA",
            "unit_price": Decimal("-0.10"),
            "price_basis": "PE",
            "product_ids": ProductIds(upc="1", other={"ZZ": "9"}),
            "description": "MUG",
            "allocations": (),
            "dates": OrderDates(requested_ship=date(2024, 3, 5)),
        },
    ],
)
def test_same_instance_as_validation(values: dict[str, Any]) -> None:
    made, validated = new_line(**values), OrderLine(**values)
    assert made == validated
    assert made.model_fields_set == validated.model_fields_set
    assert made.model_dump_json() == validated.model_dump_json()
    assert list(made.__dict__) == list(OrderLine.model_fields)


def test_mutable_defaults_are_not_shared() -> None:
    new_ids = trusted(ProductIds)
    first, second = new_ids(upc="1"), new_ids(upc="2")
    assert first.other == {} and first.other is not second.other


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (OrderLine, {"quantity": Decimal("NaN")}),
        (OrderLine, {"unit_price": Decimal("Infinity")}),
        (Terms, {"net_days": True}),
        (OrderDates, {"requested_ship": datetime(2024, 3, 5, 12, 0)}),
        (OrderLine, {"unknown": "x"}),
    ],
)
def test_refuses_values_typing_lets_through(model: Any, values: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        trusted(model)(**values)


@pytest.mark.parametrize("model", [Order, OrderAck, OrderAckLine, CanonicalDocument])
def test_refused_for_models_that_validate_more_than_types(model: Any) -> None:
    with pytest.raises(TypeError, match="validates more than types"):
        trusted(model)


def test_model_validators_checked_by_the_caller() -> None:
    """The wrapper's model validators are the caller's to do (to_canonical checks the
    kind); what validation does to fields is still refused."""
    order = Order(po_number="4500001")
    new = trusted(CanonicalDocument, model_validators_checked=True)
    made = new(kind="order", partner_id="p1", envelope=None, document=order)
    validated = CanonicalDocument(kind="order", partner_id="p1", envelope=None, document=order)
    assert made == validated
    assert made.model_fields_set == validated.model_fields_set
    assert made.model_dump_json() == validated.model_dump_json()
    with pytest.raises(TypeError, match="validates more than types"):
        trusted(Order, model_validators_checked=True)  # purpose: a field validator


def test_generated_source_is_inspectable() -> None:
    source = trusted_source(OrderLine)
    assert source.startswith("def build(*, line_number=_UNSET")
    assert "quantity.is_finite()" in source


def _documents(data: bytes) -> list[CanonicalDocument]:
    found = []
    for item in translate(data, partners=AnyPartner()):
        if isinstance(item, TranslatedSet) and item.document is not None:
            found.append(item.document)
    return found


def _generated(kind: str) -> bytes:
    out = io.BytesIO()
    generate(kind, 40_000, out)
    return out.getvalue()


CORPUS_SETS = ["850", "855", "856", "810"]


@pytest.mark.parametrize("kind", ["850", "856"])
def test_generated_documents_equal_their_validated_copy(kind: str) -> None:
    documents = _documents(_generated(kind))
    assert documents
    for document in documents:
        again = CanonicalDocument.model_validate_json(document.model_dump_json())
        assert again == document
        assert again.model_dump_json() == document.model_dump_json()


@pytest.mark.parametrize("set_id", CORPUS_SETS)
def test_corpus_documents_equal_their_validated_copy(corpus: Path, set_id: str) -> None:
    files = sorted(p for p in (corpus / "x12" / set_id).glob("*") if p.is_file())
    if not files:
        pytest.skip("no corpus files")
    count = 0
    for path in files:
        try:
            documents = _documents(path.read_bytes())
        except NotX12Error:  # a malformed sample: the engine tests' business
            continue
        for document in documents:
            count += 1
            again = CanonicalDocument.model_validate(document.model_dump())
            assert again == document, path.name
            assert again.model_dump_json() == document.model_dump_json(), path.name
    assert count, "at least one corpus document translated"
