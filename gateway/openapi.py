"""The OpenAPI 3.1 description of every route, served at ``/api/v1/openapi.json``.

Built in code (not a hand-kept JSON file) so the canonical document schemas are
always those of ``translators.canonical.json_schema()``; tests/gateway/test_openapi.py
compares the app's routes with :data:`OPERATIONS` both ways, so a route added
without documentation (or documentation for a route that is gone) fails the build.
Nothing here touches the database or the settings.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from aiohttp import web

JSON = "application/json"
X12 = "application/edi-x12"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _params(*names: str) -> list[dict[str, Any]]:
    catalogue: dict[str, dict[str, Any]] = {
        "partner_id": {"name": "partner_id", "in": "path", "required": True, "schema": {"type": "string"}},
        "id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        "item": {"name": "item", "in": "path", "required": True, "schema": {"type": "string"}},
        "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
        "after": {"name": "after", "in": "query", "schema": {"type": "string"}, "description": "cursor: the previous page's next"},
        "cursor": {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        "partner": {"name": "partner", "in": "query", "schema": {"type": "string"}},
        "direction": {"name": "direction", "in": "query", "schema": {"enum": ["in", "out"]}},
        "kind": {"name": "kind", "in": "query", "schema": {"type": "string"},
                 "description": "x12, canonical, or a document kind (order, order_ack, shipment, invoice)"},
        "status": {"name": "status", "in": "query", "schema": {"type": "string"}},
        "since": {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        "until": {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        "q": {"name": "q", "in": "query", "schema": {"type": "string"},
              "description": "PO/shipment/invoice number or an interchange/group/set control number"},
        "Idempotency-Key": {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255}},
    }
    return [catalogue[n] for n in names]


PARTNER_AUTH: list[dict[str, list[str]]] = [{"partnerKey": []}]
INTERNAL_AUTH: list[dict[str, list[str]]] = [{"apiToken": []}]
NO_AUTH: list[dict[str, list[str]]] = []

ACCEPTED = _json(
    {"type": "object", "required": ["message_id", "status"],
     "properties": {"message_id": {"type": "string"}, "status": {"type": "string"}}},
    "accepted and stored; processed asynchronously",
)
JSON_BODY_ERRORS = {"413": _error("larger than limits.max_json_bytes"),
                    "415": _error("Content-Type is not application/json")}
READY = {"type": "object", "required": ["status", "checks", "partners"], "properties": {
    "status": {"enum": ["ready", "not ready"]},
    "checks": {"type": "object", "properties": {"database": {"type": "string"}, "partners": {"type": "string"},
                                                "storage": {"type": "string"}},
               "additionalProperties": {"type": "string"}, "description": "each `ok` or what is wrong"},
    "partners": {"type": "object", "required": ["loaded", "reload_error"], "properties": {
        "loaded": {"type": "integer"},
        "reload_error": {"type": ["string", "null"],
                         "description": "why the last reload was refused (the previous profiles stay in use)"}}},
    "reason": {"type": "string", "description": "present when not ready: the failed checks"}}}
PAGE = {"type": "object", "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": {"type": "object"}}, "next": {"type": ["string", "null"]}}}


def _outbound(kind: str, model: str) -> dict[str, Any]:
    return {
        "summary": f"Send a canonical {kind} to a partner as X12",
        "security": INTERNAL_AUTH,
        "parameters": _params("Idempotency-Key"),
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["partner_id", "document"], "additionalProperties": False,
            "properties": {"partner_id": {"type": "string"}, "document": _ref(model)}}}}},
        "responses": {
            "202": _json({"type": "object", "required": ["message_id", "status"], "properties": {
                "message_id": {"type": "string"}, "status": {"const": "queued"},
                "interchange_control": {"type": "string"}, "group_control": {"type": "string"}}},
                "rendered, stored and queued for the partner's channel"),
            "200": _json({"type": "object"}, "Idempotency-Key seen before: the first message"),
            "400": _error("not JSON"), "401": _error("bad token"),
            "409": _error("Idempotency-Key reused with another document"), **JSON_BODY_ERRORS,
            "422": _error("field errors (`fields`), unknown partner, or not renderable"),
        },
    }


# (method, path) -> operation. The route test checks this against the app's router.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/healthz"): {"summary": "Liveness", "security": NO_AUTH,
                          "responses": {"200": _json({"type": "object"}, "the process answers")}},
    ("get", "/readyz"): {"summary": "Readiness (database, partner profiles, raw store, free disk)", "security": NO_AUTH,
                         "responses": {"200": _json(READY, "ready"), "503": _json(READY, "not ready")}},
    ("post", "/partners/{partner_id}/edi"): {
        "summary": "A partner posts one X12 interchange", "security": PARTNER_AUTH,
        "parameters": _params("partner_id", "Idempotency-Key"),
        "requestBody": {"required": True, "content": {X12: {"schema": {"type": "string"}}}},
        "responses": {"202": ACCEPTED, "200": ACCEPTED, "400": _error("empty or not X12"), "401": _error("bad key"),
                      "409": _error("Idempotency-Key reused"), "413": _error("too large"), "503": _error("storage down")},
    },
    ("post", "/partners/{partner_id}/documents"): {
        "summary": "A partner posts one canonical JSON document", "security": PARTNER_AUTH,
        "parameters": _params("partner_id", "Idempotency-Key"),
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("CanonicalDocument")}}},
        "responses": {"202": ACCEPTED, "200": ACCEPTED, "400": _error("empty or not JSON"), "401": _error("bad key"),
                      "409": _error("Idempotency-Key reused"), **JSON_BODY_ERRORS,
                      "422": _error("invalid document (field errors in `fields`)"), "503": _error("storage down")},
    },
    ("get", "/partners/{partner_id}/outbox"): {
        "summary": "Mailbox: the partner's pending items", "security": PARTNER_AUTH,
        "parameters": _params("partner_id", "limit"),
        "responses": {"200": _json({"type": "object", "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {"id": {"type": "string"}, "kind": {"type": "string"},
                                             "interchange_control": {"type": ["string", "null"]},
                                             "created_at": {"type": "string"}, "size": {"type": "integer"},
                                             "payload": {"type": "string"}}}}}}, "pending items, oldest first"),
                      "401": _error("bad key")},
    },
    ("get", "/partners/{partner_id}/outbox/{item}"): {
        "summary": "Mailbox: one item's bytes", "security": PARTNER_AUTH, "parameters": _params("partner_id", "item"),
        "responses": {"200": {"description": "the X12", "content": {X12: {"schema": {"type": "string"}}}},
                      "404": _error("no such item in this mailbox")},
    },
    ("delete", "/partners/{partner_id}/outbox/{item}"): {
        "summary": "Mailbox: confirm receipt", "security": PARTNER_AUTH, "parameters": _params("partner_id", "item"),
        "responses": {"204": {"description": "confirmed"}, "404": _error("no such item in this mailbox")},
    },
    ("post", "/api/v1/shipments"): _outbound("shipment (856)", "Shipment"),
    ("post", "/api/v1/invoices"): _outbound("invoice (810)", "Invoice"),
    ("post", "/api/v1/order-acks"): _outbound("order acknowledgment (855)", "OrderAck"),
    ("get", "/api/v1/feed"): {
        "summary": "ERP feed: documents waiting for the ERP", "security": INTERNAL_AUTH,
        "parameters": _params("after", "limit"),
        "responses": {"200": _json(PAGE, "items carry the canonical document under `document`")},
    },
    ("post", "/api/v1/feed/ack"): {
        "summary": "ERP feed: confirm documents (they become delivered)", "security": INTERNAL_AUTH,
        "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "object", "required": ["ids"],
            "properties": {"ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1000}}}}}},
        "responses": {"200": _json({"type": "object", "properties": {
            "delivered": {"type": "array", "items": {"type": "string"}},
            "unknown": {"type": "array", "items": {"type": "string"}}}}, "confirmed"),
            "400": _error("not JSON, or not 1 to 1000 ids"), **JSON_BODY_ERRORS},
    },
    ("get", "/api/v1/dead-letters"): {
        "summary": "Dead letters (ERP documents, partner deliveries)", "security": INTERNAL_AUTH,
        "parameters": _params("after", "limit"), "responses": {"200": _json(PAGE, "oldest first")},
    },
    ("post", "/api/v1/dead-letters/{id}/replay"): {
        "summary": "Replay a dead letter", "security": INTERNAL_AUTH, "parameters": _params("id"),
        "responses": {"202": _json({"type": "object"}, "queued again"), "404": _error("no such dead letter"),
                      "409": _error("not replayable now")},
    },
    ("get", "/api/v1/messages"): {
        "summary": "Search messages (newest first)", "security": INTERNAL_AUTH,
        "parameters": _params("partner", "direction", "kind", "status", "since", "until", "q", "limit", "cursor"),
        "responses": {"200": _json(PAGE, "a page of message summaries")},
    },
    ("get", "/api/v1/messages/{id}"): {
        "summary": "One message: timeline, documents, acks, delivery attempts, outbox", "security": INTERNAL_AUTH,
        "parameters": _params("id"),
        "responses": {"200": _json({"type": "object"}, "the message"), "404": _error("unknown message")},
    },
    ("get", "/api/v1/messages/{id}/raw"): {
        "summary": "The exact stored bytes", "security": INTERNAL_AUTH, "parameters": _params("id"),
        "responses": {"200": {"description": "raw payload", "content": {X12: {"schema": {"type": "string"}},
                                                                        JSON: {"schema": {"type": "object"}}}},
                      "404": _error("unknown message"), "410": _error("pruned")},
    },
    ("post", "/api/v1/messages/{id}/replay"): {
        "summary": "Run an inbound message again", "security": INTERNAL_AUTH, "parameters": _params("id"),
        "responses": {"202": _json({"type": "object"}, "queued"), "404": _error("unknown message"),
                      "409": _error("being processed or pruned")},
    },
    ("post", "/api/v1/partners/reload"): {
        "summary": "Reload partner profiles (also on SIGHUP)", "security": INTERNAL_AUTH,
        "responses": {"200": _json({"type": "object", "properties": {"partners": {"type": "array", "items": {"type": "string"}}}},
                                   "reloaded"),
                      "422": _error("problems found; the profiles in use are kept")},
    },
    ("get", "/metrics"): {
        "summary": "Prometheus metrics", "security": INTERNAL_AUTH,
        "responses": {"200": {"description": "text exposition format 0.0.4",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    },
    ("get", "/api/v1/openapi.json"): {
        "summary": "This document", "security": NO_AUTH,
        "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
    },
}


@cache
def _spec() -> dict[str, Any]:
    from translators.canonical import json_schema

    canonical = json_schema()
    defs = canonical.pop("$defs", {})
    canonical.pop("$schema", None)
    canonical.pop("$id", None)
    schemas: dict[str, Any] = {}
    for name, schema in defs.items():
        schemas[name] = schema
    schemas["CanonicalDocument"] = canonical
    schemas["Error"] = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "details": {"description": "more about the error, e.g. one line per partner profile problem"},
            "fields": {"type": "array", "description": "request validation errors: one per problem field",
                       "items": {"type": "object", "required": ["loc", "msg"], "properties": {
                           "loc": {"type": "string", "description": "dotted path in the body, e.g. document.po_number"},
                           "msg": {"type": "string"}}}}}}}}
    text = _rewrite_refs(schemas)
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in OPERATIONS.items():
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gateway EDI partner gateway", "version": "1",
                 "description": "Partner endpoints (partner key), internal API (API token), probes, metrics."},
        "paths": paths,
        "components": {
            "schemas": text,
            "securitySchemes": {
                "partnerKey": {"type": "http", "scheme": "bearer", "description": "the partner's API key"},
                "apiToken": {"type": "http", "scheme": "bearer", "description": "[api].token"},
            },
        },
    }


def _rewrite_refs(node: Any) -> Any:
    """JSON Schema ``#/$defs/X`` references -> ``#/components/schemas/X``."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + value[len("#/$defs/"):]
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def spec() -> dict[str, Any]:
    return copy.deepcopy(_spec())


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(_spec())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", get_openapi)
