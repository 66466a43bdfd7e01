"""What a message's delivery to the ERP comes to, once nothing is left to try. Pure:
``known`` are the message's stored documents (``id``, ``seq``, ``status``,
``business_number``, ``last_error``), ``pairs`` the (document, DeliveryResult) of
this try."""

from __future__ import annotations

from typing import Any

DEAD_LETTERED = "dead_lettered"  # event of a document given up on (detail: document_id, seq, error)


def delivery_ending(
    known: list[Any], pairs: list[tuple[Any, Any]], dead_before: set[str]
) -> tuple[str, str | None, dict[str, Any]]:
    """(status, reason, event detail) of a message with nothing left to try:
    ``delivered``, ``partly_delivered`` (some dead-lettered, some delivered) or
    ``failed`` (none delivered); the reason names the dead-lettered documents."""
    taken = {d.id for d, r in pairs if r.ok}
    answers = {d.id: r.detail for d, r in pairs if not r.ok}
    delivered = sum(1 for k in known if k.status == "delivered" or k.id in taken)
    dead = [k for k in known if k.id in answers or k.id in dead_before]
    if not dead:
        return "delivered", None, {"documents": len(known)}
    not_sent = len(known) - delivered - len(dead)
    named = "; ".join(
        f"{k.business_number or f'document {k.seq}'} ({(answers.get(k.id) or k.last_error or '')[:300]})"
        for k in dead[:3]
    )
    reason = f"ERP refused {len(dead)} of {len(known)} document(s): {named}"
    if len(dead) > 3:
        reason += f"; and {len(dead) - 3} more"
    if not_sent:
        reason += f"; {not_sent} later document(s) not sent"
    detail = {"documents": len(known), "delivered": delivered, "dead_lettered": [k.seq for k in dead]}
    if not_sent:
        detail["not_sent"] = not_sent
    return ("partly_delivered" if delivered else "failed"), reason, detail
