"""The domain's errors: one tree, each error knowing what it means to the outside.

Every error carries the HTTP status a synchronous caller answers with
(``http_status``) and, for the inbound ones, the status the message ends in
(``message_status``). The MDN disposition an AS2 receipt reports will join them
here (``mdn_disposition``), so no adapter keeps its own table of what an error
means::

    DomainError                        (500)
    ├── InboundRefused                 a message the gateway keeps but does not use
    │   ├── Unreadable                 (422, failed) the payload is not what its kind says
    │   │   ├── NotX12                 no ISA where an interchange must start
    │   │   └── InvalidCanonical       canonical JSON that the models refuse
    │   ├── UnknownSender              (403, quarantined) no profile for the ISA sender
    │   ├── SenderNotPartner           (403, quarantined) ISA sender is not the
    │   │                              authenticated partner's address
    │   └── HookFailed                 (500, failed) a partner hook raised or returned
    │                                  something invalid; fix it, then replay
    └── RenderRefused                  (422) a valid canonical document that cannot
                                       be written for this partner

Planning (:mod:`gateway.domain.inbound`) raises the ``InboundRefused`` ones inside
and answers a plan whose status and reason come from the error: a refused message
is an outcome, not a crash. ``RenderRefused`` reaches the REST caller of the
outbound API as a 422 with ``fields``.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base of every domain error. ``http_status`` is what a synchronous caller
    answers; ``mdn_disposition`` the AS2 disposition modifier (None: not decided
    by the domain yet)."""

    http_status: ClassVar[int] = 500
    mdn_disposition: ClassVar[str | None] = None


class InboundRefused(DomainError):
    """An inbound message that is kept but not used; ``message_status`` is the
    status it ends in and ``str(error)`` its reason."""

    message_status: ClassVar[str] = "failed"


class Unreadable(InboundRefused):
    http_status = 422


class NotX12(Unreadable):
    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"not X12: {reason} (at offset {offset})")
        self.offset = offset


class InvalidCanonical(Unreadable):
    def __init__(self, first_error: str) -> None:
        super().__init__(f"invalid canonical document: {first_error}")


class UnknownSender(InboundRefused):
    http_status = 403
    message_status = "quarantined"

    def __init__(self, sender: str) -> None:
        super().__init__(f"unknown sender {sender}: no partner profile matches the ISA sender")
        self.sender = sender


class SenderNotPartner(InboundRefused):
    http_status = 403
    message_status = "quarantined"

    def __init__(self, sender: str, partner_id: str) -> None:
        super().__init__(f"ISA sender {sender} is not an address of partner {partner_id}")
        self.sender = sender
        self.partner_id = partner_id


class HookFailed(InboundRefused):
    """A partner hook failed; the text is the hook's own error line."""


class RenderRefused(DomainError):
    """The document is valid canonical JSON but cannot be written for this partner.
    ``fields`` names each canonical field and the X12 rule it breaks, when known."""

    http_status = 422

    def __init__(
        self,
        message: str,
        fields: list[dict[str, str]] | None = None,
        *,
        code: str = "render_failed",
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.fields = fields or []
        self.code = code  # the API's error code: render_failed, total_mismatch, partner_rules
        self.details = details
