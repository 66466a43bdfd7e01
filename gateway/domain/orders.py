"""The order lifecycle, derived: which business keys a document carries, and what
an order's linked documents say about it (state, quantities per line, exceptions).

Everything here is a pure function of its arguments: documents in (as the
canonical ``document`` dicts the database stores), values out. No clock is read
(``now`` is passed in), nothing is stored; gateway.orders does the I/O.

Line matching: a shipped or invoiced line belongs to the order line with the same
line number, else to the first order line sharing a product id; otherwise it was
not ordered. Quantities are Decimals here and decimal strings in the views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

# key_kind values of gateway.db document_keys
PO, SHIPMENT, INVOICE, BOL, TRACKING, SSCC = "po", "shipment", "invoice", "bol", "tracking", "sscc"
INTERCHANGE, GROUP, TRANSPORT = "interchange", "group", "transport"
TRACKING_REFS = {"CN", "2I"}  # REF qualifiers of a carrier tracking number
BOL_REFS = {"BM"}

STATES = (
    "received",
    "acknowledged",
    "partially_shipped",
    "shipped",
    "invoiced",
    "closed",
    "cancelled",
    "exception",
)
EXCEPTION_KINDS = (
    "not_acknowledged",
    "not_shipped",
    "not_invoiced",
    "invoiced_over_shipped",
    "invoiced_without_shipment",
    "shipped_over_ordered",
    "shipped_not_ordered",
    "partner_ack_overdue",
    "partner_rejected",
    "changed_after_shipment",
)
# Outbound message statuses that mean the partner has (or need not) acknowledge(d) it.
PARTNER_SETTLED = {"accepted", "accepted_with_errors"}
CHANGES = {"change", "replace"}


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    """A partner's thresholds (profile ``[orders]``)."""

    expect_order_ack: bool = False
    order_ack_due_hours: float = 24.0
    invoice_due_hours: float = 72.0
    expect_functional_ack: bool = True  # profile x12: our outbound waits for their 997/999


@dataclass(frozen=True, slots=True)
class LinkedDocument:
    """One stored document linked to the order (either direction)."""

    document_id: str
    message_id: str
    kind: str  # order | order_ack | shipment | invoice
    direction: str  # in | out
    at: datetime
    document: Mapping[str, Any]  # the canonical ``document`` part
    business_number: str | None = None
    status: str = "pending"  # the document's status (ERP delivery, or the partner's verdict)
    message_status: str = ""  # the message's status (outbound: queued, sent, accepted, rejected, overdue...)


@dataclass(frozen=True, slots=True)
class OrderException:
    kind: str
    since: datetime
    documents: tuple[str, ...]  # document ids
    subject: str = ""  # what it is about inside the order (a line, a document); part of its identity
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)


@dataclass(slots=True)
class Line:
    line_number: str | None
    product_ids: dict[str, str]
    ordered: Decimal = Decimal(0)
    unit_price: Decimal | None = None
    shipped: Decimal = Decimal(0)
    invoiced: Decimal = Decimal(0)
    invoiced_amount: Decimal = Decimal(0)
    ordered_line: bool = True
    shipped_by: list[str] = field(default_factory=list)
    invoiced_by: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        if self.line_number:
            return f"line {self.line_number}"
        return "product " + ",".join(f"{k}={v}" for k, v in sorted(self.product_ids.items()))

    def view(self) -> dict[str, Any]:
        return {
            "line_number": self.line_number,
            "product_ids": dict(self.product_ids),
            "ordered": _text(self.ordered),
            "shipped": _text(self.shipped),
            "invoiced": _text(self.invoiced),
        }


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the documents say about one order at ``now``."""

    state: str
    lines: tuple[Line, ...]
    exceptions: tuple[OrderException, ...]
    cancelled: bool
    # When time alone may next open an exception (an 855, ship or invoice deadline
    # still ahead); None when only a document or an acknowledgment can change it.
    next_check: datetime | None = None


# --------------------------------------------------------------------------- keys


def extract_keys(kind: str, document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key_kind, value) pairs of the business keys a canonical document refers to,
    without duplicates, in a stable order. An ASN covering three POs gives three."""
    keys: list[tuple[str, str]] = []

    def add(key_kind: str, value: Any) -> None:
        if value is None:
            return
        text = str(value).strip()[:80]
        if text and (key_kind, text) not in keys:
            keys.append((key_kind, text))

    if kind in ("order", "order_ack", "invoice"):
        add(PO, document.get("po_number"))
    if kind == "invoice":
        add(INVOICE, document.get("invoice_number"))
    if kind == "shipment":
        add(SHIPMENT, document.get("shipment_id"))
        carrier = document.get("carrier") or {}
        add(TRACKING, carrier.get("tracking_number"))
        add(BOL, carrier.get("bill_of_lading"))
        for order in document.get("orders") or ():
            add(PO, order.get("po_number"))
        for container in _containers(document):
            add(SSCC, container.get("sscc"))
    for ref in document.get("references") or ():
        qualifier = ref.get("qualifier")
        if qualifier in TRACKING_REFS:
            add(TRACKING, ref.get("value"))
        elif qualifier in BOL_REFS:
            add(BOL, ref.get("value"))
        elif qualifier == "PO" and kind != "order":
            add(PO, ref.get("value"))
    return keys


