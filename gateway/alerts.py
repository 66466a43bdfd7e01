"""Alerts: events worth a person's attention, posted to the ``[[alerts]]`` webhooks.

Events, each recorded once in ``alert_events`` under its idempotency key (unique):

- ``exception_opened`` / ``exception_closed``: an order exception (docs/orders.md),
  recorded by gateway.orders in the transaction that opens or closes it;
- ``dead_letter``: an ERP document or a partner delivery given up on;
- ``certificate_expiring``: an AS2 certificate (ours or a partner's) within
  ``[alerting] certificate_days`` of its end;
- ``partner_silent``: nothing from a partner for longer than its usual gap allows.

The last three are found by :meth:`Alerts.watch` (a scheduled task); recording is
``INSERT ... ON CONFLICT DO NOTHING`` on the key, so noticing an event again is a
no-op. :meth:`Alerts.dispatch` fans each new event out to the targets configured at
that moment (one ``alert_deliveries`` row per target, unique), and
:meth:`Alerts.send_due` posts them with the ERP webhook's retry policy
(gateway.runner.Backoff: 5xx, 408, 425, 429 and network errors retried, Retry-After
honoured; another 4xx or giving up marks the delivery ``failed``). Each request
carries the Standard Webhooks headers (gateway.domain.alerts): ``webhook-id`` is the
event's key, the same on every retry, so a receiver that saw it already answers 2xx
and does nothing; with the order's ``X-Correlation-ID``.

Secrets are read once at start (``env:NAME``, ``file:/path`` or the literal) and
never logged. This module never changes an order, a message or a delivery.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from sqlalchemy import insert, select, update

from gateway.config import AlertingSettings, AlertTarget, ConfigError
from gateway.db.engine import Database
from gateway.db.ids import new_id
from gateway.db.models import Message
from gateway.db.models_alerts import AlertDelivery, AlertEventRow
from gateway.domain import alerts as domain
from gateway.domain.alerts import AlertKind
from gateway.domain.states import ALERT, AlertStatus
from gateway.erp import RETRYABLE_STATUS, dead_letters, parse_retry_after, truncate
from gateway.runner import Backoff

log = logging.getLogger(__name__)
SEND_BATCH = 100
DISPATCH_BATCH = 500


# --------------------------------------------------------------------------- recording


def event(
    kind: AlertKind,
    key: str,
    at: datetime,
    detail: dict[str, Any],
    *,
    partner_id: str | None = None,
    po_number: str | None = None,
) -> dict[str, Any]:
    """An ``alert_events`` row."""
    return {
        "id": new_id(),
        "event_key": key[:200],
        "kind": str(kind),
        "partner_id": partner_id,
        "po_number": po_number,
        "correlation_id": domain.correlation_id(partner_id, po_number) if partner_id and po_number else None,
        "at": at,
        "detail": detail,
        "dispatched_at": None,
    }


async def record(conn: Any, events: Sequence[dict[str, Any]]) -> None:
    """Insert ``events``; one whose key is known already is left as it is. Runs in the
    caller's transaction (a session or a connection)."""
    if not events:
        return
    dialect: Any
    bind = conn.get_bind() if hasattr(conn, "get_bind") else conn
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect
    stmt = dialect.insert(AlertEventRow).on_conflict_do_nothing(index_elements=["event_key"])
    await conn.execute(stmt, list(events))


def exception_event(opened: bool, row: Any, now: datetime) -> dict[str, Any]:
    """The event of an order exception row (an ORM row or a dict) opening or closing."""

    def get(name: str) -> Any:
        return row[name] if isinstance(row, dict) else getattr(row, name)

    kind = AlertKind.EXCEPTION_OPENED if opened else AlertKind.EXCEPTION_CLOSED
    detail = {
        "exception_id": get("id"),
        "kind": get("kind"),
        "subject": get("subject") or None,
        "since": get("since").isoformat(),
        "documents": list(get("documents") or ()),
        "detail": get("detail") or {},
    }
    if not opened:
        detail["closed_at"] = now.isoformat()
    return event(
        kind,
        domain.exception_key(kind, get("id")),
        now,
        detail,
        partner_id=get("partner_id"),
        po_number=get("po_number"),
    )


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class Target:
    """An ``[[alerts]]`` entry, its secret resolved."""

    name: str
    url: str
    secret: str | None
    events: frozenset[str]
    partners: frozenset[str]
    link_base_url: str | None
    timeout: float
    backoff: Backoff

    def wants(self, kind: str, partner_id: str | None) -> bool:
        if kind not in self.events:
            return False
        return not self.partners or partner_id is None or partner_id in self.partners

    def __repr__(self) -> str:  # never the secret
        return f"Target({self.name!r}, {self.url!r})"


