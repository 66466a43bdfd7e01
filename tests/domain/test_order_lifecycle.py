"""The order lifecycle derived without a database: keys a document carries, the
state after each document, quantities per line, and each exception opening and
closing (gateway.domain.orders)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.domain.orders import LinkedDocument, OrderPolicy, derive, envelope_keys, extract_keys

T0 = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
PO = "PO-1"
NO_FA = OrderPolicy(expect_functional_ack=False)  # closed without waiting for 997s
_n = 0


def doc(
    kind: str,
    document: dict[str, Any],
    *,
    hours: float = 0,
    direction: str | None = None,
    message_status: str = "",
    status: str = "pending",
) -> LinkedDocument:
    global _n
    _n += 1
    return LinkedDocument(
        document_id=f"D{_n:04d}",
        message_id=f"M{_n:04d}",
        kind=kind,
        direction=direction or ("in" if kind == "order" else "out"),
        at=T0 + timedelta(hours=hours),
        document=document,
        status=status,
        message_status=message_status,
    )


def order(
    *lines: tuple[str, str, str], purpose: str = "original", hours: float = 0, **fields: Any
) -> LinkedDocument:
    return doc(
        "order",
        {
            "po_number": PO,
            "purpose": purpose,
            **fields,
            "lines": [
                {"line_number": n, "quantity": q, "unit_price": "2", "product_ids": {"vendor_item": item}}
                for n, item, q in lines
            ],
        },
        hours=hours,
    )


def ack(hours: float = 1, **kw: Any) -> LinkedDocument:
    return doc("order_ack", {"po_number": PO, "ack_type": "AC"}, hours=hours, **kw)


def asn(*items: tuple[str | None, str, str], hours: float = 2, po: str = PO, **kw: Any) -> LinkedDocument:
    return doc(
        "shipment",
        {
            "shipment_id": "S",
            "orders": [
                {
                    "po_number": po,
                    "items": [
                        {"line_number": n, "product_ids": {"vendor_item": item}, "quantity_shipped": q}
                        for n, item, q in items
                    ],
                }
            ],
        },
        hours=hours,
        **kw,
    )


def inv(*lines: tuple[str | None, str, str, str], hours: float = 3, **kw: Any) -> LinkedDocument:
    return doc(
        "invoice",
        {
            "po_number": PO,
            "invoice_number": "I",
            "lines": [
                {"line_number": n, "product_ids": {"vendor_item": item}, "quantity": q, "unit_price": p}
                for n, item, q, p in lines
            ],
        },
        hours=hours,
        **kw,
    )


def kinds(docs: list[LinkedDocument], hours: float = 4, policy: OrderPolicy = NO_FA) -> set[str]:
    return {e.kind for e in derive(PO, docs, now=T0 + timedelta(hours=hours), policy=policy).exceptions}


def state(docs: list[LinkedDocument], hours: float = 4, policy: OrderPolicy = NO_FA) -> str:
    return derive(PO, docs, now=T0 + timedelta(hours=hours), policy=policy).state


def test_an_asn_carries_every_po_its_tracking_bol_and_ssccs() -> None:
    shipment = {
        "shipment_id": "SH-1",
        "carrier": {"tracking_number": "1Z9", "bill_of_lading": "BOL-7"},
        "references": [{"qualifier": "CN", "value": "PRO-5"}],
        "orders": [
            {"po_number": "A", "tares": [{"sscc": "000111", "packs": [{"sscc": "000222"}]}]},
            {"po_number": "B", "packs": [{"sscc": "000333"}]},
            {"po_number": "C"},
            {"po_number": "A"},
        ],
    }
    assert extract_keys("shipment", shipment) == [
        ("shipment", "SH-1"),
        ("tracking", "1Z9"),
        ("bol", "BOL-7"),
        ("po", "A"),
        ("po", "B"),
        ("po", "C"),
        ("sscc", "000111"),
        ("sscc", "000222"),
        ("sscc", "000333"),
        ("tracking", "PRO-5"),
    ]
    assert extract_keys("invoice", {"po_number": "A", "invoice_number": "I-1"}) == [
        ("po", "A"),
        ("invoice", "I-1"),
    ]
    assert extract_keys("order", {"po_number": " A "}) == [("po", "A")]
    assert envelope_keys(interchange_control="000000042", group_control="42", transport_id="<as2-id@x>") == [
        ("interchange", "42"),
        ("group", "42"),
        ("transport", "<as2-id@x>"),
    ]


def test_state_after_each_document_and_quantities_per_line() -> None:
    o = order(("1", "A", "10"), ("2", "B", "5"))
    assert state([o]) == "received"
    a = ack()
    assert state([o, a]) == "acknowledged"
    s1 = asn(("1", "A", "6"))
    assert state([o, a, s1]) == "partially_shipped"
    s2 = asn(("1", "A", "4"), (None, "B", "5"))  # no line number: matched by product id
    assert state([o, a, s1, s2]) == "shipped"
    i = inv(("1", "A", "10", "2"), ("2", "B", "5", "2"))
    facts = derive(
        PO, [o, a, s1, s2, i], now=T0 + timedelta(hours=4), policy=OrderPolicy(expect_functional_ack=False)
    )
    assert facts.state == "closed" and facts.exceptions == ()
    assert [line.view() for line in facts.lines] == [
        {
            "line_number": "1",
            "product_ids": {"vendor_item": "A"},
            "ordered": "10",
            "shipped": "10",
            "invoiced": "10",
        },
        {
            "line_number": "2",
            "product_ids": {"vendor_item": "B"},
            "ordered": "5",
            "shipped": "5",
            "invoiced": "5",
        },
    ]
    # Closed only once the partner accepted what we sent, when it acknowledges at all.
    expecting = OrderPolicy(expect_functional_ack=True)
    assert state([o, a, s1, s2, i], policy=expecting) == "invoiced"
    accepted = [
        d if d.direction == "in" else LinkedDocument(**{**_fields(d), "message_status": "accepted"})
        for d in (o, a, s1, s2, i)
    ]
    assert state(accepted, policy=expecting) == "closed"


def _fields(d: LinkedDocument) -> dict[str, Any]:
    return {name: getattr(d, name) for name in d.__dataclass_fields__}


def test_a_cancellation_cancels_and_a_change_restates_the_lines() -> None:
    o = order(("1", "A", "10"))
    assert state([o, order(purpose="cancellation", hours=1)]) == "cancelled"
    changed = derive(PO, [o, order(("1", "A", "12"), purpose="change", hours=1)], now=T0)
    assert changed.lines[0].ordered == 12


def test_not_acknowledged_opens_after_the_due_hours_and_closes_with_an_855() -> None:
    policy = OrderPolicy(expect_order_ack=True, order_ack_due_hours=24, expect_functional_ack=False)
    o = order(("1", "A", "10"))
    assert kinds([o], hours=23, policy=policy) == set()
    facts = derive(PO, [o], now=T0 + timedelta(hours=24), policy=policy)
    assert [(e.kind, e.since, e.documents) for e in facts.exceptions] == [
        ("not_acknowledged", T0 + timedelta(hours=24), (o.document_id,))
    ]
    assert facts.state == "exception"
    assert kinds([o, ack(hours=30)], hours=31, policy=policy) == set()
    assert kinds([o], hours=48) == set()  # a partner that expects no 855


def test_not_shipped_after_the_ship_no_later_day() -> None:
    o = order(("1", "A", "10"), dates={"ship_no_later": "2024-03-16"})
    assert kinds([o], hours=35) == set()  # 2024-03-16 23:00
    assert kinds([o], hours=36) == {"not_shipped"}  # 2024-03-17 00:00
    assert kinds([o, asn(("1", "A", "4"), hours=40)], hours=41) == {"not_shipped"}
    assert kinds([o, asn(("1", "A", "10"), hours=40)], hours=41) == set()


def test_not_invoiced_within_the_due_hours_of_shipping() -> None:
    policy = OrderPolicy(invoice_due_hours=72, expect_functional_ack=False)
    o, s = order(("1", "A", "10")), asn(("1", "A", "10"), hours=2)
    assert kinds([o, s], hours=73, policy=policy) == set()
    assert kinds([o, s], hours=74, policy=policy) == {"not_invoiced"}
    assert kinds([o, s, inv(("1", "A", "10", "2"), hours=80)], hours=81, policy=policy) == set()


def test_line_mismatches_open_and_close() -> None:
    o = order(("1", "A", "10"))
    assert kinds([o, inv(("1", "A", "10", "2"))]) == {"invoiced_without_shipment"}
    assert kinds([o, asn(("1", "A", "4")), inv(("1", "A", "10", "2"))]) == {"invoiced_over_shipped"}
    over_amount = derive(
        PO, [o, asn(("1", "A", "10")), inv(("1", "A", "10", "2.50"))], now=T0 + timedelta(hours=4)
    )
    assert [(e.kind, e.detail["measure"], e.subject) for e in over_amount.exceptions] == [
        ("invoiced_over_shipped", "amount", "line 1")
    ]
    assert kinds([o, asn(("1", "A", "12"))]) == {"shipped_over_ordered"}
    assert kinds([o, asn(("9", "Z", "1"))]) == {"shipped_not_ordered"}
    assert kinds([asn(("1", "A", "1"))]) == {"shipped_not_ordered"}  # no 850 at all


def test_partner_verdicts_on_our_documents() -> None:
    o = order(("1", "A", "10"))
    rejected = ack(message_status="rejected")
    assert kinds([o, rejected]) == {"partner_rejected"}
    assert kinds([o, rejected, ack(hours=2, message_status="accepted")]) == set()  # sent again, accepted
    assert kinds([o, ack(message_status="overdue")]) == {"partner_ack_overdue"}
    assert kinds([o, ack(message_status="accepted")]) == set()


def test_a_change_after_shipment_is_open_until_we_answer_it() -> None:
    o, s = order(("1", "A", "10")), asn(("1", "A", "5"), hours=2)
    change = order(("1", "A", "8"), purpose="change", hours=3)
    assert kinds([o, s, change]) == {"changed_after_shipment"}
    assert kinds([o, s, change, ack(hours=3.5)]) == set()
    assert (
        kinds([o, order(("1", "A", "8"), purpose="change", hours=1), s]) == set()
    )  # changed before shipping


def test_next_check_is_the_next_deadline_time_alone_can_pass() -> None:
    policy = OrderPolicy(expect_order_ack=True, order_ack_due_hours=24, invoice_due_hours=72)
    o = order(("1", "A", "10"), dates={"ship_no_later": "2024-03-20"})

    def next_check(docs: list[LinkedDocument], hours: float) -> datetime | None:
        return derive(PO, docs, now=T0 + timedelta(hours=hours), policy=policy).next_check

    assert next_check([o], 1) == T0 + timedelta(hours=24)  # the 855 is due
    assert next_check([o], 25) == datetime(2024, 3, 21, tzinfo=UTC)  # then the ship deadline
    a, s = ack(hours=2), asn(("1", "A", "10"), hours=3)
    assert next_check([o, a, s], 4) == T0 + timedelta(hours=75)  # the invoice is due
    done = [o, a, s, inv(("1", "A", "10", "2"), hours=5)]
    assert next_check(done, 6) is None  # only a document can change it now
    assert next_check([o, order(purpose="cancellation", hours=1)], 2) is None
