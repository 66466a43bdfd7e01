"""What the messages API answers, as pydantic models: the one description of
``GET /api/v1/messages`` items and ``GET /api/v1/messages/{id}``, from which the
OpenAPI spec takes its schemas (gateway.openapi), and which
tests/gateway/test_openapi_responses.py holds the real answers to.

Models only: no handler logic, no database. Every field is always present (null
when there is nothing), so every field is required in the schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, WithJsonSchema

#: A canonical document as the service stores it: the spec's CanonicalDocument (a
#: marker here, made a reference by :func:`schemas`: pydantic resolves a $ref itself).
_CANONICAL = {"x-canonical-document": True}
CanonicalJson = Annotated[dict[str, Any], WithJsonSchema(_CANONICAL)]
Detail = Annotated[dict[str, Any] | None, WithJsonSchema({"type": ["object", "null"]})]


class MessageSummary(BaseModel):
    id: str
    direction: Literal["in", "out"]
    partner_id: str | None
    channel: str
    kind: str
    status: str
    reason: str | None  # also the partial outcomes of a file's interchanges
    interchange_sender: str | None
    interchange_control: str | None
    size: int
    received_at: datetime
    updated_at: datetime


class MessageEvent(BaseModel):
    at: datetime
    state: str
    detail: Detail


class MessageNextStep(BaseModel):
    """The job the message waits for, and its last error."""

    step: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None


class MessageProgress(BaseModel):
    """While a large message is being translated: sets done / sets in the payload."""

    step: str
    sets_translated: int
    sets_total: int | None


class MessageCounts(BaseModel):
    """How many of each paged list the message has in all."""

    documents: int
    events: int
    attempts: int


class MessageDocument(BaseModel):
    id: str
    seq: int
    kind: str
    set_id: str | None
    business_number: str | None
    interchange_control: str | None
    group_control: str | None
    set_control: str | None
    idempotency_key: str
    status: str
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    document: CanonicalJson


class OutboxMdn(BaseModel):
    """The MDN of an AS2 send (gateway.domain.mdn)."""

    status: Literal["pending", "processed", "error", "overdue"]
    at: datetime | None  # when the MDN was read
    detail: str | None  # its disposition, or why it is an error


class MessageOutboxItem(BaseModel):
    id: str
    kind: str
    channel: str
    status: str
    interchange_control: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    mdn: OutboxMdn | None  # null: not sent over AS2 with an MDN asked for


class MessageAcks(BaseModel):
    issued: list[MessageOutboxItem]
    received: list[MessageEvent]


class MessageDeliveryAttempt(BaseModel):
    at: datetime
    target: str
    document_id: str | None
    outbox_id: str | None
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: int | None


class MessageDetail(MessageSummary):
    """One message. ``documents``, ``timeline`` and ``delivery_attempts`` are one page
    each; ``*_next`` is the cursor of the next page (null: this was the last)."""

    next_step: MessageNextStep | None
    progress: MessageProgress | None
    counts: MessageCounts
    documents_next: str | None
    events_next: str | None
    attempts_next: str | None
    timeline: list[MessageEvent]
    documents: list[MessageDocument]
    outbox: list[MessageOutboxItem]
    acks: MessageAcks
    delivery_attempts: list[MessageDeliveryAttempt]


class MessagePage(BaseModel):
    items: list[MessageSummary]
    next: str | None


def schemas() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the detail's schema, the page's schema, the definitions both refer to as
    ``#/$defs/<Name>``), in serialization mode (what the service answers)."""
    defs: dict[str, Any] = {}
    out = []
    for model in (MessageDetail, MessagePage):
        schema = model.model_json_schema(mode="serialization")
        defs.update(schema.pop("$defs", {}))
        out.append(schema)
    return _canonical_refs(out[0]), _canonical_refs(out[1]), _canonical_refs(defs)


def _canonical_refs(node: Any) -> Any:
    if node == _CANONICAL:
        return {"$ref": "#/$defs/CanonicalDocument"}
    if isinstance(node, dict):
        return {key: _canonical_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_canonical_refs(value) for value in node]
    return node
