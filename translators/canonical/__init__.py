"""Canonical documents: the JSON contract between the gateway and the ERP.

Every translated transaction set becomes one :class:`CanonicalDocument`
(``kind``, ``partner_id``, ``envelope``, ``document``). The models are frozen pydantic
models that reject unknown keys; decimals are exact and travel as JSON strings, dates
as "YYYY-MM-DD", and every contract field is always present (null or [] when absent).
``docs/canonical.md`` describes each field; :func:`json_schema` is the machine form
published as ``docs/schema/canonical.schema.json`` (``python -m translators.canonical``
prints it).

Nothing in this package reads X12 or does I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from translators.canonical.common import (
    AllowanceCharge,
    CanonicalModel,
    Carrier,
    DocumentWarning,
    Envelope,
    Kind,
    Money,
    Party,
    ProductIds,
    Reference,
    Terms,
)
from translators.canonical.details import Amount, Mark, Note, PackDetails, Totals, UnmappedSegment
from translators.canonical.document import MODEL_BY_KIND, CanonicalDocument, DocumentModel, kind_of
from translators.canonical.invoice import Invoice, InvoiceLine
from translators.canonical.order import Allocation, Order, OrderDates, OrderLine
from translators.canonical.order_ack import LineAcknowledgment, OrderAck, OrderAckLine
from translators.canonical.shipment import (
    Pack,
    Packaging,
    Shipment,
    ShipmentCarrier,
    ShipmentItem,
    ShipmentOrder,
    Tare,
)

__all__ = [
    "MODEL_BY_KIND",
    "SCHEMA_ID",
    "Allocation",
    "AllowanceCharge",
    "Amount",
    "CanonicalDocument",
    "CanonicalModel",
    "Carrier",
    "DocumentModel",
    "DocumentWarning",
    "Envelope",
    "Invoice",
    "InvoiceLine",
    "Kind",
    "LineAcknowledgment",
    "Mark",
    "Money",
    "Note",
    "Order",
    "OrderAck",
    "OrderAckLine",
    "OrderDates",
    "OrderLine",
    "Pack",
    "PackDetails",
    "Packaging",
    "Party",
    "ProductIds",
    "Reference",
    "Shipment",
    "ShipmentCarrier",
    "ShipmentItem",
    "ShipmentOrder",
    "Tare",
    "Terms",
    "Totals",
    "UnmappedSegment",
    "json_schema",
    "kind_of",
]

SCHEMA_ID = "https://gateway.example/schema/canonical.schema.json"


def json_schema(mode: Literal["serialization", "validation"] = "serialization") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a serialized :class:`CanonicalDocument`.

    By default the serialization schema (what the gateway emits: every field
    required, decimals as strings); ``mode="validation"`` gives what the gateway
    accepts (fields with defaults may be left out). Both tie ``document`` to
    ``kind`` with if/then rules.
    """
    schema = CanonicalDocument.model_json_schema(mode=mode)
    schema["allOf"] = [
        {
            "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
            "then": {"properties": {"document": {"$ref": f"#/$defs/{model.__name__}"}}},
        }
        for kind, model in MODEL_BY_KIND.items()
    ]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
