"""The fast encoder writes exactly what pydantic's ``model_dump_json`` writes: for
every golden and public sample document, for awkward strings and decimals, and for
models it does not know how to write (it hands those to pydantic)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel, field_serializer
from pydantic_core import PydanticSerializationError

from gateway.partners import PartnerDirectory, load_partners
from translators.canonical import CanonicalDocument
from translators.canonical.common import CanonicalModel, Money
from translators.canonical.encoding import encode_document, plain_model
from translators.engine import TranslatedSet, translate
from translators.mapping.rules import MappingRules
from translators.profile import OurIdentity

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_INPUTS = sorted((ROOT / "fixtures").glob("*/*.edi"))
US = OurIdentity(interchange_qualifier="ZZ", interchange_id="OURCOMPANY", group_id="OURCOMPANY")


def documents(path: Path, partners: object) -> list[CanonicalDocument]:
    found = []
    try:
        for item in translate(path.read_bytes(), partners=partners, unknown_sender_rules=MappingRules()):  # type: ignore[arg-type]
            if isinstance(item, TranslatedSet) and item.document is not None:
                found.append(item.document)
    except Exception:  # an input that is not X12 at all says nothing about encoding
        return []
    return found


def test_every_golden_document_encodes_as_pydantic_does() -> None:
    partners = load_partners(ROOT / "examples" / "partners", identity=US)
    count = 0
    for path in GOLDEN_INPUTS:
        for document in documents(path, partners):
            assert encode_document(document) == document.model_dump_json().encode(), path.name
            count += 1
    assert count > 20  # the goldens hold documents of every kind


def test_every_public_sample_document_encodes_as_pydantic_does(corpus: Path) -> None:
    count = 0
    for path in sorted((corpus / "x12").rglob("*.edi")):
        for document in documents(path, PartnerDirectory()):
            assert encode_document(document) == document.model_dump_json().encode(), path.name
            count += 1
    assert count > 50


AWKWARD = [
    'quote " backslash \\ slash /',
    "controls \x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f",
    "Latin-1 CAFÉ ÀÉÎÕÜ ß ÿ",
    "line separators \u2028\u2029, a BOM \ufeff, an emoji \U0001f600",
    "",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_strings_and_decimals(text: str) -> None:
    data = {
        "kind": "order",
        "partner_id": text,
        "document": {
            "po_number": text,
            "parties": [{"role": "ship_to", "name": text, "address_lines": [text, text]}],
            "lines": [
                {"line_number": "1", "quantity": q, "unit_price": p, "product_ids": {"other": {"ZZ": text}}}
                for q, p in [("1E+3", "0.0000001"), ("-0", "0.000"), ("12.50", "-3163.00"), ("7", "1E-12")]
            ],
        },
    }
    document = CanonicalDocument.model_validate(data)
    assert encode_document(document) == document.model_dump_json().encode()


def test_a_lone_surrogate_is_left_to_pydantic() -> None:
    document = CanonicalDocument.model_validate({"kind": "order", "document": {"po_number": "PO-1"}})
    broken = document.model_copy(update={"partner_id": "\ud800"})  # what a careless hook might make
    with pytest.raises(PydanticSerializationError) as theirs:
        broken.model_dump_json()
    with pytest.raises(PydanticSerializationError) as ours:
        encode_document(broken)
    assert str(ours.value) == str(theirs.value)


class WithFloat(CanonicalModel):
    weight: float
    amount: Money


class WithSerializer(CanonicalModel):
    code: str

    @field_serializer("code")
    def _upper(self, value: str) -> str:
        return value.upper()


class Outer(BaseModel):
    inner: WithFloat
    other: WithSerializer
    amount: Money
    plain: Decimal | None = None


def test_models_it_cannot_promise_are_written_by_pydantic() -> None:
    assert not plain_model(WithFloat)
    assert not plain_model(WithSerializer)
    assert not plain_model(Outer)  # a plain Decimal field is not Money
    value = Outer(
        inner=WithFloat(weight=1e16, amount=Decimal("1E+2")),
        other=WithSerializer(code="abc"),
        amount=Decimal("0.0000001"),
        plain=Decimal("1E+3"),
    )
    assert encode_document(value) == value.model_dump_json().encode()
    assert b'"ABC"' in encode_document(value)


def test_canonical_models_take_the_fast_way() -> None:
    from translators.canonical import MODEL_BY_KIND

    assert plain_model(CanonicalDocument)
    for model in MODEL_BY_KIND.values():
        assert plain_model(model), model.__name__
