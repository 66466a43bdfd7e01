"""Canonical documents become one X12 interchange for one partner.

The one place that knows which functional group (GS01) and transaction set a
canonical kind travels in, and how documents are grouped into an interchange:
one group per functional id in first-seen order, sets numbered ``0001``.. inside
each group. The outbound API (one document) and ``gateway render`` (several) both
call :func:`assemble_interchange`; control numbers and the time are handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from gateway.domain.errors import RenderRefused

if TYPE_CHECKING:
    from translators.canonical import CanonicalDocument, DocumentModel

FUNCTIONAL_ID_BY_KIND = {"order": "PO", "order_ack": "PR", "shipment": "SH", "invoice": "IN"}
SET_ID_BY_KIND = {"order": "850", "order_ack": "855", "shipment": "856", "invoice": "810"}
BUSINESS_NUMBER_FIELD = {
    "order": "po_number",
    "order_ack": "po_number",
    "invoice": "invoice_number",
    "shipment": "shipment_id",
}


class Identity(Protocol):
    """Who we are in the envelopes we write (gateway.config.IdentitySettings is one)."""

    interchange_qualifier: str
    interchange_id: str
    group_id: str


def sender_of(profile: Any, identity: Identity) -> tuple[str, str, str]:
    """(ISA05, ISA06, GS02) of what we send ``profile``'s partner: the first of its
    ``our_ids`` when it has some (the partner knows us by that id; GS02 is the id
    too), else the gateway's ``[identity]``."""
    ours = profile.x12.our_ids
    if ours:
        return ours[0].qualifier, ours[0].id, ours[0].id
    return identity.interchange_qualifier, identity.interchange_id, identity.group_id


def refuse_breaches(document: Any, profile: Any, kind: str) -> None:
    """Raise :class:`RenderRefused` when ``document`` breaks the partner's profile
    rules or, for an invoice, its total is not its lines and allowances/charges
    (``translators.mapping.compliance``): what a partner would charge back."""
    from translators.canonical import CanonicalDocument
    from translators.mapping.compliance import breaches_for

    model = document.document if isinstance(document, CanonicalDocument) else document
    breaches = breaches_for(model, profile.mapping.for_kind(kind))
    if not breaches:
        return
    fields = [{"loc": b.loc, "msg": b.msg} for b in breaches]
    total = next((b for b in breaches if b.details), None)
    if total is not None:
        raise RenderRefused(
            f"cannot send this {kind} to partner {profile.id}: {total.msg}",
            fields,
            code="total_mismatch",
            details=total.details,
        )
    raise RenderRefused(
        f"cannot send this {kind} to partner {profile.id}: " + "; ".join(b.msg for b in breaches),
        fields,
        code="partner_rules",
    )


def functional_id(kind: str) -> str:
    """GS01 of the group a document of ``kind`` travels in."""
    return FUNCTIONAL_ID_BY_KIND[kind]


def business_number(kind: str, document: Any) -> str | None:
    """The number people search a document by (PO, invoice, shipment), at most 80
    characters; None when the document has none."""
    number = getattr(document, BUSINESS_NUMBER_FIELD.get(kind, ""), None) if document is not None else None
    return str(number)[:80] if number else None


def assemble_interchange(
    documents: Sequence[CanonicalDocument | DocumentModel],
    profile: Any,
    identity: Identity,
    *,
    interchange_control: int,
    group_control: int,
    at: datetime,
) -> str:
    """The whole interchange text carrying ``documents`` (in order; a canonical
    document's envelope version is used when the profile has no group version)
    to ``profile``'s partner, in its conventions (mapping, version, delimiters,
    usage, TA1 request). Groups are numbered ``group_control``, +1, ...

    Raises :class:`RenderRefused` (the translators' error as ``__cause__``) when a
    document cannot be written for this partner."""
    from translators.canonical import CanonicalDocument, kind_of
    from translators.mapping import MappingError, render
    from translators.x12.errors import RenderError
    from translators.x12.writer import OutboundGroup, write_interchange

    x12 = profile.x12
    sender_qualifier, sender_id, group_sender = sender_of(profile, identity)
    grouped: dict[str, list[list[list[str]]]] = {}
    kind = ""
    try:
        for document in documents:
            kind = document.kind if isinstance(document, CanonicalDocument) else kind_of(document)
            refuse_breaches(document, profile, kind)
            sets = grouped.setdefault(functional_id(kind), [])
            sets.append(
                render(
                    document,
                    rules=profile.mapping,
                    control_number=f"{len(sets) + 1:04d}",
                    version=x12.group_version,
                    delimiters=x12.outbound_delimiters,
                )
            )
        return write_interchange(
            sender=(sender_qualifier, sender_id),
            receiver=(x12.interchange_qualifier, x12.interchange_id),
            control_number=interchange_control,
            at=at,
            usage=x12.usage,
            ack_requested=x12.request_ta1,
            delimiters=x12.outbound_delimiters,
            groups=[
                OutboundGroup(fid, group_sender, x12.group_id, group_control + i, x12.group_version, sets)
                for i, (fid, sets) in enumerate(grouped.items())
            ],
        )
    except (RenderError, MappingError) as exc:
        fields = [{"loc": e.loc, "msg": e.msg} for e in getattr(exc, "errors", ())]
        raise RenderRefused(f"cannot write this {kind} for partner {profile.id}: {exc}", fields) from exc
