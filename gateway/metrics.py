"""``GET /metrics``: the gateway's state in the Prometheus text exposition format (0.0.4).

Three kinds of numbers:

- counted in this process since it started (:class:`Metrics`): ERP delivery
  failures by reason, ERP dead letters, partner delivery failures, and the
  processing latency histogram (message received -> its document delivered to
  the ERP, or confirmed through the feed);
- read from the database at scrape time (shared by every process on one
  database): messages by partner/direction/status, jobs ready, outbox items by
  status, dead letters, overdue acknowledgments, open order exceptions;
- and this process's state: ``gateway_partner_reload_failed`` (1 while the last
  partner profile reload was refused).

Written by hand (a few dozen lines) rather than adding prometheus_client. Never
puts a secret or a payload in a label; label values are partner ids and statuses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select

from gateway.db.engine import Database
from gateway.db.models import Document, Job, Message, OrderExceptionRow, OutboxItem

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(slots=True)
class Metrics:
    """Counters of this process."""

    erp_failures: Counter[str] = field(default_factory=Counter)
    erp_dead: int = 0
    partner_failures: Counter[str] = field(default_factory=Counter)
    as2_refused: Counter[tuple[str, str]] = field(default_factory=Counter)  # (partner, MDN modifier)
    sftp_host_key_refused: Counter[str] = field(default_factory=Counter)  # by partner id
    latency_counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0

    def erp_failure(self, reason: str) -> None:
        self.erp_failures[reason] += 1

    def erp_dead_letter(self) -> None:
        self.erp_dead += 1

    def partner_failure(self, partner_id: str) -> None:
        self.partner_failures[partner_id] += 1

    def as2_refusal(self, partner_id: str, modifier: str) -> None:
        self.as2_refused[(partner_id, modifier)] += 1

    def observe_latency(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.latency_sum += seconds
        self.latency_count += 1
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_counts[i] += 1
                break


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str | None) -> str:
    inner = ",".join(f'{k}="{_escape(v or "")}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str | None) -> None:
        number = repr(float(value)) if isinstance(value, float) else str(value)
        self.lines.append(f"{name}{_labels(**labels)} {number}")


async def render(
    db: Database,
    metrics: Metrics,
    *,
    partner_reload_failed: bool = False,
    certificates: Sequence[tuple[str, str, int]] = (),
) -> str:
    out = _Out()
    async with db.read() as conn:
        by_status = (
            await conn.execute(
                select(Message.partner_id, Message.direction, Message.status, func.count())
                .group_by(Message.partner_id, Message.direction, Message.status)
                .order_by(Message.partner_id, Message.direction, Message.status)
            )
        ).all()
        jobs_ready = (await conn.execute(select(func.count()).where(Job.state == "ready"))).scalar_one()
        outbox = (
            await conn.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status))
        ).all()
        dead_docs = (
            await conn.execute(
                select(func.count())
                .select_from(Document)
                .join(Message, Message.id == Document.message_id)
                .where(
                    Document.direction == "in",
                    Document.status.not_in(
                        ("delivered", "cancelled")
                    ),  # cancelled: given up on by an operator
                    Document.last_error.is_not(None),
                    Message.status.in_(("failed", "partly_delivered")),  # as gateway.erp.dead_letters
                )
            )
        ).scalar_one()
        feed_waiting = (
            await conn.execute(select(func.count()).where(Document.status == "available"))
        ).scalar_one()
        order_exceptions = (
            await conn.execute(
                select(OrderExceptionRow.partner_id, OrderExceptionRow.kind, func.count())
                .where(OrderExceptionRow.closed_at.is_(None))
                .group_by(OrderExceptionRow.partner_id, OrderExceptionRow.kind)
                .order_by(OrderExceptionRow.partner_id, OrderExceptionRow.kind)
            )
        ).all()

    out.family("gateway_messages", "gauge", "Messages stored, by partner, direction and current status.")
    for partner_id, direction, status, count in by_status:
        out.sample("gateway_messages", count, partner=partner_id, direction=direction, status=status)
    overdue = sum(
        count for _, direction, status, count in by_status if direction == "out" and status == "overdue"
    )
    out.family("gateway_acks_overdue", "gauge", "Outbound messages whose 997/999 is overdue.")
    out.sample("gateway_acks_overdue", overdue)

    outbox_counts = {status: count for status, count in outbox}
    out.family(
        "gateway_queue_depth", "gauge", "Work waiting: pipeline jobs ready, outbox items, feed documents."
    )
    out.sample("gateway_queue_depth", jobs_ready, queue="jobs_ready")
    for status in ("held", "pending", "sending", "failed"):
        out.sample("gateway_queue_depth", outbox_counts.get(status, 0), queue=f"outbox_{status}")
    out.sample("gateway_queue_depth", feed_waiting, queue="erp_feed_available")
    out.family(
        "gateway_dead_letters",
        "gauge",
        "Dead letters waiting for an operator (ERP documents, partner deliveries).",
    )
    out.sample("gateway_dead_letters", dead_docs, target="erp")
    out.sample("gateway_dead_letters", outbox_counts.get("failed", 0), target="partner")
    out.family(
        "gateway_order_exceptions", "gauge", "Open order exceptions, by partner and kind (docs/orders.md)."
    )
    for partner_id, kind, count in order_exceptions:
        out.sample("gateway_order_exceptions", count, partner=partner_id, kind=kind)

    out.family(
        "gateway_partner_reload_failed",
        "gauge",
        "1 while the last partner profile reload was refused (the previous profiles stay in use; see /readyz).",
    )
    out.sample("gateway_partner_reload_failed", int(partner_reload_failed))

    out.family(
        "gateway_erp_delivery_failures_total",
        "counter",
        "Failed ERP webhook attempts by reason (this process).",
    )
    for reason, count in sorted(metrics.erp_failures.items()):
        out.sample("gateway_erp_delivery_failures_total", count, reason=reason)
    out.family("gateway_erp_dead_letters_total", "counter", "ERP documents dead-lettered (this process).")
    out.sample("gateway_erp_dead_letters_total", metrics.erp_dead)
    out.family(
        "gateway_partner_delivery_failures_total",
        "counter",
        "Failed REST deliveries to partners (this process).",
    )
    for partner_id, count in sorted(metrics.partner_failures.items()):
        out.sample("gateway_partner_delivery_failures_total", count, partner=partner_id)

    out.family(
        "gateway_as2_refused_total", "counter", "AS2 messages answered with an error MDN (this process)."
    )
    for (partner_id, reason), count in sorted(metrics.as2_refused.items()):
        out.sample("gateway_as2_refused_total", count, partner=partner_id, reason=reason)
    if certificates:
        out.family(
            "gateway_certificate_expiry_days",
            "gauge",
            "Days until each AS2 certificate expires (ours and partners').",
        )
        for owner, subject, days in certificates:
            out.sample("gateway_certificate_expiry_days", days, owner=owner, subject=subject)
    out.family(
        "gateway_sftp_host_key_refused_total", "counter",
        "Connections to a partner's SFTP server refused because its host key is not the pinned one.",
    )  # fmt: skip
    for partner_id, count in sorted(metrics.sftp_host_key_refused.items()):
        out.sample("gateway_sftp_host_key_refused_total", count, partner=partner_id)

    name = "gateway_processing_seconds"
    out.family(name, "histogram", "Time from receiving a message to its delivery into the ERP.")
    cumulative = 0
    for bound, count in zip(LATENCY_BUCKETS, metrics.latency_counts, strict=True):
        cumulative += count
        out.sample(f"{name}_bucket", cumulative, le=repr(bound))
    out.sample(f"{name}_bucket", metrics.latency_count, le="+Inf")
    out.sample(f"{name}_sum", round(metrics.latency_sum, 6))
    out.sample(f"{name}_count", metrics.latency_count)
    return "\n".join(out.lines) + "\n"
