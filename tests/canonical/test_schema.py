"""The published JSON Schema (docs/schema/canonical.schema.json) is current, and the
documents we emit validate against it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from translators.canonical import CanonicalDocument, json_schema
from translators.canonical.__main__ import schema_text

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "schema" / "canonical.schema.json"
GOLDEN_JSON = sorted((ROOT / "fixtures" / "canonical").glob("*.json"))


def test_published_schema_is_current(regen_golden: bool) -> None:
    if regen_golden:
        PUBLISHED.write_text(schema_text(), encoding="utf-8")
    assert PUBLISHED.read_text(encoding="utf-8") == schema_text(), (
        "run: python -m translators.canonical > docs/schema/canonical.schema.json"
    )


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


MODEL_BY_SET = {"850": "Order", "855": "OrderAck", "856": "Shipment", "810": "Invoice"}


@pytest.mark.parametrize("path", GOLDEN_JSON, ids=lambda p: p.name)
def test_golden_documents_validate(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    schema = json_schema()
    if "kind" not in data:  # a bare document golden: check it against its model's part
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{MODEL_BY_SET[path.name[:3]]}"}
    jsonschema.Draft202012Validator(schema).validate(data)


def test_kind_selects_document_schema() -> None:
    order = json.loads(
        (ROOT / "fixtures" / "canonical" / "850_4010_star_tilde_lf.json").read_text(encoding="utf-8")
    )
    validator = jsonschema.Draft202012Validator(json_schema())
    order["kind"] = "order_ack"  # an order body under the wrong kind
    assert not validator.is_valid(order)
    with pytest.raises(ValueError, match="not a valid order_ack"):
        CanonicalDocument.model_validate(order)


def test_decimals_are_strings_and_every_field_required() -> None:
    schema = json_schema()
    line = schema["$defs"]["OrderLine"]
    assert set(line["required"]) == set(line["properties"])
    quantity = line["properties"]["quantity"]["anyOf"]
    assert {"type": "null"} in quantity
    assert any(option.get("type") == "string" for option in quantity)
