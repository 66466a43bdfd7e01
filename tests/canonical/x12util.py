"""Test helpers for the canonical tests: X12 ↔ TransactionSets through the real
envelope reader (translators.x12.envelope.read_events) and writer
(translators.x12.writer.write_interchange)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from translators.x12.envelope import read_events
from translators.x12.events import SetRead
from translators.x12.model import Delimiters, Segment, TransactionSet
from translators.x12.writer import OutboundGroup, write_interchange

FIXED_TIME = datetime(2024, 3, 15, 14, 2)
STAR_TILDE = Delimiters()


def read_sets(source: str | bytes | Path) -> list[TransactionSet]:
    """Every transaction set in ``source`` (a path, bytes or text)."""
    data = source.read_bytes() if isinstance(source, Path) else source
    return [event.transaction_set for event in read_events(data) if isinstance(event, SetRead)]


def interchange_text(
    sets: list[list[Segment]],
    *,
    functional_id: str,
    version: str = "004010",
    delimiters: Delimiters = STAR_TILDE,
) -> str:
    """Rendered ST..SE sets wrapped in one interchange by the real envelope writer."""
    group = OutboundGroup(
        functional_id=functional_id,
        sender_id="GATEWAYTEST",
        receiver_id="PARTNER",
        control_number=9,
        version=version,
        sets=sets,
    )
    return write_interchange(
        sender=("ZZ", "GATEWAYTEST"),
        receiver=("ZZ", "PARTNER"),
        control_number=909,
        at=FIXED_TIME,
        groups=[group],
        delimiters=delimiters,
    )
