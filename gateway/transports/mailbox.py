"""``channel = "mailbox"``: nothing is pushed. Items wait ``pending`` until the
partner lists and confirms them through gateway.api.mailbox, which marks them sent."""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.ports import OutboundItem, SendOutcome, SendResult


class MailboxTransport:
    channel: ClassVar[str] = "mailbox"
    push: ClassVar[bool] = False

    async def send(self, item: OutboundItem, partner: Any) -> SendResult:
        # Never claimed by the sender (push is False); answering keeps the port complete.
        return SendResult(SendOutcome.TRANSIENT, "mailbox items wait for the partner to collect them")

    async def close(self) -> None:
        return None
