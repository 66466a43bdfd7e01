"""The OpenAPI 3.1 description of every route, served at ``/api/v1/openapi.json``.

Built in code (not a hand-kept JSON file) so the canonical document schemas are
always those of ``translators.canonical.json_schema()``; tests/gateway/test_openapi.py
compares the app's routes with :data:`OPERATIONS` both ways, so a route added
without documentation (or documentation for a route that is gone) fails the build;
tests/gateway/test_openapi_responses.py drives the real service and checks every
answer's status against the operation's responses and its body against their schema,
and that every declared response is answered by some request. Every error body is the
``Error`` schema (gateway.api.errors). Nothing here touches the database or the settings.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from aiohttp import web

from gateway.api.message_views import schemas as message_schemas
from gateway.api.messages import DETAIL_PAGES
from gateway.domain import orders as order_domain

JSON = "application/json"
X12 = "application/edi-x12"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _header(description: str) -> dict[str, Any]:
    return {"required": True, "schema": {"type": "string"}, "description": description}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response = _json(_ref("Error"), description)
    if headers:
        response["headers"] = headers
    return response


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def _replay_body(*stages: str) -> dict[str, Any]:
    """The optional body of a replay (gateway.api.internal.replay_request)."""
    properties: dict[str, Any] = {"from": {"enum": list(stages)}}
    if "deliver" in stages and "acknowledge" in stages:
        properties["redeliver"] = {"type": "boolean"}
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return {"required": False, "content": {JSON: {"schema": schema}}}


def _params(*names: str) -> list[dict[str, Any]]:
    catalogue: dict[str, dict[str, Any]] = {
        "partner_id": {"name": "partner_id", "in": "path", "required": True, "schema": {"type": "string"}},
        "id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        "item": {"name": "item", "in": "path", "required": True, "schema": {"type": "string"}},
        "limit": {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
        },
        "after": {
            "name": "after",
            "in": "query",
            "schema": {"type": "string"},
            "description": "cursor: the previous page's next",
        },
        "cursor": {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        "type": {
            "name": "type",
            "in": "query",
            "schema": {"enum": ["erp_document", "partner_delivery"]},
            "description": "an ERP document or a partner delivery",
        },
        "dead_kind": {
            "name": "kind",
            "in": "query",
            "schema": {"type": "string"},
            "description": "a transaction set (850, 856, 810, 997, TA1...) or a canonical kind (order...)",
        },
        "older_than_hours": {
            "name": "older_than_hours",
            "in": "query",
            "schema": {"type": "number", "minimum": 0, "maximum": 87600},
            "description": "only dead letters made more than this many hours ago",
        },
        "partner": {"name": "partner", "in": "query", "schema": {"type": "string"}},
        "direction": {"name": "direction", "in": "query", "schema": {"enum": ["in", "out"]}},
        "kind": {
            "name": "kind",
            "in": "query",
            "schema": {"type": "string"},
            "description": "x12, canonical, or a document kind (order, order_ack, shipment, invoice)",
        },
        "status": {"name": "status", "in": "query", "schema": {"type": "string"}},
        "since": {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        "until": {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        "q": {
            "name": "q",
            "in": "query",
            "schema": {"type": "string"},
            "description": "PO/shipment/invoice number or an interchange/group/set control number",
        },
        "mdn": {
            "name": "mdn",
            "in": "query",
            "schema": {"type": "string", "enum": ["pending", "processed", "error", "overdue"]},
            "description": "messages with an AS2 send whose MDN is in this state",
        },
        **{
            f"{page}_{what}": {
                "name": f"{page}_{what}",
                "in": "query",
                "schema": {"type": "integer", "minimum": 0, "maximum": most}
                if what == "limit"
                else {"type": "string"},
                "description": f"how many {page} to list (default {default}; 0: only their count)"
                if what == "limit"
                else f"where the page of {page} starts: {page}_next of the page before",
            }
            for page, (default, most) in DETAIL_PAGES.items()
            for what in ("limit", "cursor")
        },
        "Idempotency-Key": {
            "name": "Idempotency-Key",
            "in": "header",
            "schema": {"type": "string", "maxLength": 255},
        },
    }
    return [catalogue[n] for n in names]


PARTNER_AUTH: list[dict[str, list[str]]] = [{"partnerKey": []}]
INTERNAL_AUTH: list[dict[str, list[str]]] = [{"apiToken": []}]
NO_AUTH: list[dict[str, list[str]]] = []

STR = {"type": "string"}
NULL_STR = {"type": ["string", "null"]}
INT = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}
NULL_TIME = {"type": ["string", "null"], "format": "date-time"}

# Answers shared by many operations. Every error body is the Error schema: the
# middleware in gateway.api.errors turns every failure into one.
PARTNER_401 = _error(
    "missing or invalid partner key (unknown partner, partner without REST, wrong key: the same answer)",
    {"WWW-Authenticate": _header('Bearer realm="partners"')},
)
TOKEN_401 = _error("missing or invalid API token", {"WWW-Authenticate": _header('Bearer realm="gateway"')})
UNAVAILABLE = _error(
    "storage (database or raw store) unavailable: nothing was stored or changed; retry later",
    {"Retry-After": _header("seconds")},
)
INTERNAL = _error("unexpected error (`internal_error`); nothing about it is in the body")
BAD_LIMIT = _error("limit is not an integer from 1 to 500")
BODY_TIMEOUT = _error(
    "the body did not arrive in time (`body_timeout`: limits.body_timeout_seconds, "
    "then limits.min_body_bytes_per_second); the connection is closed"
)
JSON_BODY_ERRORS = {
    "408": BODY_TIMEOUT,
    "413": _error("larger than limits.max_json_bytes"),
    "415": _error("Content-Type is not application/json"),
}
REQUEST_ID = {
    "X-Request-Id": _header("the request's X-Request-Id, or one made up; the message's transport id")
}


def _accepted(status: str, description: str) -> dict[str, Any]:
    response = _json(_object({"message_id": STR, "status": {"const": status}}), description)
    response["headers"] = REQUEST_ID
    return response


READY = {
    "type": "object",
    "required": ["status", "checks", "partners"],
    "properties": {
        "status": {"enum": ["ready", "not ready"]},
        "checks": {
            "type": "object",
            "properties": {
                "database": {"type": "string"},
                "partners": {"type": "string"},
                "storage": {"type": "string"},
            },
            "additionalProperties": {"type": "string"},
            "description": "each `ok` or what is wrong",
        },
        "partners": {
            "type": "object",
            "required": ["loaded", "reload_error"],
            "properties": {
                "loaded": {"type": "integer"},
                "reload_error": {
                    "type": ["string", "null"],
                    "description": "why the last reload was refused (the previous profiles stay in use)",
                },
            },
        },
        "reason": {"type": "string", "description": "present when not ready: the failed checks"},
    },
}


def _page(item: dict[str, Any]) -> dict[str, Any]:
    return _object({"items": {"type": "array", "items": item}, "next": NULL_STR})


FEED_ITEM = _object(
    {
        "id": STR,
        "message_id": STR,
        "idempotency_key": STR,
        "kind": STR,
        "partner_id": NULL_STR,
        "business_number": NULL_STR,
        "correlation_id": STR,  # the order's (docs/operations.md, Correlation id), else the message id
        "created_at": TIME,
        "document": _ref("CanonicalDocument"),
    }
)
DEAD_LETTER = _object(
    {
        "id": STR,
        "type": {"enum": ["erp_document", "partner_delivery"]},
        "message_id": NULL_STR,
        "partner_id": NULL_STR,
        "kind": STR,
        "set_id": NULL_STR,
        "business_number": NULL_STR,
        "idempotency_key": STR,
        "attempts": INT,
        "last_error": NULL_STR,
        "created_at": TIME,
    }
)
MAILBOX_ITEM = _object(
    {"id": STR, "kind": STR, "interchange_control": NULL_STR, "created_at": TIME, "size": INT, "payload": STR}
)


DECIMAL = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
ORDER_STATES = list(order_domain.STATES)  # the same lists the domain derives
ORDER_EXCEPTION_KINDS = list(order_domain.EXCEPTION_KINDS)
ORDER_EXCEPTION = _object(
    {
        "kind": {"enum": ORDER_EXCEPTION_KINDS},
        "open": {"type": "boolean"},
        "since": TIME,
        "documents": {"type": "array", "items": STR, "description": "ids of the documents involved"},
    },
    {"subject": NULL_STR, "detail": {"type": "object"}, "closed_at": NULL_TIME},
)
ORDER = _object(
    {
        "partner_id": STR,
        "po_number": STR,
        "correlation_id": {"type": "string", "description": "the order's id in logs, ERP and alerts"},
        "state": {"enum": ORDER_STATES},
        "lines": {
            "type": "array",
            "items": _object(
                {
                    "line_number": NULL_STR,
                    "product_ids": {"type": "object", "additionalProperties": STR},
                    "ordered": DECIMAL,
                    "shipped": DECIMAL,
                    "invoiced": DECIMAL,
                }
            ),
        },
        "documents": {
            "type": "array",
            "items": _object(
                {
                    "kind": STR,
                    "direction": {"enum": ["in", "out"]},
                    "business_number": NULL_STR,
                    "message_id": STR,
                    "at": TIME,
                },
                {
                    "document_id": STR,
                    "set_id": NULL_STR,
                    "purpose": NULL_STR,
                    "status": STR,
                    "message_status": STR,
                    "interchange_control": NULL_STR,
                    "group_control": NULL_STR,
                    "erp": _object({"status": STR, "delivered_at": NULL_TIME}),
                },
            ),
        },
        "acknowledgments": {
            "type": "array",
            "items": _object(
                {
                    "kind": NULL_STR,
                    "direction": {"enum": ["in", "out"]},
                    "about_message_id": STR,
                    "message_id": NULL_STR,
                    "at": TIME,
                    "status": STR,
                },
                {"code": NULL_STR, "interchange_control": NULL_STR},
            ),
        },
        "exceptions": {"type": "array", "items": ORDER_EXCEPTION},
    }
)
ORDER_SUMMARY = _object(
    {
        "partner_id": STR,
        "po_number": STR,
        "state": {"enum": ORDER_STATES},
        "open_exceptions": INT,
        "first_at": TIME,
        "updated_at": TIME,
    }
)
EXCEPTION_ITEM = _object({"id": STR, "partner_id": STR, "po_number": STR, **ORDER_EXCEPTION["properties"]})


def _outbound(kind: str, model: str) -> dict[str, Any]:
    return {
        "summary": f"Send a canonical {kind} to a partner as X12",
        "security": INTERNAL_AUTH,
        "parameters": _params("Idempotency-Key"),
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["partner_id", "document"],
                        "additionalProperties": False,
                        "properties": {"partner_id": {"type": "string"}, "document": _ref(model + "Input")},
                    }
                }
            },
        },
        "responses": {
            "202": _json(
                _object(
                    {
                        "message_id": STR,
                        "status": {"const": "queued"},
                        "interchange_control": STR,
                        "group_control": STR,
                    }
                ),
                "rendered, stored and queued for the partner's channel",
            ),
            "200": _json(
                _object({"message_id": STR, "status": {"const": "already_received"}}),
                "Idempotency-Key seen before with the same document: the first message, nothing rendered",
            ),
            "400": _error("not JSON (`bad_json`), or a bad Idempotency-Key"),
            "401": TOKEN_401,
            "409": _error("Idempotency-Key reused with another document"),
            **JSON_BODY_ERRORS,
            "422": _error("`fields`, unknown partner, `render_failed`, `total_mismatch`, `partner_rules`"),
            "503": UNAVAILABLE,
        },
    }


# (method, path) -> operation. The route test checks this against the app's router;
# tests/gateway/test_openapi_responses.py checks the answers against the responses.
# Every operation also declares 500 (added in _spec).
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/healthz"): {
        "summary": "Liveness",
        "security": NO_AUTH,
        "responses": {"200": _json(_object({"status": {"const": "ok"}}), "the process answers")},
    },
    ("get", "/readyz"): {
        "summary": "Readiness (database, partner profiles, raw store, free disk)",
        "security": NO_AUTH,
        "responses": {"200": _json(READY, "ready"), "503": _json(READY, "not ready")},
    },
    ("post", "/partners/{partner_id}/edi"): {
        "summary": "A partner posts one X12 interchange",
        "security": PARTNER_AUTH,
        "parameters": _params("partner_id", "Idempotency-Key"),
        "requestBody": {"required": True, "content": {X12: {"schema": {"type": "string"}}}},
        "responses": {
            "202": _accepted("received", "accepted and stored; processed asynchronously"),
            "200": _accepted("already_received", "Idempotency-Key seen before: the first message"),
            "400": _error("empty (`empty_body`), not X12 (`not_x12`), or a bad Idempotency-Key"),
            "401": PARTNER_401,
            "408": BODY_TIMEOUT,
            "409": _error("Idempotency-Key reused with another body"),
            "413": _error("larger than limits.max_edi_bytes"),
            "415": _error(
                "Content-Type is not one for X12 (application/edi-x12, application/edi, "
                "application/edi-consent, text/plain, application/octet-stream, or none)"
            ),
            "503": UNAVAILABLE,
        },
    },
    ("post", "/as2"): {
        "summary": "A partner posts one AS2 message (or an asynchronous MDN for one of ours)",
        "security": NO_AUTH,
        "description": "Authenticated by the partner's S/MIME signature, not by a key; see docs/as2.md.",
        "requestBody": {
            "required": True,
            "content": {
                "application/pkcs7-mime": {"schema": {"type": "string"}},
                "multipart/signed": {"schema": {"type": "string"}},
            },
        },
        "responses": {
            "200": {
                "description": "the MDN (multipart/report, or multipart/signed around it): "
                "processed once the payload is stored, or processed/error with the "
                "RFC 4130 modifier; empty when no MDN or an asynchronous one was asked"
            },
            "400": _error(
                "no AS2-From/AS2-To (`not_as2`), no usable Message-ID (`bad_message_id`), "
                "or an unreadable MDN (`bad_mdn`)"
            ),
            "403": _error("an MDN from an unknown partnership (`unknown_partnership`)"),
            "404": _error("no [as2] in the gateway configuration (`as2_not_configured`)"),
            "413": _error("larger than limits.max_edi_bytes"),
            "503": UNAVAILABLE,
        },
    },
    ("post", "/partners/{partner_id}/documents"): {
        "summary": "A partner posts one canonical JSON document",
        "security": PARTNER_AUTH,
        "parameters": _params("partner_id", "Idempotency-Key"),
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("CanonicalDocumentInput")}}},
        "responses": {
            "202": _accepted("received", "accepted and stored; processed asynchronously"),
            "200": _accepted("already_received", "Idempotency-Key seen before: the first message"),
            "400": _error("empty (`empty_body`), not JSON (`bad_json`), or a bad Idempotency-Key"),
            "401": PARTNER_401,
            "409": _error("Idempotency-Key reused with another body"),
            **JSON_BODY_ERRORS,
            "422": _error(
                "invalid document or a required field of its kind missing (field errors in "
                "`fields`), another partner_id, or an envelope naming another sender "
                "(`envelope_mismatch`)"
            ),
            "503": UNAVAILABLE,
        },
    },
    ("get", "/partners/{partner_id}/outbox"): {
        "summary": "Mailbox: the partner's pending items",
        "security": PARTNER_AUTH,
        "parameters": _params("partner_id", "limit"),
        "responses": {
            "200": _json(
                _object({"items": {"type": "array", "items": MAILBOX_ITEM}}), "pending items, oldest first"
            ),
            "400": BAD_LIMIT,
            "401": PARTNER_401,
            "503": UNAVAILABLE,
        },
    },
    ("get", "/partners/{partner_id}/outbox/{item}"): {
        "summary": "Mailbox: one item's bytes",
        "security": PARTNER_AUTH,
        "parameters": _params("partner_id", "item"),
        "responses": {
            "200": {"description": "the X12", "content": {X12: {"schema": {"type": "string"}}}},
            "401": PARTNER_401,
            "404": _error("no such pending item in this mailbox"),
            "503": UNAVAILABLE,
        },
    },
    ("delete", "/partners/{partner_id}/outbox/{item}"): {
        "summary": "Mailbox: confirm receipt",
        "security": PARTNER_AUTH,
        "parameters": _params("partner_id", "item"),
        "responses": {
            "204": {"description": "confirmed (again: also 204)"},
            "401": PARTNER_401,
            "404": _error("no such item in this mailbox"),
            "503": UNAVAILABLE,
        },
    },
    ("post", "/api/v1/shipments"): _outbound("shipment (856)", "Shipment"),
    ("post", "/api/v1/invoices"): _outbound("invoice (810)", "Invoice"),
    ("post", "/api/v1/order-acks"): _outbound("order acknowledgment (855)", "OrderAck"),
    ("get", "/api/v1/feed"): {
        "summary": "ERP feed: documents waiting for the ERP",
        "security": INTERNAL_AUTH,
        "parameters": _params("after", "limit"),
        "responses": {
            "200": _json(_page(FEED_ITEM), "items carry the canonical document under `document`"),
            "400": BAD_LIMIT,
            "401": TOKEN_401,
            "503": UNAVAILABLE,
        },
    },
    ("post", "/api/v1/feed/ack"): {
        "summary": "ERP feed: confirm documents (they become delivered)",
        "security": INTERNAL_AUTH,
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["ids"],
                        "properties": {
                            "ids": {
                                "type": "array",
                                "items": {"type": "string"},
                                "minItems": 1,
                                "maxItems": 1000,
                            }
                        },
                    }
                }
            },
        },
        "responses": {
            "200": _json(
                _object(
                    {"delivered": {"type": "array", "items": STR}, "unknown": {"type": "array", "items": STR}}
                ),
                "confirmed",
            ),
            "400": _error("not JSON, or not 1 to 1000 ids"),
            "401": TOKEN_401,
            **JSON_BODY_ERRORS,
            "503": UNAVAILABLE,
        },
    },
    ("get", "/api/v1/dead-letters"): {
        "summary": "Dead letters (ERP documents, partner deliveries)",
        "security": INTERNAL_AUTH,
        "parameters": _params("type", "dead_kind", "partner", "older_than_hours", "after", "limit"),
        "responses": {
            "200": _json(_page(DEAD_LETTER), "oldest first"),
            "400": _error("bad limit, type or older_than_hours"),
            "401": TOKEN_401,
            "503": UNAVAILABLE,
        },
    },
    ("post", "/api/v1/dead-letters/{id}/replay"): {
        "summary": "Replay a dead letter",
        "security": INTERNAL_AUTH,
        "parameters": _params("id"),
        "requestBody": _replay_body("translate", "deliver"),
        "responses": {
            "202": _json(
                {
                    "oneOf": [
                        _object({"id": STR, "message_id": STR, "status": {"const": "replaying"}}),
                        _object({"id": STR, "status": {"const": "pending"}}),
                    ]
                },
                "queued again: an ERP document's message is replayed, a partner delivery is pending again",
            ),
            "400": _error("a body that is not a replay request, or another stage"),
            "401": TOKEN_401,
            "404": _error("no such dead letter"),
            "409": _error("not replayable now (`replay_refused`)"),
            **JSON_BODY_ERRORS,
            "503": UNAVAILABLE,
        },
    },
    ("get", "/api/v1/messages"): {
        "summary": "Search messages (newest first)",
        "security": INTERNAL_AUTH,
        "parameters": _params(
            "partner", "direction", "kind", "status", "since", "until", "q", "mdn", "limit", "cursor"
        ),
        "responses": {
            "200": _json(_ref("MessagePage"), "a page of message summaries"),
            "400": _error("bad limit, direction, or since/until (ISO 8601 with a time zone)"),
            "401": TOKEN_401,
            "503": UNAVAILABLE,
        },
    },
    ("get", "/api/v1/messages/{id}"): {
        "summary": "One message: timeline, documents, acks, delivery attempts, outbox",
        "description": "Documents, timeline events and delivery attempts come a page at a time "
        "(`documents_limit`, `events_limit`, `attempts_limit` with their `_cursor`); `counts` "
        "says how many there are.",
        "security": INTERNAL_AUTH,
        "parameters": _params(
            "id",
            "documents_limit",
            "documents_cursor",
            "events_limit",
            "events_cursor",
            "attempts_limit",
            "attempts_cursor",
        ),
        "responses": {
            "200": _json(_ref("MessageDetail"), "the message"),
            "400": _error("a *_limit or *_cursor that is not a number in range"),
            "401": TOKEN_401,
            "404": _error("unknown message"),
            "503": UNAVAILABLE,
        },
    },
    ("get", "/api/v1/messages/{id}/raw"): {
        "summary": "The exact stored bytes",
        "security": INTERNAL_AUTH,
        "parameters": _params("id"),
        "responses": {
            "200": {
                "description": "raw payload",
                "content": {X12: {"schema": {"type": "string"}}, JSON: {"schema": {"type": "object"}}},
            },
            "401": TOKEN_401,
            "404": _error("unknown message"),
            "410": _error("pruned"),
            "503": UNAVAILABLE,
        },
    },
    ("post", "/api/v1/messages/{id}/replay"): {
        "summary": "Run an inbound message again, from a stage",
        "description": "Without a body: from translate (the stored raw bytes). `from`: `translate`, "
        "`deliver` (the stored documents to the ERP again, same keys; `redeliver`: also those the ERP "
        "has) or `acknowledge` (the TA1/997/999 built, sent again).",
        "security": INTERNAL_AUTH,
        "parameters": _params("id"),
        "requestBody": _replay_body("translate", "deliver", "acknowledge"),
        "responses": {
            "202": _json(
                _object(
                    {
                        "message_id": STR,
                        "status": {"enum": ["received", "translated", "acks_queued"]},
                        "from": {"enum": ["translate", "deliver", "acknowledge"]},
                    }
                ),
                "queued",
            ),
            "400": _error(
                "a body that is not a replay request (an unknown stage, redeliver without deliver)"
            ),
            "401": TOKEN_401,
            "404": _error("unknown message"),
            "409": _error(
                "being processed, pruned, not an inbound message, or the stage does not apply "
                "(`replay_refused`, with the reason)"
            ),
            **JSON_BODY_ERRORS,
            "503": UNAVAILABLE,
        },
    },
    ("get", "/api/v1/orders"): {
        "summary": "Orders (oldest first) with their state",
        "security": INTERNAL_AUTH,
        "parameters": [
            {"name": "partner_id", "in": "query", "schema": STR},
            {"name": "state", "in": "query", "schema": {"enum": ORDER_STATES}},
            *_params("since", "limit", "cursor"),
        ],
        "responses": {
            "200": _json(_page(ORDER_SUMMARY), "a page of orders"),
            "400": _error("bad limit, state, or since (ISO 8601 with a time zone)"),
            "401": TOKEN_401,
            "503": UNAVAILABLE,
        },
    },
    ("get", "/api/v1/orders/{partner_id}/{po_number}"): {
        "summary": "One order: its documents, acknowledgments, quantities per line, state and exceptions",
        "security": INTERNAL_AUTH,
        "parameters": [
            *_params("partner_id"),
            {"name": "po_number", "in": "path", "required": True, "schema": STR},
        ],
        "responses": {
            "200": _json(ORDER, "the order (docs/orders.md)"),
            "401": TOKEN_401,
            "404": _error("no document names this PO number for this partner"),
            "503": UNAVAILABLE,
        },
    },
    ("get", "/api/v1/exceptions"): {
        "summary": "Order reconciliation exceptions (oldest first)",
        "security": INTERNAL_AUTH,
        "parameters": [
            {"name": "partner_id", "in": "query", "schema": STR},
            {"name": "kind", "in": "query", "schema": {"enum": ORDER_EXCEPTION_KINDS}},
            {
                "name": "open",
                "in": "query",
                "schema": {"enum": ["true", "false"]},
                "description": "true (default): open ones only; false: closed ones too",
            },
            *_params("since", "limit", "cursor"),
        ],
        "responses": {
            "200": _json(_page(EXCEPTION_ITEM), "a page of exceptions"),
            "400": _error("bad limit, kind, open, or since"),
            "401": TOKEN_401,
            "503": UNAVAILABLE,
        },
    },
    ("post", "/api/v1/partners/reload"): {
        "summary": "Reload partner profiles (also on SIGHUP)",
        "security": INTERNAL_AUTH,
        "responses": {
            "200": _json(_object({"partners": {"type": "array", "items": STR}}), "reloaded"),
            "401": TOKEN_401,
            "422": _error(
                "problems found (`invalid_profiles`, one line each in `details`); "
                "the profiles in use are kept"
            ),
        },
    },
    ("get", "/metrics"): {
        "summary": "Prometheus metrics",
        "security": INTERNAL_AUTH,
        "responses": {
            "200": {
                "description": "text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": TOKEN_401,
            "503": UNAVAILABLE,
        },
    },
    ("get", "/api/v1/openapi.json"): {
        "summary": "This document",
        "security": NO_AUTH,
        "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
    },
}
for _operation in OPERATIONS.values():
    _operation["responses"].setdefault("500", INTERNAL)


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
    # What the service accepts (fields with defaults may be left out): the same
    # models in validation mode, each as <Name>Input, for request bodies.
    accepted = _input_refs(json_schema(mode="validation"))
    for name, schema in accepted.pop("$defs", {}).items():
        schemas[name + "Input"] = schema
    accepted.pop("$schema", None)
    accepted.pop("$id", None)
    schemas["CanonicalDocumentInput"] = accepted
    # The messages API's answers come from its pydantic models (gateway.api.message_views).
    detail, page, views = message_schemas()
    schemas.update(views, MessageDetail=detail, MessagePage=page)
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": False,
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "machine-readable, e.g. unauthorized, bad_json, payload_too_large, "
                        "unsupported_media_type, invalid_document, validation_failed, idempotency_key_reused, "
                        "not_found, storage_unavailable, internal_error, render_failed, total_mismatch, partner_rules",
                    },
                    "message": {"type": "string"},
                    "details": {
                        "description": "more about the error, e.g. one line per partner profile problem"
                    },
                    "fields": {
                        "type": "array",
                        "description": "request validation errors: one per problem field",
                        "items": {
                            "type": "object",
                            "required": ["loc", "msg"],
                            "additionalProperties": False,
                            "properties": {
                                "loc": {
                                    "type": "string",
                                    "description": "dotted path in the body, e.g. document.po_number",
                                },
                                "msg": {"type": "string"},
                            },
                        },
                    },
                },
            }
        },
    }
    text = _rewrite_refs(schemas)
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in OPERATIONS.items():
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gateway EDI partner gateway",
            "version": "1",
            "description": "Partner endpoints (partner key), internal API (API token), probes, metrics. "
            "Every error answer is an Error body, also those no operation lists: 404 for a "
            "path that does not exist and 405 (with Allow) for a method a path does not have.",
        },
        "paths": paths,
        "components": {
            "schemas": text,
            "securitySchemes": {
                "partnerKey": {"type": "http", "scheme": "bearer", "description": "the partner's API key"},
                "apiToken": {"type": "http", "scheme": "bearer", "description": "[api].token"},
            },
        },
    }


def _input_refs(node: Any) -> Any:
    """``#/$defs/X`` -> ``#/$defs/XInput`` (the validation-mode copies)."""
    if isinstance(node, dict):
        return {
            key: value + "Input"
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/")
            else _input_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_input_refs(v) for v in node]
    return node


def _rewrite_refs(node: Any) -> Any:
    """JSON Schema ``#/$defs/X`` references -> ``#/components/schemas/X``."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + value[len("#/$defs/") :]
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