def envelope_keys(
    *, interchange_control: str | None, group_control: str | None, transport_id: str | None
) -> list[tuple[str, str]]:
    """The control numbers (as numbers: ``000000042`` is ``42``) and the transport id."""
    keys = []
    for key_kind, value in ((INTERCHANGE, interchange_control), (GROUP, group_control)):
        if value and value.strip():
            text = value.strip()
            keys.append((key_kind, str(int(text)) if text.isdigit() else text))
    if transport_id:
        keys.append((TRANSPORT, transport_id[:80]))
    return keys


def _containers(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for order in document.get("orders") or ():
        for tare in order.get("tares") or ():
            yield tare
            yield from tare.get("packs") or ()
        yield from order.get("packs") or ()


def _shipment_items(document: Mapping[str, Any], po_number: str) -> Iterable[Mapping[str, Any]]:
    """The items a shipment ships against ``po_number`` (every level of its hierarchy)."""
    for order in document.get("orders") or ():
        if (order.get("po_number") or "").strip() != po_number:
            continue
        yield from order.get("items") or ()
        for tare in order.get("tares") or ():
            yield from tare.get("items") or ()
            for pack in tare.get("packs") or ():
                yield from pack.get("items") or ()
        for pack in order.get("packs") or ():
            yield from pack.get("items") or ()


# --------------------------------------------------------------------------- milestones


def milestones(documents: Sequence[LinkedDocument]) -> dict[str, Any]:
    """When the order reached each milestone (the first 850, 855, 856, 810), and the
    times from order to first ASN and from first ASN to first invoice, in seconds:
    what the business metrics count and histogram (gateway.metrics)."""
    first: dict[str, datetime] = {}
    for doc in sorted(documents, key=lambda d: (d.at, d.document_id)):
        first.setdefault(doc.kind, doc.at)
    ordered, shipped, invoiced = first.get("order"), first.get("shipment"), first.get("invoice")
    return {
        "ordered_at": ordered,
        "acknowledged_at": first.get("order_ack"),
        "shipped_at": shipped,
        "invoiced_at": invoiced,
        "order_to_asn_seconds": (shipped - ordered).total_seconds() if ordered and shipped else None,
        "asn_to_invoice_seconds": (invoiced - shipped).total_seconds() if shipped and invoiced else None,
    }


# --------------------------------------------------------------------------- derivation


def derive(
    po_number: str, documents: Sequence[LinkedDocument], *, now: datetime, policy: OrderPolicy = OrderPolicy()
) -> OrderFacts:
    """State, lines and open exceptions of one order from its linked documents."""
    docs = sorted(documents, key=lambda d: (d.at, d.document_id))
    orders = [d for d in docs if d.kind == "order"]
    acks = [d for d in docs if d.kind == "order_ack"]
    shipments = [d for d in docs if d.kind == "shipment"]
    invoices = [d for d in docs if d.kind == "invoice"]
    purposes = [str(d.document.get("purpose") or "original") for d in orders]
    cancelled = bool(orders) and purposes[-1] == "cancellation"

    lines = _order_lines(orders)
    for doc in shipments:
        for item in _shipment_items(doc.document, po_number):
            line = _match(lines, item)
            line.shipped += _decimal(item.get("quantity_shipped"))
            line.shipped_by.append(doc.document_id)
    for doc in invoices:
        for item in doc.document.get("lines") or ():
            line = _match(lines, item)
            quantity = _decimal(item.get("quantity"))
            line.invoiced += quantity
            price = item.get("unit_price")
            if price is not None:
                line.invoiced_amount += quantity * _decimal(price)
            line.invoiced_by.append(doc.document_id)

    found = _exceptions(po_number, docs, orders, acks, shipments, invoices, lines, cancelled, now, policy)
    state = _state(orders, acks, shipments, invoices, lines, cancelled, found, policy, docs)
    deadlines = _deadlines(orders, acks, shipments, lines, cancelled, policy)
    next_check = min((d for d in deadlines if d > now), default=None)
    return OrderFacts(state, tuple(lines), tuple(found), cancelled, next_check)


def _deadlines(
    orders: Sequence[LinkedDocument],
    acks: Sequence[LinkedDocument],
    shipments: Sequence[LinkedDocument],
    lines: Sequence[Line],
    cancelled: bool,
    policy: OrderPolicy,
) -> list[datetime]:
    """The moments the time-based exceptions of :func:`_exceptions` open at."""
    if cancelled:
        return []
    found = []
    if orders and policy.expect_order_ack and not acks:
        found.append(orders[0].at + timedelta(hours=policy.order_ack_due_hours))
    deadline = _ship_deadline(orders) if orders else None
    if deadline is not None and not _fully_shipped(lines):
        found.append(deadline)
    if shipments and any(line.shipped > line.invoiced for line in lines):
        found.append(shipments[0].at + timedelta(hours=policy.invoice_due_hours))
    return found


def _order_lines(orders: Sequence[LinkedDocument]) -> list[Line]:
    # The latest order with lines wins: a change or replacement restates them.
    for doc in reversed(orders):
        raw = doc.document.get("lines") or ()
        if raw:
            return [
                Line(
                    line_number=_clean(item.get("line_number")),
                    product_ids=_product_ids(item),
                    ordered=_decimal(item.get("quantity")),
                    unit_price=_decimal(item["unit_price"]) if item.get("unit_price") is not None else None,
                )
                for item in raw
            ]
    return []


def _match(lines: list[Line], item: Mapping[str, Any]) -> Line:
    number = _clean(item.get("line_number"))
    ordered = [line for line in lines if line.ordered_line]
    if number is not None:
        for line in ordered:
            if line.line_number == number:
                return line
    ids = set(_product_ids(item).items())
    if ids:
        for line in ordered:
            if ids & set(line.product_ids.items()):
                return line
    for line in lines:  # a line already seen as not ordered
        if not line.ordered_line and line.line_number == number and line.product_ids == _product_ids(item):
            return line
    extra = Line(number, _product_ids(item), ordered_line=False)
    lines.append(extra)
    return extra


def _exceptions(
    po_number: str,
    docs: Sequence[LinkedDocument],
    orders: Sequence[LinkedDocument],
    acks: Sequence[LinkedDocument],
    shipments: Sequence[LinkedDocument],
    invoices: Sequence[LinkedDocument],
    lines: Sequence[Line],
    cancelled: bool,
    now: datetime,
    policy: OrderPolicy,
) -> list[OrderException]:
    found: list[OrderException] = []
    first_order = orders[0] if orders else None
    by_id = {d.document_id: d for d in docs}

    def since(ids: Iterable[str]) -> datetime:
        return min((by_id[i].at for i in ids if i in by_id), default=now)

    if first_order is not None and not cancelled:
        due = first_order.at + timedelta(hours=policy.order_ack_due_hours)
        if policy.expect_order_ack and not acks and now >= due:
            found.append(OrderException("not_acknowledged", due, (first_order.document_id,)))
        deadline = _ship_deadline(orders)
        if deadline is not None and now >= deadline and not _fully_shipped(lines):
            found.append(OrderException("not_shipped", deadline, tuple(d.document_id for d in orders)))
    if shipments and not cancelled:
        uninvoiced = any(line.shipped > line.invoiced for line in lines)
        due = shipments[0].at + timedelta(hours=policy.invoice_due_hours)
        if uninvoiced and now >= due:
            late = [
                d.document_id for d in shipments if d.at + timedelta(hours=policy.invoice_due_hours) <= now
            ]
            found.append(OrderException("not_invoiced", due, tuple(late)))
    if invoices and not shipments:
        ids = tuple(d.document_id for d in invoices)
        found.append(OrderException("invoiced_without_shipment", since(ids), ids))
    for line in lines:
        if shipments and line.invoiced_by:
            over_quantity = line.invoiced > line.shipped
            shipped_value = line.shipped * line.unit_price if line.unit_price is not None else None
            over_amount = shipped_value is not None and line.invoiced_amount > shipped_value
            if over_quantity or over_amount:
                ids = tuple(dict.fromkeys(line.invoiced_by + line.shipped_by))
                detail = {
                    "measure": "quantity" if over_quantity else "amount",
                    "line_number": line.line_number,
                }
                found.append(
                    OrderException(
                        "invoiced_over_shipped", since(line.invoiced_by), ids, line.subject, detail
                    )
                )
        if not line.ordered_line and line.shipped_by:
            ids = tuple(dict.fromkeys(line.shipped_by))
            found.append(
                OrderException(
                    "shipped_not_ordered", since(ids), ids, line.subject, {"line_number": line.line_number}
                )
            )
        elif line.ordered_line and line.shipped > line.ordered:
            ids = tuple(dict.fromkeys(line.shipped_by))
            found.append(
                OrderException(
                    "shipped_over_ordered", since(ids), ids, line.subject, {"line_number": line.line_number}
                )
            )
    for doc in docs:
        if doc.direction != "out":
            continue
        if doc.message_status == "overdue":
            found.append(OrderException("partner_ack_overdue", doc.at, (doc.document_id,), doc.document_id))
        if doc.message_status == "rejected" or doc.status == "rejected":
            # Closed by a later document of the same kind the partner did not reject.
            resent = any(
                d.kind == doc.kind
                and d.direction == "out"
                and d.at >= doc.at
                and d.document_id != doc.document_id
                and d.message_status != "rejected"
                and d.status != "rejected"
                for d in docs
            )
            if not resent:
                found.append(OrderException("partner_rejected", doc.at, (doc.document_id,), doc.document_id))
    if shipments:
        first_shipped = shipments[0].at
        for doc in orders:
            purpose = str(doc.document.get("purpose") or "original")
            if (purpose in CHANGES or purpose == "cancellation") and doc.at > first_shipped:
                # Closed once we answer it: an 855 or 856 sent after the change.
                answered = any(d.kind in ("order_ack", "shipment") and d.at > doc.at for d in docs)
                if not answered:
                    found.append(
                        OrderException("changed_after_shipment", doc.at, (doc.document_id,), doc.document_id)
                    )
    return found


def _state(
    orders: Sequence[LinkedDocument],
    acks: Sequence[LinkedDocument],
    shipments: Sequence[LinkedDocument],
    invoices: Sequence[LinkedDocument],
    lines: Sequence[Line],
    cancelled: bool,
    found: Sequence[OrderException],
    policy: OrderPolicy,
    docs: Sequence[LinkedDocument],
) -> str:
    if found:
        return "exception"
    if cancelled:
        return "cancelled"
    if invoices:
        settled = not policy.expect_functional_ack or all(
            d.message_status in PARTNER_SETTLED for d in docs if d.direction == "out"
        )
        complete = _fully_shipped(lines) and all(line.invoiced >= line.shipped for line in lines)
        return "closed" if settled and complete else "invoiced"
    if shipments:
        return "shipped" if _fully_shipped(lines) else "partially_shipped"
    if acks:
        return "acknowledged"
    return "received"


def _fully_shipped(lines: Sequence[Line]) -> bool:
    ordered = [line for line in lines if line.ordered_line]
    return bool(ordered) and all(line.shipped >= line.ordered for line in ordered)


def _ship_deadline(orders: Sequence[LinkedDocument]) -> datetime | None:
    """The end of the ship-no-later (else requested-ship) day of the latest order."""
    for doc in reversed(orders):
        dates = doc.document.get("dates") or {}
        day = dates.get("ship_no_later") or dates.get("requested_ship")
        if day is None:
            days = [
                (line.get("dates") or {}).get("ship_no_later")
                or (line.get("dates") or {}).get("requested_ship")
                for line in doc.document.get("lines") or ()
            ]
            day = min((d for d in days if d), default=None)
        if day is not None:
            value = day if isinstance(day, date) else date.fromisoformat(str(day))
            return datetime.combine(value + timedelta(days=1), time(0), tzinfo=UTC)
    return None


def _product_ids(item: Mapping[str, Any]) -> dict[str, str]:
    raw = item.get("product_ids") or {}
    ids = {k: str(v) for k, v in raw.items() if k != "other" and v}
    ids.update({f"other:{k}": str(v) for k, v in (raw.get("other") or {}).items() if v})
    return ids


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _text(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros ("24", "12.5")."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")