def resolve_secret(value: str) -> str:
    """``env:NAME`` (the variable), ``file:/path`` (its contents, stripped) or the literal."""
    if value.startswith("env:"):
        name = value[4:]
        found = os.environ.get(name)
        if not found:
            raise ConfigError(f"alerts.secret: environment variable {name} is not set")
        return found
    if value.startswith("file:"):
        path = Path(value[5:])
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"alerts.secret: cannot read {path}: {exc.strerror}") from None
        if not text:
            raise ConfigError(f"alerts.secret: {path} is empty")
        return text
    return value


def build_targets(entries: Sequence[AlertTarget]) -> list[Target]:
    """The configured targets; a duplicate name or an unreadable secret is a ConfigError."""
    targets: list[Target] = []
    for entry in entries:
        name = entry.name or "alert-" + hashlib.sha256(entry.url.encode()).hexdigest()[:10]
        if any(t.name == name for t in targets):
            raise ConfigError(f"alerts.name: two [[alerts]] entries are named {name!r}")
        targets.append(
            Target(
                name=name,
                url=entry.url,
                secret=resolve_secret(entry.secret.get_secret_value()) if entry.secret else None,
                events=frozenset(entry.events),
                partners=frozenset(entry.partners),
                link_base_url=entry.link_base_url.rstrip("/") if entry.link_base_url else None,
                timeout=entry.timeout_seconds,
                backoff=Backoff(
                    entry.max_attempts,
                    timedelta(hours=entry.max_age_hours),
                    entry.retry_base_seconds,
                    entry.retry_max_seconds,
                ),
            )
        )
    return targets


def order_path(partner_id: str, po_number: str) -> str:
    return f"/api/v1/orders/{quote(partner_id, safe='')}/{quote(po_number, safe='')}"


def payload(target: Target, row: Any) -> dict[str, Any]:
    """What one target receives for one event (docs/operations.md, Alerts)."""
    link = None
    if row.partner_id and row.po_number:
        link = (target.link_base_url or "") + order_path(row.partner_id, row.po_number)
    return {
        "id": row.event_key,
        "type": row.kind,
        "timestamp": row.at.isoformat(),
        "partner_id": row.partner_id,
        "po_number": row.po_number,
        "correlation_id": row.correlation_id,
        "order_url": link,
        "data": row.detail,
    }


# --------------------------------------------------------------------------- the service part


