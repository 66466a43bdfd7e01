"""Small 850/855 sets for mapper tests: built as text, read through the real
envelope reader, and (for the ``valid_*`` helpers) checked grammar-valid before
they are mapped, so a test never rests on input the gateway would reject."""

from __future__ import annotations

from x12util import interchange_text, read_sets

from translators.canonical import Order, OrderAck
from translators.mapping import MappingRules
from translators.mapping.common import frame
from translators.mapping.order import order_from_x12
from translators.mapping.order_ack import order_ack_from_x12
from translators.x12.model import Segment, TransactionSet
from translators.x12.validation import validate_set


def po1(number: int) -> Segment:
    return ["PO1", str(number), "10", "EA", "2.50", "PE", "UP", f"01234567890{number}"]


def one_set(set_id: str, body: list[Segment], version: str = "004010") -> TransactionSet:
    functional_id = "PO" if set_id == "850" else "PR"
    text = interchange_text([frame(set_id, "0001", body)], functional_id=functional_id, version=version)
    (tset,) = read_sets(text)
    return tset


def valid_order(body: list[Segment], version: str = "004010") -> Order:
    tset = one_set("850", body, version)
    outcome = validate_set(tset)
    assert outcome.accepted, outcome.segment_errors  # the test input is grammar-valid
    return order_from_x12(tset, MappingRules())


def valid_ack(body: list[Segment], version: str = "004010") -> OrderAck:
    tset = one_set("855", body, version)
    outcome = validate_set(tset)
    assert outcome.accepted, outcome.segment_errors
    return order_ack_from_x12(tset, MappingRules())
