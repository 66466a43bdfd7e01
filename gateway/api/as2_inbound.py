"""AS2 receive: ``POST /as2`` on the gateway's HTTP port.

1. The partnership is found from AS2-From (a partner's ``[as2] id``) and AS2-To (our
   ``[as2] id``); an unknown pair gets an ``authentication-failed`` MDN.
2. The body is opened with :func:`as2.unwrap` (verified against the partner's
   certificates valid now, decrypted with any of our keys, signing and encryption
   required unless the profile accepts less) and its MDN built, in one call
   (:func:`gateway.as2_receive.open_and_answer`): in a worker process of
   gateway.as2_pool (``[as2] receive_processes``), else in a thread when it is large.
3. Durable first: the payload goes through :meth:`gateway.intake.Intake.accept`
   (channel ``as2``, idempotency key = Message-ID) and only then is the MDN returned.
4. The MDN we return is kept on the message's timeline (event ``mdn_sent``: its
   Message-ID, MIC, disposition, headers and bytes, and the sha256 of the received
   AS2 body, which the raw store keeps). The received body, the payload, the message
   row and this event (with an asynchronous MDN's outbox row) are committed in one
   intake batch: concurrent messages share one sync and one commit, and a crash
   leaves all of them or none. A repeated Message-ID from the same partner stores
   nothing new and gets the very same MDN back.

Failures to open the message are answered with an error MDN carrying the RFC
disposition modifier of the ``as2`` error (HTTP 200, as AS2 senders expect), never a
500; a request no MDN can answer (no Message-ID, no AS2 headers) is a JSON 4xx.
Storage down is a 503 without an MDN: nothing was acknowledged, the partner resends.
A signed message asking for an asynchronous MDN (``Receipt-Delivery-Option``) gets
an empty 200 and its MDN is queued (gateway.as2_async_mdn); an error MDN is always
synchronous (the sender is not authenticated). An MDN posted here (for what we sent with ``mdn = "async"``) goes to
gateway.api.as2_mdn_inbound. This module never parses X12: the pipeline does.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import insert, select

import as2
from gateway import as2_async_mdn
from gateway.api.as2_mdn_inbound import is_mdn, receive_mdn
from gateway.api.bodies import check_length, read_limited
from gateway.api.errors import ApiError
from gateway.api.keys import DATABASE, GATEWAY, INTAKE, METRICS, PARTNERS, RAWSTORE, SETTINGS
from gateway.as2_receive import Incoming, Refused, build_mdn, open_and_answer
from gateway.as2_settings import As2Local, As2PartnerSettings
from gateway.db.models import MessageEvent, OutboxItem
from gateway.intake import ExtraRow, IdempotencyConflict
from gateway.metrics import Metrics
from gateway.rawstore import PayloadTooLarge

log = logging.getLogger(__name__)

# Open payloads above this size in a thread, off the event loop.
THREAD_THRESHOLD = 100 * 1024
DUPLICATE_WAIT_SECONDS = 2.0
_MESSAGE_ID = re.compile(r"<?[\x21-\x7e]{1,250}>?")
# Request headers kept with the received body: with it, the evidence of what was signed.
EVIDENCE_HEADERS = (
    "AS2-Version",
    "AS2-From",
    "AS2-To",
    "Message-ID",
    "Date",
    "Subject",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "MIME-Version",
    "Disposition-Notification-To",
    "Disposition-Notification-Options",
    "Receipt-Delivery-Option",
)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/as2", post_as2)


@dataclass(frozen=True, slots=True)
class _Partnership:
    partner_id: str
    settings: As2PartnerSettings


async def post_as2(request: web.Request) -> web.StreamResponse:
    local: As2Local | None = request.app[GATEWAY].as2
    if local is None:
        raise ApiError(404, "as2_not_configured", "this gateway has no [as2] configuration")
    as2_from = as2.unquote_as2_name(request.headers.get("AS2-From", ""))
    as2_to = as2.unquote_as2_name(request.headers.get("AS2-To", ""))
    message_id = request.headers.get("Message-ID", "").strip()
    if not as2_from or not as2_to:
        raise ApiError(400, "not_as2", "an AS2 request needs AS2-From and AS2-To headers")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ApiError(400, "bad_message_id", "an AS2 request needs a Message-ID of 1-250 visible characters")
    limit = request.app[SETTINGS].limits.max_edi_bytes
    check_length(request, limit)
    body = await read_limited(request, limit)
    headers = {name: value for name, value in request.headers.items()}
    receipt = as2.parse_disposition_options(request.headers.get("Disposition-Notification-Options"))
    wants_mdn = "Disposition-Notification-To" in request.headers

    partnership = _find(request, as2_from, as2_to, local)
    metrics = request.app[METRICS]

    def refuse(error: as2.AS2Error) -> web.Response:
        partner_id = partnership.partner_id if partnership is not None else None
        mdn = _error_mdn(local, message_id, as2_from, as2_to, receipt, error, metrics, partner_id)
        return _answer(mdn, wants_mdn)

    if is_mdn(headers, body):  # an asynchronous MDN for something we sent
        if partnership is None:
            raise ApiError(403, "unknown_partnership", f"no partnership from {as2_from!r} to {as2_to!r}")
        return await receive_mdn(
            request.app[DATABASE],
            request.app[GATEWAY].clock,
            partnership.partner_id,
            partnership.settings,
            local,
            headers,
            body,
        )
    if partnership is None:
        log.warning("AS2 message %s refused: no partnership %r -> %r", message_id, as2_from, as2_to)
        return refuse(as2.UnknownPartnership(f"no partnership from {as2_from!r} to {as2_to!r}"))

    settings = partnership.settings
    clock = request.app[GATEWAY].clock
    incoming = Incoming(
        headers,
        message_id,
        as2_from,
        as2_to,
        require_signature=not settings.accept_unsigned,
        require_encryption=not settings.accept_unencrypted,
        max_decompressed_bytes=limit,
        now=clock(),
    )
    certs = settings.loaded_certificates()
    pool = request.app[GATEWAY].as2_pool
    if pool is not None and pool.takes(body):
        opened = await pool.open(certs, incoming, body)
    elif len(body) > THREAD_THRESHOLD:
        opened = await asyncio.to_thread(open_and_answer, local, certs, incoming, body)
    else:
        opened = open_and_answer(local, certs, incoming, body)
    if isinstance(opened, Refused):
        exc = opened.error
        if opened.unexpected is not None:
            log.error(
                "AS2 message %s from %s could not be opened:\n%s",
                message_id,
                partnership.partner_id,
                opened.unexpected,
            )
        else:
            log.warning(
                "AS2 message %s from %s refused: %s (%s)",
                message_id,
                partnership.partner_id,
                exc.reason,
                exc.disposition,
            )
        metrics.as2_refusal(partnership.partner_id, exc.disposition.value)
        return _answer(opened.mdn, wants_mdn)
    msg = opened

    # The received bytes (the evidence), the payload, the message row and the MDN's
    # record (with the asynchronous MDN's outbox row) are made durable in one
    # intake batch: after a crash there is either all of it or nothing.
    evidence_ref = await request.app[RAWSTORE].stage(_one(body), limit=limit)
    # asynchronous only for a verified sender: the URL is the partner's to choose
    async_url = (
        as2_async_mdn.usable_url(request.headers.get("Receipt-Delivery-Option")) if msg.signed else None
    )
    mdn = msg.mdn
    detail = {
        "as2_message_id": message_id,
        "as2_from": as2_from,
        "as2_to": as2_to,
        "layers": list(msg.layers),
        "signer": msg.signer,
        "mic": msg.mic.header_value(),
        "disposition": as2.Disposition().render(),
        "mdn_message_id": mdn.headers["Message-ID"],
        "mdn_requested": wants_mdn,
        "mdn_async_url": async_url if wants_mdn else None,
        "mdn_signed": "multipart/signed" in mdn.headers["Content-Type"],
        "mdn_headers": mdn.headers,
        "mdn_body": base64.b64encode(mdn.body).decode("ascii"),
        "received_sha256": evidence_ref.sha256,
        "received_headers": {k: v for k in EVIDENCE_HEADERS if (v := request.headers.get(k)) is not None},
    }
    queue_async = wants_mdn and async_url is not None

    def mdn_rows(stored_id: str) -> list[ExtraRow]:
        now = clock()
        rows: list[ExtraRow] = [
            (MessageEvent, {"message_id": stored_id, "at": now, "state": "mdn_sent", "detail": detail})
        ]
        if queue_async and async_url is not None:
            row = as2_async_mdn.outbox_row(
                partner_id=partnership.partner_id, message_id=stored_id, url=async_url,
                headers=mdn.headers, body=mdn.body, now=now,
            )  # fmt: skip
            rows.append((OutboxItem, row))
        return rows

    try:
        accepted = await request.app[INTAKE].accept(
            partner_id=partnership.partner_id,
            channel="as2",
            transport_id=message_id,
            idempotency_key=message_id,
            body=_one(msg.payload),
            limit=limit,
            kind="x12",
            also_store=[evidence_ref],
            also=mdn_rows,
            # Resends are rare; the unique key still finds one at commit (that batch
            # then settles one accept at a time). Saves a database read per message.
            look_up_key=False,
        )
    except PayloadTooLarge as exc:
        return refuse(as2.LimitExceeded(f"the payload is larger than {exc.limit} bytes"))
    except IdempotencyConflict as exc:
        log.warning(
            "AS2 Message-ID %s from %s reused for different content", message_id, partnership.partner_id
        )
        return refuse(
            as2.AS2Error(f"Message-ID already used for message {exc.message_id} with different content")
        )

    if not accepted.created:
        db = request.app[DATABASE]
        stored = await _stored_mdn(db, accepted.message_id, wait=DUPLICATE_WAIT_SECONDS)
        if stored is not None:
            log.info(
                "AS2 Message-ID %s from %s again: the same MDN answered", message_id, partnership.partner_id
            )
            return _answer(stored, wants_mdn and async_url is None)
        # Stored by a version that recorded the MDN after the commit, and a crash
        # came between: record this one now.
        await request.app[RAWSTORE].write_bytes(body, limit=limit)  # the evidence again
        async with db.write() as conn:
            for model, row in mdn_rows(accepted.message_id):
                await conn.execute(insert(model).values(**row))
    if queue_async:
        return web.Response(status=200)  # the as2-mdn schedule sends it within seconds
    return _answer(mdn, wants_mdn)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _find(request: web.Request, as2_from: str, as2_to: str, local: As2Local) -> _Partnership | None:
    if as2_to != local.id:
        return None
    directory = request.app[PARTNERS].current
    for entry in directory.entries.values() if directory is not None else ():
        settings = entry.transport.as2
        if settings is not None and settings.id == as2_from:
            return _Partnership(entry.profile.id, settings)
    return None


async def _stored_mdn(db: Any, message_id: str, *, wait: float = 0.0) -> as2.OutgoingMdn | None:
    """The MDN first answered for ``message_id``. A resend racing the first request
    (accepted, MDN not yet recorded) waits up to ``wait`` seconds for it; after a
    crash between the two there is none, and a new one is built and kept."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        async with db.read() as conn:
            row = (
                await conn.execute(
                    select(MessageEvent.detail)
                    .where(MessageEvent.message_id == message_id, MessageEvent.state == "mdn_sent")
                    .order_by(MessageEvent.id)
                    .limit(1)
                )
            ).first()
        if row is not None or loop.time() >= deadline:
            break
        await asyncio.sleep(0.1)
    if row is None or not row[0]:
        return None
    detail = row[0]
    return as2.OutgoingMdn(dict(detail["mdn_headers"]), base64.b64decode(detail["mdn_body"]))


def _error_mdn(
    local: As2Local,
    message_id: str,
    as2_from: str,
    as2_to: str,
    receipt: as2.ReceiptRequest,
    error: as2.AS2Error,
    metrics: Metrics,
    partner_id: str | None = None,
) -> as2.OutgoingMdn:
    metrics.as2_refusal(partner_id or "unknown", error.disposition.value)
    return build_mdn(local, message_id, as2_from, as2_to, receipt, as2.Disposition.for_error(error), None)


def _answer(mdn: as2.OutgoingMdn, wants_mdn: bool) -> web.Response:
    if not wants_mdn:
        return web.Response(status=200)
    return web.Response(status=200, body=mdn.body, headers=mdn.headers)