class Alerts:
    """Watches, dispatches and sends (see the module doc). Built by gateway.bootstrap."""

    def __init__(
        self,
        db: Database,
        targets: Sequence[Target],
        rules: AlertingSettings,
        *,
        clock: Callable[[], datetime],
        partners: Callable[[], Any],
        as2: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.targets = {t.name: t for t in targets}
        self.rules = rules
        self.clock = clock
        self.partners = partners
        self.as2 = as2
        self.rng = rng
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _wanted(self, kind: AlertKind) -> bool:
        return any(kind in t.events for t in self.targets.values())

    async def run(self) -> int:
        """One pass: dispatch new events, then send what is due. Returns alerts sent.
        Passes of one process take turns (the schedule keeps other instances out)."""
        async with self._lock:
            await self.dispatch()
            return await self.send_due()

    # ----------------------------------------------------------------- watch

    async def watch(self) -> int:
        """Record the events time and state bring (dead letters, certificates, silence);
        returns how many were noticed (known ones included)."""
        now = self.clock()
        found: list[dict[str, Any]] = []
        if self._wanted(AlertKind.DEAD_LETTER):
            found += await self._dead_letters(now)
        if self._wanted(AlertKind.CERTIFICATE_EXPIRING):
            found += self._certificates(now)
        if self._wanted(AlertKind.PARTNER_SILENT):
            found += await self._silent_partners(now)
        if found:
            async with self.db.begin() as session:
                await record(session, found)
        return len(found)

    async def _dead_letters(self, now: datetime) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(20):  # at most 10,000 per pass; the rest next time
            page = await dead_letters(self.db, limit=500, after=after)
            if not page:
                break
            for item in page:
                po = item["business_number"] if item["kind"] == "order" else None
                found.append(
                    event(
                        AlertKind.DEAD_LETTER,
                        domain.dead_letter_key(item["type"], item["id"], int(item["attempts"] or 0)),
                        now,
                        {
                            k: item[k]
                            for k in (
                                "type",
                                "id",
                                "message_id",
                                "kind",
                                "business_number",
                                "attempts",
                                "last_error",
                            )
                        },
                        partner_id=item["partner_id"],
                        po_number=po,
                    )
                )
            after = page[-1]["id"]
        return found

    def _certificates(self, now: datetime) -> list[dict[str, Any]]:
        found = []
        for owner, cert in _certificates(self.as2, self.partners()):
            left = cert.not_valid_after_utc - now
            if left > timedelta(days=self.rules.certificate_days):
                continue
            found.append(
                event(
                    AlertKind.CERTIFICATE_EXPIRING,
                    domain.certificate_key(owner, cert.serial_number, cert.not_valid_after_utc),
                    now,
                    {
                        "owner": owner,
                        "subject": cert.subject.rfc4514_string(),
                        "serial": format(cert.serial_number, "x"),
                        "not_after": cert.not_valid_after_utc.isoformat(),
                        "days_left": left.days,
                    },
                    partner_id=None if owner == "ours" else owner,
                )
            )
        return found

    async def _silent_partners(self, now: datetime) -> list[dict[str, Any]]:
        directory = self.partners()
        ids = sorted(p.id for p in directory) if directory is not None else []
        found = []
        async with self.db.read() as conn:
            for partner_id in ids:
                rows = (
                    await conn.execute(
                        select(Message.id, Message.received_at)
                        .where(Message.partner_id == partner_id, Message.direction == "in")
                        .order_by(Message.received_at.desc(), Message.id.desc())
                        .limit(self.rules.silence_history)
                    )
                ).all()
                arrivals = [r.received_at for r in rows]
                quiet = domain.silent_for(
                    arrivals,
                    now,
                    factor=self.rules.silence_factor,
                    minimum=timedelta(hours=self.rules.silence_min_hours),
                )
                if quiet is None:
                    continue
                gap = domain.usual_gap(arrivals)
                found.append(
                    event(
                        AlertKind.PARTNER_SILENT,
                        domain.silence_key(partner_id, rows[0].id),
                        now,
                        {
                            "last_message_id": rows[0].id,
                            "last_at": rows[0].received_at.isoformat(),
                            "silent_hours": round(quiet.total_seconds() / 3600, 2),
                            "usual_gap_hours": round(gap.total_seconds() / 3600, 2) if gap else None,
                        },
                        partner_id=partner_id,
                    )
                )
        return found

    # ----------------------------------------------------------------- dispatch

    async def dispatch(self) -> int:
        """Give each new event one delivery per target that wants it; returns deliveries made."""
        made = 0
        while True:
            now = self.clock()
            async with self.db.read() as conn:  # most passes find nothing: no write lock for them
                waiting = (
                    await conn.execute(
                        select(AlertEventRow.id).where(AlertEventRow.dispatched_at.is_(None)).limit(1)
                    )
                ).first()
            if waiting is None:
                return made
            async with self.db.begin() as session:
                rows = (
                    await session.execute(
                        select(AlertEventRow.id, AlertEventRow.kind, AlertEventRow.partner_id)
                        .where(AlertEventRow.dispatched_at.is_(None))
                        .order_by(AlertEventRow.id)
                        .limit(DISPATCH_BATCH)
                    )
                ).all()
                if not rows:
                    return made
                deliveries = [
                    {
                        "id": new_id(),
                        "event_id": r.id,
                        "target": t.name,
                        "status": AlertStatus.PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                    for r in rows
                    for t in self.targets.values()
                    if t.wants(r.kind, r.partner_id)
                ]
                if deliveries:
                    await session.execute(insert(AlertDelivery), deliveries)
                await session.execute(
                    update(AlertEventRow)
                    .where(AlertEventRow.id.in_([r.id for r in rows]))
                    .values(dispatched_at=now)
                )
            made += len(deliveries)

    # ----------------------------------------------------------------- send

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16))
        return self._http

    async def send_due(self) -> int:
        """Post every due delivery (a batch at a time); returns how many were taken (2xx)."""
        sent = 0
        while True:
            now = self.clock()
            async with self.db.read() as conn:
                due = (
                    await conn.execute(
                        select(
                            AlertDelivery.id,
                            AlertDelivery.target,
                            AlertDelivery.attempts,
                            AlertDelivery.first_attempt_at,
                            AlertEventRow.event_key,
                            AlertEventRow.kind,
                            AlertEventRow.at,
                            AlertEventRow.partner_id,
                            AlertEventRow.po_number,
                            AlertEventRow.correlation_id,
                            AlertEventRow.detail,
                        )
                        .join(AlertEventRow, AlertEventRow.id == AlertDelivery.event_id)
                        .where(
                            AlertDelivery.status == AlertStatus.PENDING, AlertDelivery.next_attempt_at <= now
                        )
                        .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
                        .limit(SEND_BATCH)
                    )
                ).all()
            if not due:
                return sent
            outcomes = await asyncio.gather(*(self._post(row, now) for row in due))
            async with self.db.begin() as session:
                for values in outcomes:
                    delivery_id, status = values.pop("id"), values["status"]
                    await session.execute(
                        update(AlertDelivery)
                        .where(
                            AlertDelivery.id == delivery_id, AlertDelivery.status.in_(ALERT.sources(status))
                        )
                        .values(**values)
                    )
            taken = sum(1 for v in outcomes if v["status"] == AlertStatus.SENT)
            sent += taken
            if len(due) < SEND_BATCH or taken == 0:
                return sent

    async def _post(self, row: Any, now: datetime) -> dict[str, Any]:
        """One try of one delivery (``row``: its columns and its event's): the
        delivery's new column values, with its id."""
        delivery = row
        target = self.targets.get(delivery.target)
        attempt = delivery.attempts + 1
        first = delivery.first_attempt_at or now
        base = {"id": delivery.id, "attempts": attempt, "first_attempt_at": first}
        extra = {"correlation_id": row.correlation_id, "partner_id": row.partner_id}
        if target is None:
            log.warning(
                "alert %s: target %s is no longer configured", row.event_key, delivery.target, extra=extra
            )
            return {**base, "status": AlertStatus.FAILED, "last_error": "target no longer configured"}
        body = orjson.dumps(payload(target, row))
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            domain.ID_HEADER: row.event_key,
            domain.TIMESTAMP_HEADER: str(timestamp),
            "Idempotency-Key": row.event_key,
        }
        if row.correlation_id:
            headers[domain.CORRELATION_HEADER] = row.correlation_id
        if target.secret:
            headers[domain.SIGNATURE_HEADER] = domain.sign(target.secret, row.event_key, timestamp, body)
        status: int | None = None
        answer = ""
        retry_after: float | None = None
        try:
            async with self._client().post(
                target.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=target.timeout)
            ) as resp:
                status = resp.status
                answer = truncate(await resp.text(errors="replace"))
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), now)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            answer = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if status is not None and 200 <= status < 300:
            log.info("alert %s sent to %s", row.event_key, target.name, extra=extra)
            return {
                **base,
                "status": AlertStatus.SENT,
                "sent_at": now,
                "last_status_code": status,
                "last_error": None,
            }
        what = truncate(f"HTTP {status}: {answer}" if status is not None else answer)
        retryable = status is None or status >= 500 or status in RETRYABLE_STATUS
        if retryable and not target.backoff.gives_up(attempt, first, now):
            delay = target.backoff.delay(attempt, retry_after, self.rng)
            return {
                **base,
                "status": AlertStatus.PENDING,
                "next_attempt_at": now + timedelta(seconds=delay),
                "last_status_code": status,
                "last_error": what,
            }
        log.error("alert %s to %s failed for good: %s", row.event_key, target.name, what, extra=extra)
        return {**base, "status": AlertStatus.FAILED, "last_status_code": status, "last_error": what}


def _certificates(local: Any, directory: Any) -> Iterable[tuple[str, Any]]:
    """(owner, certificate): ours (owner ``ours``) and every partner's AS2 certificates."""
    for pair in local.keys if local is not None else ():
        yield "ours", pair.certificate
    for entry in directory.entries.values() if directory is not None else ():
        settings = entry.transport.as2
        for cert in settings.loaded_certificates() if settings is not None else ():
            yield entry.profile.id, cert
