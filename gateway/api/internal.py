"""The internal API (our ERP and operators): bearer token ``[api].token`` (or the
generated one in ``<data_dir>/api-token``), compared in constant time.

``POST /api/v1/shipments`` | ``/api/v1/invoices`` | ``/api/v1/order-acks``
    Body ``{"partner_id": "...", "document": {...canonical Shipment/Invoice/OrderAck...}}``.
    ``202 {"message_id", "status": "queued", "interchange_control", "group_control"}``
    once the rendered X12 and its outbox item are committed (gateway.outbound).
    A repeated ``Idempotency-Key`` with the same document answers ``200`` with the
    first message and renders nothing; with another document ``409``. Invalid
    documents: ``422 validation_failed`` with ``fields`` [{"loc": "document.lines.0.quantity",
    "msg": ...}] (the shape of every field error, see gateway.api.errors); a body that is
    not ``application/json``: ``415``; larger than ``limits.max_json_bytes``: ``413``
    (also when chunked: the body is streamed and never read past the limit); a valid
    document the partner's conventions cannot express: ``422 render_failed``; unknown
    partner: ``422`` on ``partner_id`` too.

:func:`add_routes` adds the outbound document routes; the token and the SIGHUP
reload are ``cleanup_ctx`` generators gateway.app installs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway import outbound
from gateway.api.bodies import read_json_body, request_id_header
from gateway.api.errors import ApiError
from gateway.api.keys import API_TOKEN, DATABASE, DELIVERY, GATEWAY, OVERRIDES, PARTNERS, RAWSTORE, SETTINGS
from gateway.bootstrap import ReloadFailed
from gateway.config import ensure_api_token
from gateway.domain.errors import RenderRefused
from gateway.domain.replay import ReplayNotAllowed, ReplayStage, parse_stage
from gateway.orders import policy_of

log = logging.getLogger(__name__)

KIND_BY_ROUTE = {"shipments": "shipment", "invoices": "invoice", "order-acks": "order_ack"}


# --------------------------------------------------------------------------- auth


def require_token(request: web.Request) -> None:
    """Raise 401 unless the request carries the internal API bearer token."""
    expected = request.app[API_TOKEN]
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    ok = hmac.compare_digest(presented.strip().encode(), expected.encode())
    if scheme.lower() != "bearer" or not ok:
        raise ApiError(
            401,
            "unauthorized",
            "missing or invalid API token (Authorization: Bearer <api token>)",
            headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
        )


async def read_json(request: web.Request) -> Any:
    """The JSON body of an internal API request: ``415`` unless ``application/json``,
    ``413`` past ``limits.max_json_bytes`` (streamed, never read beyond the limit)."""
    return await read_json_body(request, request.app[SETTINGS].limits.max_json_bytes)


async def replay_request(
    request: web.Request, stages: tuple[ReplayStage, ...] = tuple(ReplayStage)
) -> tuple[ReplayStage, bool]:
    """The optional body of a replay, ``{"from": stage, "redeliver": bool}``
    (gateway.domain.replay; ``stages``: those this endpoint takes); none (or an empty
    one) is a replay from translate, as before stages existed. ``400`` otherwise."""
    if not request.can_read_body or request.content_length == 0:
        return ReplayStage.TRANSLATE, False
    data = await read_json(request)
    if not isinstance(data, dict) or set(data) - {"from", "redeliver"}:
        raise ApiError(
            400, "bad_request", 'send {"from": "translate"|"deliver"|"acknowledge", "redeliver": bool}'
        )
    try:
        stage = parse_stage(data.get("from"))
    except ReplayNotAllowed as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if stage not in stages:
        raise ApiError(400, "bad_request", f"this replay starts from {' or '.join(stages)}")
    redeliver = data.get("redeliver", False)
    if not isinstance(redeliver, bool) or (redeliver and stage is not ReplayStage.DELIVER):
        raise ApiError(400, "bad_request", 'redeliver is true or false, and only with "from": "deliver"')
    return stage, redeliver


def validation_failed(message: str, fields: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "validation_failed", message, fields=fields)


# --------------------------------------------------------------------------- outbound documents


async def post_outbound(request: web.Request) -> web.Response:
    from pydantic import ValidationError

    from translators.canonical import MODEL_BY_KIND

    require_token(request)
    kind = KIND_BY_ROUTE[request.path.rstrip("/").rsplit("/", 1)[-1]]
    data = await read_json(request)
    if not isinstance(data, dict):
        raise validation_failed("the body must be a JSON object", [{"loc": "", "msg": "expected an object"}])
    fields: list[dict[str, str]] = []
    partner_id = data.get("partner_id")
    directory = request.app[PARTNERS].current
    profile = directory.get(partner_id) if isinstance(partner_id, str) and directory is not None else None
    if not isinstance(partner_id, str) or not partner_id:
        fields.append({"loc": "partner_id", "msg": "required: the receiving partner's id"})
    elif profile is None:
        fields.append({"loc": "partner_id", "msg": f"no partner profile {partner_id!r}"})
    unknown = sorted(set(data) - {"partner_id", "document"})
    fields += [{"loc": key, "msg": "unknown field"} for key in unknown]
    document = None
    raw_document = data.get("document")
    if not isinstance(raw_document, dict):
        fields.append({"loc": "document", "msg": f"required: the canonical {kind} document as an object"})
    else:
        try:
            document = MODEL_BY_KIND[kind].model_validate(raw_document)
        except ValidationError as exc:
            fields += [
                {"loc": ".".join(["document", *(str(p) for p in err["loc"])]), "msg": err["msg"]}
                for err in exc.errors(include_url=False)
            ]
    if fields or profile is None:
        raise validation_failed(f"the {kind} request is not valid", fields)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 255 and key.isprintable() and key.isascii()):
        raise ApiError(400, "bad_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters")
    try:
        result = await outbound.submit(
            request.app[DATABASE],
            request.app[RAWSTORE],
            profile=profile,
            identity=request.app[SETTINGS].identity,
            document=document,
            now=request.app[OVERRIDES].clock(),
            idempotency_key=key,
            request_id=request_id_header(request),
            hooks=_hooks_of(directory, profile.id),
            channel=_channel_of(directory, profile.id),
            order_policy=policy_of(directory, profile.id),
        )
    except RenderRefused as exc:
        raise ApiError(422, exc.code, str(exc), fields=exc.fields or None, details=exc.details) from None
    except outbound.IdempotencyConflict as exc:
        raise ApiError(409, "idempotency_key_reused", str(exc)) from None
    request.app[DELIVERY].wake()
    body: dict[str, Any] = {
        "message_id": result.message_id,
        "status": "queued" if result.created else "already_received",
    }
    if result.created:
        body["interchange_control"] = f"{result.interchange_control:09d}"
        body["group_control"] = str(result.group_control)
    return web.json_response(body, status=202 if result.created else 200)


# --------------------------------------------------------------------------- wiring


async def token_ctx(app: web.Application) -> AsyncIterator[None]:
    token, _ = ensure_api_token(app[SETTINGS])
    app[API_TOKEN] = token
    yield


async def reload_on_sighup(app: web.Application) -> None:
    """SIGHUP: reload the partner profiles; a refusal is logged (one line naming each
    file and problem) and kept in ``PartnersHolder.error`` for /readyz and /metrics,
    never left as an unretrieved task exception."""
    try:
        await app[GATEWAY].reload_partners()
    except ReloadFailed as exc:
        current = app[PARTNERS].current
        log.error(
            "SIGHUP: partner reload failed, still using the %d profile(s) loaded before: %s",
            len(current) if current is not None else 0,
            "; ".join(exc.errors),
        )
    except Exception:
        log.exception("SIGHUP: partner reload failed unexpectedly; the profiles in use are kept")


async def sighup_ctx(app: web.Application) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    installed = False
    tasks: set[asyncio.Task[None]] = set()

    def on_sighup() -> None:
        task = asyncio.ensure_future(reload_on_sighup(app))
        tasks.add(task)  # a reference until done, so the task is never garbage-collected mid-reload
        task.add_done_callback(tasks.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        installed = True
    yield
    if installed:
        loop.remove_signal_handler(signal.SIGHUP)
    for task in list(tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await task


def add_routes(app: web.Application) -> None:
    for route in KIND_BY_ROUTE:
        app.router.add_post(f"/api/v1/{route}", post_outbound)


def _channel_of(directory: Any, partner_id: str) -> str:
    transport = directory.transport(partner_id) if directory is not None else None
    return transport.delivery.channel if transport is not None else "mailbox"


def _hooks_of(directory: Any, partner_id: str) -> Any:
    """The partner's hooks.py (None without one)."""
    entry = directory.entry(partner_id) if directory is not None and hasattr(directory, "entry") else None
    return entry.hooks if entry is not None else None
