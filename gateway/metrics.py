"""``GET /metrics``: the gateway's state in the Prometheus text exposition format (0.0.4).

Three kinds of numbers:

- counted in this process since it started (:class:`Metrics`): ERP delivery
  failures by reason, ERP dead letters, partner delivery failures, and the
  processing latency histogram (message received -> its document delivered to
  the ERP, or confirmed through the feed);
- read from the database at scrape time (shared by every process on one
  database): messages by partner/direction/status, jobs ready, outbox items by
  status, dead letters, overdue acknowledgments, open order exceptions, and the
  order lifecycle's business figures (orders per milestone and state, the oldest
  open exception's age, order -> ASN and ASN -> invoice histograms, from each
  order's milestone columns);
- and this process's state: ``gateway_partner_reload_failed`` (1 while the last
  partner profile reload was refused).

Written by hand (a few dozen lines) rather than adding prometheus_client
(docs/decisions/0007-standard-webhooks.md says why). Never
puts a secret or a payload in a label; label values are partner ids and statuses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import case, false, func, select

from gateway.db.engine import Database
from gateway.db.models import Document, Job, JournaledPayload, Message, Order, OrderExceptionRow, OutboxItem
from gateway.db.models_alerts import AlertDelivery

HOUR = 3600.0
# order -> first ASN and first ASN -> first invoice: hours to a month
MILESTONE_BUCKETS = tuple(h * HOUR for h in (1, 4, 12, 24, 48, 72, 120, 168, 336, 720))
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
    sftp_login_refused: Counter[tuple[str, str]] = field(default_factory=Counter)  # (partner, reason)
    sftp_connections_refused: Counter[str] = field(default_factory=Counter)  # by reason (a limit)
    sftp_drop_box_restarts: int = 0  # the drop-box process died and was started again
    sftp_unconfirmed: Counter[str] = field(default_factory=Counter)  # unmarked files set aside, by partner
    sftp_log_suppressed: Counter[str] = field(default_factory=Counter)  # drop-box log lines dropped, by level
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

    def counter(self, name: str, help_text: str, counts: Counter[str], label: str) -> None:
        """A counter family with one label, a sample per value counted (sorted)."""
        self.family(name, "counter", help_text)
        for value, count in sorted(counts.items()):
            self.sample(name, count, **{label: value})


async def render(
    db: Database,
    metrics: Metrics,
    *,
    partner_reload_failed: bool = False,
    certificates: Sequence[tuple[str, str, int]] = (),
    intake: tuple[int, int] | None = None,
    now: datetime | None = None,
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
        journal_rows = (  # the partial index ix_raw_journal_replay: kept rows are not counted
            await conn.execute(select(func.count()).where(JournaledPayload.kept == false()))
        ).scalar_one()
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

    await _business(db, out, now)

    out.family(
        "gateway_partner_reload_failed",
        "gauge",
        "1 while the last partner profile reload was refused (the previous profiles stay in use; see /readyz).",
    )
    out.sample("gateway_partner_reload_failed", int(partner_reload_failed))

    out.counter(
        "gateway_erp_delivery_failures_total",
        "Failed ERP webhook attempts by reason (this process).",
        metrics.erp_failures,
        "reason",
    )
    out.family("gateway_erp_dead_letters_total", "counter", "ERP documents dead-lettered (this process).")
    out.sample("gateway_erp_dead_letters_total", metrics.erp_dead)
    out.counter(
        "gateway_partner_delivery_failures_total",
        "Failed REST deliveries to partners (this process).",
        metrics.partner_failures,
        "partner",
    )

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
    out.counter(
        "gateway_sftp_host_key_refused_total",
        "Connections to a partner's SFTP server refused because its host key is not the pinned one.",
        metrics.sftp_host_key_refused, "partner",
    )  # fmt: skip
    out.family(
        "gateway_sftp_password_refused_total", "counter",
        "Password logins to the SFTP drop box refused: wrong_password, no_password (the profile "
        "has none), rate_limited (too many failures from that address).",
    )  # fmt: skip
    for (partner_id, reason), count in sorted(metrics.sftp_login_refused.items()):
        out.sample("gateway_sftp_password_refused_total", count, partner=partner_id, reason=reason)
    out.counter(
        "gateway_sftp_connections_refused_total",
        "Connections to the SFTP drop box refused by a limit: max_startups (too many not logged "
        "in: closed at once), max_connections (all partners), max_connections_per_partner "
        "(refused at login).",
        metrics.sftp_connections_refused, "reason",
    )  # fmt: skip
    out.family(
        "gateway_sftp_drop_box_restarts_total", "counter",
        "Times the SFTP drop-box process died and was started again (its closed files are "
        "taken by the sweep).",
    )  # fmt: skip
    out.sample("gateway_sftp_drop_box_restarts_total", metrics.sftp_drop_box_restarts)
    out.counter(
        "gateway_sftp_unconfirmed_total",
        "Files found in a hosted /inbound without the mark of an answered CLOSE while "
        "sync_uploads is on: not taken, moved to the partner's .unconfirmed folder (docs/sftp.md).",
        metrics.sftp_unconfirmed, "partner",
    )  # fmt: skip
    out.counter(
        "gateway_sftp_log_lines_suppressed_total",
        "Log lines of the SFTP drop-box process not written: more than 100 at once or 10 a "
        "second of one logger and level (a summary line says how many).",
        metrics.sftp_log_suppressed, "level",
    )  # fmt: skip

    if intake is not None:  # (group commits, messages accepted): their ratio is the batch size
        out.family("gateway_intake_commits_total", "counter", "Intake group commits (this process).")
        out.sample("gateway_intake_commits_total", intake[0])
        out.family(
            "gateway_intake_accepted_total", "counter", "Messages accepted by the intake (this process)."
        )
        out.sample("gateway_intake_accepted_total", intake[1])

    out.family(
        "gateway_raw_journal_rows", "gauge",
        "Journal rows from before migration 0014 not yet replayed to their files (all raw "
        "stores): 0 once a process of each raw store has started. Small payloads kept in "
        "the database are not counted.",
    )  # fmt: skip
    out.sample("gateway_raw_journal_rows", journal_rows)

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


async def _business(db: Database, out: _Out, now: datetime | None) -> None:
    """The order lifecycle's figures, from the ``orders`` and ``order_exceptions`` rows
    (so every instance answers the same, and a restart loses nothing)."""
    now = now or datetime.now(UTC)
    spans = (("order_to_asn", Order.order_to_asn_seconds), ("asn_to_invoice", Order.asn_to_invoice_seconds))
    async with db.read() as conn:
        reached = (
            await conn.execute(
                select(
                    Order.partner_id,
                    func.count(Order.ordered_at),
                    func.count(Order.acknowledged_at),
                    func.count(Order.shipped_at),
                    func.count(Order.invoiced_at),
                )
                .group_by(Order.partner_id)
                .order_by(Order.partner_id)
            )
        ).all()
        states = (
            await conn.execute(
                select(Order.partner_id, Order.state, func.count())
                .group_by(Order.partner_id, Order.state)
                .order_by(Order.partner_id, Order.state)
            )
        ).all()
        alerts = dict(
            (
                await conn.execute(
                    select(AlertDelivery.status, func.count())
                    .where(AlertDelivery.status != "sent")
                    .group_by(AlertDelivery.status)
                )
            ).all()
        )
        oldest = (
            await conn.execute(
                select(func.min(OrderExceptionRow.since)).where(OrderExceptionRow.closed_at.is_(None))
            )
        ).scalar_one()
        histograms = {
            name: (
                await conn.execute(
                    select(
                        Order.partner_id,
                        *(func.sum(case((column <= bound, 1), else_=0)) for bound in MILESTONE_BUCKETS),
                        func.count(column),
                        func.coalesce(func.sum(column), 0.0),
                    )
                    .where(column.is_not(None))
                    .group_by(Order.partner_id)
                    .order_by(Order.partner_id)
                )
            ).all()
            for name, column in spans
        }
    out.family(
        "gateway_orders",
        "gauge",
        "Orders stored that reached each milestone (received: an 850; acknowledged: our 855; "
        "shipped: an 856; invoiced: an 810), by partner.",
    )
    for partner_id, received, acknowledged, shipped, invoiced in reached:
        for milestone, count in (
            ("received", received),
            ("acknowledged", acknowledged),
            ("shipped", shipped),
            ("invoiced", invoiced),
        ):
            out.sample("gateway_orders", count, partner=partner_id, milestone=milestone)
    out.family("gateway_orders_by_state", "gauge", "Orders stored by partner and state (docs/orders.md).")
    for partner_id, state, count in states:
        out.sample("gateway_orders_by_state", count, partner=partner_id, state=state)
    out.family(
        "gateway_order_exception_oldest_seconds", "gauge", "Age of the oldest open order exception (0: none)."
    )
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    out.sample(
        "gateway_order_exception_oldest_seconds",
        round(max(0.0, (now - oldest).total_seconds()), 3) if oldest is not None else 0,
    )
    out.family(
        "gateway_alerts",
        "gauge",
        "Alert deliveries not yet taken by their webhook: pending (first try or a retry), failed (given up).",
    )
    for status in ("pending", "failed"):
        out.sample("gateway_alerts", alerts.get(status, 0), status=status)
    for name, rows in histograms.items():
        metric = f"gateway_order_{name}_seconds"
        what = (
            "an order's 850 to its first 856" if name == "order_to_asn" else "its first 856 to its first 810"
        )
        out.family(metric, "histogram", f"Time from {what}, by partner.")
        for partner_id, *counts in rows:
            *buckets, count, total = counts
            for bound, cumulative in zip(MILESTONE_BUCKETS, buckets, strict=True):
                out.sample(f"{metric}_bucket", int(cumulative or 0), partner=partner_id, le=repr(bound))
            out.sample(f"{metric}_bucket", count, partner=partner_id, le="+Inf")
            out.sample(f"{metric}_sum", round(float(total), 3), partner=partner_id)
            out.sample(f"{metric}_count", count, partner=partner_id)
