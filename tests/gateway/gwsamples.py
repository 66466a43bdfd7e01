"""X12 and canonical bodies the service tests post, built here (not copied); and the
values of a message row for the tests that write one directly."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any


def key_sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def profile_toml(
    partner_id: str,
    interchange_id: str,
    key: str,
    *,
    ta1: str = "on-error",
    window: float | None = None,
    ack_after: str | None = None,
) -> str:
    lines = [
        f'id = "{partner_id}"',
        f'name = "Test partner {partner_id}"',
        "[x12]",
        'interchange_qualifier = "ZZ"',
        f'interchange_id = "{interchange_id}"',
        f'group_id = "{interchange_id}"',
        'version = "004010"',
        'functional_ack = "997"',
        f'ta1 = "{ta1}"',
    ]
    if window is not None:
        lines.append(f"duplicate_window_days = {window}")
    if ack_after is not None:
        lines.append(f'ack_after = "{ack_after}"')
    lines += ["[rest]", f'api_key_sha256 = "{key_sha(key)}"']
    return "\n".join(lines) + "\n"


def order_850(
    sender: str, control: int, *, po: str = "PO-1001", sets: int = 1, receiver: str = "OURCOMPANY"
) -> bytes:
    """One interchange with ``sets`` valid 004010 850s from ZZ/``sender``."""
    body: list[str] = []
    for n in range(1, sets + 1):
        segs = [
            f"ST*850*{n:04d}",
            f"BEG*00*SA*{po}-{n}**20240312",
            "N1*ST*STORE 42*92*0042",
            "PO1*1*24*EA*3.50*PE*UP*012345678905*VN*WID-100",
            "CTT*1",
        ]
        segs.append(f"SE*{len(segs) + 1}*{n:04d}")
        body += segs
    isa = f"ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*{receiver:<15}*240315*1402*U*00401*{control:09d}*0*P*>"
    segments = [
        isa,
        f"GS*PO*{sender}*{receiver}*20240315*1402*{control}*X*004010",
        *body,
        f"GE*{sets}*{control}",
        f"IEA*1*{control:09d}",
    ]
    return ("~\n".join(segments) + "~\n").encode()


def broken_850(sender: str, control: int) -> bytes:
    """A readable interchange whose only set is rejected (BEG date invalid)."""
    return order_850(sender, control).replace(b"**20240312", b"**20241399")


def canonical_order(po: str = "PO-JSON-1") -> dict:
    return {
        "kind": "order",
        "document": {
            "po_number": po,
            "po_date": "2024-03-12",
            "purpose": "original",
            "order_type": "SA",
            "lines": [
                {
                    "line_number": "1",
                    "quantity": "24",
                    "uom": "EA",
                    "unit_price": "3.50",
                    "product_ids": {"vendor_item": "WID-100"},
                }
            ],
        },
    }


def message_row(message_id: str, status: str, now: datetime) -> dict[str, Any]:
    """An inbound X12 message of acme over REST, in ``status``, as ``insert(Message)`` takes it."""
    return {
        "id": message_id, "direction": "in", "partner_id": "acme", "channel": "rest", "kind": "x12",
        "status": status, "raw_sha256": "0" * 64, "raw_size": 1, "received_at": now, "updated_at": now,
    }  # fmt: skip
