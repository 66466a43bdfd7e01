"""``channel = "as2"``: we POST the X12 as an AS2 message to the partner's ``[as2] url``.

The message is wrapped per the partner's ``[as2]`` table (sign, encrypt, compress,
algorithms) with the newest valid key of ours and certificate of theirs. Its
Message-ID is ``<outbox item id@our domain>``: a resend after a crash or a retry
carries the same id, so the partner can drop the duplicate.

Outcomes. 5xx, 408/425/429 and network errors: transient. Another non-2xx:
permanent. With ``mdn = "sync"`` the answer must be an MDN for this Message-ID,
signed by a certificate of theirs when ``mdn_signed``, with ``processed`` and the
MIC we computed: then sent. An error disposition, a wrong MIC or an unverified
signature is permanent (the partner refused it or cannot be held to it); an
unreadable MDN is transient. Every MDN read is recorded on the message's timeline
(``mdn_received``: disposition, MIC match, signature). With ``mdn = "async"`` or
``"none"``, a 2xx is sent.

This module never touches the database: the sender records the outcome.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any, ClassVar

import aiohttp

import as2
from gateway.as2_settings import As2Local, As2PartnerSettings
from gateway.erp import RETRYABLE_STATUS, parse_retry_after, truncate
from gateway.ports import Clock, OutboundItem, SendOutcome, SendResult

# Build (sign + encrypt) payloads above this size in a thread, off the event loop.
THREAD_THRESHOLD = 100 * 1024
MAX_MDN_BYTES = 1024 * 1024


class As2Transport:
    channel: ClassVar[str] = "as2"
    push: ClassVar[bool] = True

    def __init__(self, clock: Clock, local: As2Local | None) -> None:
        self.clock = clock
        self.local = local
        self._http: aiohttp.ClientSession | None = None
        self._ssl: dict[str, ssl.SSLContext] = {}

    async def send(self, item: OutboundItem, partner: Any) -> SendResult:
        settings: As2PartnerSettings | None = partner.as2
        local = self.local
        if settings is None or partner.delivery.channel != self.channel:
            return SendResult(SendOutcome.PERMANENT, f"partner {item.partner_id} has no AS2 delivery now")
        if local is None:
            return SendResult(
                SendOutcome.PERMANENT, "no [as2] table in the gateway configuration (our AS2 id)"
            )
        if settings.mdn == "async" and not local.public_url:
            return SendResult(
                SendOutcome.PERMANENT, 'mdn = "async" needs as2.public_url in the gateway configuration'
            )
        now = self.clock()
        message_id = as2.make_message_id(local.domain, item.id)
        try:
            out = await _maybe_in_thread(
                len(item.payload),
                lambda: as2.build_message(
                    item.payload,
                    content_type="application/edi-x12",
                    filename=f"{item.kind}-{item.id}.edi",
                    options=settings.send_options(),
                    our_keys=local.keys,
                    partner_certs=settings.loaded_certificates(),
                    now=now,
                ),
            )
        except as2.CertificateError as exc:
            return SendResult(SendOutcome.PERMANENT, f"cannot build the AS2 message: {exc.reason}")
        ask_mdn = settings.mdn != "none"
        headers = {
            **as2.as2_headers(
                as2_from=local.id,
                as2_to=settings.id,
                message_id=message_id,
                subject=f"{item.kind} {item.interchange_control or ''}".strip(),
                receipt_to=(local.public_url or f"as2@{local.domain}") if ask_mdn else None,
                signed_receipt_micalg=out.mic.algorithm if ask_mdn and settings.mdn_signed else None,
                async_receipt_url=local.public_url if settings.mdn == "async" else None,
                date=now,
            ),
            **out.headers,
        }
        started = time.perf_counter()
        try:
            async with self._session().post(
                settings.url,
                data=out.body,
                headers=headers,
                ssl=self._ssl_for(settings),
                timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
            ) as resp:
                answer = await _read_capped(resp, MAX_MDN_BYTES)
                took = (time.perf_counter() - started) * 1000
                if not 200 <= resp.status < 300:
                    retryable = resp.status >= 500 or resp.status in RETRYABLE_STATUS
                    return SendResult(
                        SendOutcome.TRANSIENT if retryable else SendOutcome.PERMANENT,
                        f"HTTP {resp.status}: {truncate(answer.decode('latin-1'))}",
                        retry_after=parse_retry_after(resp.headers.get("Retry-After"), now),
                        status_code=resp.status,
                        transport_id=message_id,
                        duration_ms=took,
                    )
                if settings.mdn != "sync":
                    # what an asynchronous MDN is judged against (gateway.api.as2_mdn_inbound)
                    sent = {"message_id": message_id, "mic": out.mic.header_value(), "mdn": settings.mdn}
                    return SendResult(
                        SendOutcome.SENT,
                        f"HTTP {resp.status}",
                        status_code=resp.status,
                        transport_id=message_id,
                        duration_ms=took,
                        events=(("as2_sent", sent),),
                    )
                return judge_mdn(
                    dict(resp.headers), answer, settings, out.mic, message_id, resp.status, took, now
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            took = (time.perf_counter() - started) * 1000
            return SendResult(
                SendOutcome.TRANSIENT,
                f"{type(exc).__name__}: {exc}",
                transport_id=message_id,
                duration_ms=took,
            )

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    def _ssl_for(self, settings: As2PartnerSettings) -> ssl.SSLContext | bool:
        bundle, client = settings.ca_bundle_path(), settings.client_cert_paths()
        if bundle is None and client is None:
            return True
        key = f"{bundle}|{client}"
        if key not in self._ssl:
            context = ssl.create_default_context(cafile=str(bundle) if bundle is not None else None)
            if client is not None:
                context.load_cert_chain(*client)
            self._ssl[key] = context
        return self._ssl[key]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def judge_mdn(
    headers: dict[str, str],
    body: bytes,
    settings: As2PartnerSettings,
    mic: as2.Mic,
    message_id: str,
    status: int,
    took: float,
    now: Any,
) -> SendResult:
    """The outcome of a send from the synchronous MDN that answered it."""

    def result(outcome: SendOutcome, detail: str, *events: tuple[str, dict[str, Any]]) -> SendResult:
        return SendResult(
            outcome, detail, status_code=status, transport_id=message_id, duration_ms=took, events=events
        )

    try:
        report = as2.parse_mdn(headers, body, partner_certs=settings.loaded_certificates(), now=now)
    except as2.MdnError as exc:
        return result(SendOutcome.TRANSIENT, f"the answer is not a readable MDN: {exc.reason}")
    mic_ok = report.mic is not None and report.mic.matches(mic)
    evidence = {
        "message_id": message_id,
        "disposition": report.disposition.render(),
        "mic": report.mic.header_value() if report.mic else None,
        "mic_expected": mic.header_value(),
        "mic_matches": mic_ok,
        "signed": report.signed,
        "signature_verified": report.signature_verified,
        "text": truncate(report.text, 500),
    }
    event = ("mdn_received", evidence)
    if report.original_message_id is not None and report.original_message_id.strip("<>") != message_id.strip(
        "<>"
    ):
        return result(
            SendOutcome.TRANSIENT, f"the MDN is for {report.original_message_id}, not {message_id}", event
        )
    if not report.disposition.ok:
        what = report.disposition.modifier or report.disposition.render()
        return result(
            SendOutcome.PERMANENT, f"MDN {report.disposition.type}/{report.disposition.kind}: {what}", event
        )
    if settings.mdn_signed and report.signature_verified is not True:
        why = "unsigned" if not report.signed else "signed by no certificate of the partner's"
        return result(SendOutcome.PERMANENT, f"the MDN is {why} (mdn_signed = true)", event)
    if not mic_ok:
        return result(
            SendOutcome.PERMANENT,
            f"the MDN's MIC {evidence['mic']} is not ours ({mic.header_value()})",
            event,
        )
    return result(SendOutcome.SENT, f"MDN processed, MIC {mic.header_value()}", event)


async def _maybe_in_thread(size: int, build: Any) -> as2.OutgoingMessage:
    if size > THREAD_THRESHOLD:
        return await asyncio.to_thread(build)
    result: as2.OutgoingMessage = build()
    return result


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole answer, at most ``limit`` bytes (an MDN is a few KB)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
