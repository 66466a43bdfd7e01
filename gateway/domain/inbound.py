"""Inbound planning: what the translate step decides about one message, before
anything is written.

:func:`plan_inbound` takes the message's identity (:class:`InboundMessage`), its
opened raw payload and the partner lookup, and answers an :class:`InboundPlan`:
the status (``translated``, ``failed``, ``quarantined``), the reason, the timeline
events, the document rows, the interchanges (for duplicate detection and the
acknowledgments) and the acknowledgments the partner sent us. Duplicates *inside*
this one input are found here (the engine's ``reject_duplicates``); repeats across
messages need the database and are the writer's business.

It never opens files, reads a clock, issues ids or touches the database: the
caller opens the payload (``gateway.rawstore.open_payload``), runs this in a
worker process or a thread, and writes the plan (``gateway.pipeline``). Partner
hooks come in as a function (:data:`DocumentHook`) that raises
:class:`~gateway.domain.errors.HookFailed`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from gateway.domain.errors import (
    HookFailed,
    InboundRefused,
    InvalidCanonical,
    NotX12,
    SenderNotPartner,
    UnknownSender,
)
from gateway.domain.interchanges import business_number
from gateway.domain.outcomes import InterchangeResult

if TYPE_CHECKING:
    from translators.canonical import CanonicalDocument
    from translators.engine import PartnerLookup, TranslatedInterchange, TranslatedSet

#: Told (sets translated so far, sets in the payload or None) after every set; the
#: caller decides how often it passes that on (gateway.progress).
Progress = Callable[[int, "int | None"], None]
#: What a partner's inbound hook does to a document, given the raw segments of its
#: set (ST..SE); raises HookFailed.
DocumentHook = Callable[["CanonicalDocument", Sequence[Sequence[str]]], "CanonicalDocument"]


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """What planning needs of a stored message (never an ORM row: it crosses
    process boundaries)."""

    id: str
    partner_id: str | None  # the authenticated partner, None when the transport does not know
    kind: str  # "x12" or "canonical"
    raw_sha256: str
    # The payload's bytes when the caller has them (a small payload, kept in the
    # database): planned from these instead of opening a file. Not in repr (partner data).
    raw_data: bytes | None = field(default=None, repr=False)

    @classmethod
    def of(cls, message: Any, raw_data: bytes | None = None) -> InboundMessage:
        """The fields of any object that has them (a database row, a namespace), with
        ``raw_data`` or the object's own ``raw_data`` when it has one."""
        if raw_data is None:
            raw_data = getattr(message, "raw_data", None)
        return cls(message.id, message.partner_id, message.kind, message.raw_sha256, raw_data)


@dataclass(slots=True)
class InboundPlan:
    """What the translate step decided, written later in one transaction.

    ``documents`` are row values without ``id`` (the writer issues ids in write
    order); an X12 document's row carries ``_isa_index``, the position of its
    interchange, so the writer can drop the documents of a duplicate interchange.
    """

    status: str
    reason: str | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    interchanges: list[TranslatedInterchange] = field(default_factory=list)
    duplicates: list[TranslatedInterchange] = field(default_factory=list)
    first_sender: str | None = None
    first_control: str | None = None
    detail: dict[str, Any] | None = None  # goes on the event of the final status
    results: list[InterchangeResult] = field(default_factory=list)  # one per interchange, in order
    # (partner id, FunctionalAckReport | Ta1Report) the partner sent about our outbound
    acks: list[tuple[str, Any]] = field(default_factory=list)


def document_idempotency_key(message_id: str, seq: int) -> str:
    """Stable across retries and replays of one message; distinct for every other."""
    return hashlib.sha256(f"gateway-document:{message_id}:{seq}".encode()).hexdigest()


def plan_inbound(
    message: InboundMessage,
    payload: BinaryIO,
    partners: PartnerLookup,
    hook: DocumentHook | None = None,
    progress: Progress | None = None,
) -> InboundPlan:
    """The plan for ``message`` whose raw bytes ``payload`` is open on."""
    if message.kind == "canonical":
        return plan_canonical(message, payload.read())
    return plan_x12(message, payload, partners, hook, progress)


def plan_canonical(message: InboundMessage, data: bytes) -> InboundPlan:
    """A canonical JSON document posted by a partner: one document, or failed."""
    from pydantic import ValidationError

    from translators.canonical import CanonicalDocument

    try:
        try:
            doc = CanonicalDocument.model_validate_json(data)
        except ValidationError as exc:
            raise InvalidCanonical(exc.errors()[0]["msg"]) from None
    except InboundRefused as refused:
        return InboundPlan(status=refused.message_status, reason=str(refused))
    canonical = doc.model_dump(mode="json")
    canonical["partner_id"] = message.partner_id
    plan = InboundPlan(status="translated", detail={"documents": 1})
    plan.documents.append(_document_row(message, 1, doc.kind, canonical, doc, None))
    return plan


def plan_x12(
    message: InboundMessage,
    payload: BinaryIO,
    partners: PartnerLookup,
    hook: DocumentHook | None = None,
    progress: Progress | None = None,
) -> InboundPlan:
    """Translate the X12 in ``payload`` and decide: quarantine (a sender that is no
    partner, or not the authenticated one), failed (not X12, a hook failed, every
    set rejected) or translated (with the rejected sets named in the reason)."""
    plan = InboundPlan(status="translated")
    try:
        _plan_x12(message, payload, partners, hook, plan, progress)
    except InboundRefused as refused:
        return InboundPlan(
            status=refused.message_status,
            reason=str(refused),
            events=plan.events,
            first_sender=plan.first_sender,
            first_control=plan.first_control,
        )
    return plan


def _translated(
    message: InboundMessage,
    payload: BinaryIO,
    partners: PartnerLookup,
    progress: Progress | None = None,
    *,
    keep_segments: bool = False,
) -> list[tuple[TranslatedInterchange, list[TranslatedSet]]]:
    """Each interchange of the payload with its sets, in order (with their raw
    segments when ``keep_segments``: a hook will want them); ``progress`` hears of
    every set (with the number of sets the payload holds, counted first)."""
    from translators.engine import TranslatedInterchange, translate
    from translators.x12.errors import NotX12Error

    pending: list[TranslatedSet] = []
    per_interchange: list[tuple[TranslatedInterchange, list[TranslatedSet]]] = []
    total = count_sets(payload) if progress is not None else None
    done = 0
    receivers = getattr(partners, "receivers", None)
    try:
        # reject_duplicates: a repeat inside this one message (the writer catches
        # repeats across messages)
        for item in translate(
            payload,
            partners=partners,
            partner_id=message.partner_id,
            receivers=receivers,
            reject_duplicates=True,
            keep_segments=(lambda _partner: True) if keep_segments else None,
        ):
            if isinstance(item, TranslatedInterchange):
                per_interchange.append((item, pending))
                pending = []
            else:
                pending.append(item)
                if progress is not None:
                    done += 1
                    progress(done, total)
    except NotX12Error as exc:
        raise NotX12(exc.reason, exc.offset) from None
    return per_interchange


def count_sets(payload: BinaryIO, chunk: int = 1 << 20) -> int | None:
    """How many transaction sets (ST segments) ``payload`` holds, by the first ISA's
    delimiters, read in chunks and rewound; None when it is not seekable or does not
    start with an ISA. An estimate for progress only: the engine decides what a set is."""
    if not payload.seekable():
        return None
    start = payload.tell()
    head = payload.read(106).lstrip()
    payload.seek(start)
    if len(head) < 106 or not head.startswith(b"ISA"):
        return None
    element, terminator = head[3:4], head[105:106]
    marker = re.compile(re.escape(terminator) + rb"\s*ST" + re.escape(element))
    count, tail = 0, b""
    while block := payload.read(chunk):
        data = tail + block
        count += len(marker.findall(data))
        # Keep the end that could hold a marker cut in two (whitespace runs are short).
        cut = data.rfind(terminator)
        tail = data[cut:] if cut >= 0 and len(data) - cut < 64 else b""
        count -= len(marker.findall(tail))  # counted again with the next block
    payload.seek(start)
    return count + len(marker.findall(tail))


def _sender_of(interchange: TranslatedInterchange) -> str:
    """The sender as "ZZ/ACME", stored (messages.interchange_sender) and quoted in reasons: a NUL
    in it is written as the text ``\\x00`` (PostgreSQL stores no NUL in text, SQLite
    does: the same file is quarantined alike on both)."""
    header = interchange.outcome.header
    return f"{header.sender_qualifier.strip()}/{header.sender_id.strip()}".replace("\x00", "\\x00")


def check_senders(message: InboundMessage, interchanges: list[TranslatedInterchange]) -> None:
    """Every interchange must belong to a known partner, and to the authenticated
    one when the transport already knows who is talking; raises the quarantine."""
    for interchange in interchanges:
        header = interchange.outcome.header
        profile = interchange.profile
        if profile is None:
            raise UnknownSender(_sender_of(interchange))
        if message.partner_id is not None and not any(
            a.qualifier == header.sender_qualifier.strip() and a.id == header.sender_id.strip()
            for a in profile.x12.addresses
        ):
            raise SenderNotPartner(_sender_of(interchange), message.partner_id)


def _plan_x12(
    message: InboundMessage,
    payload: BinaryIO,
    partners: PartnerLookup,
    hook: DocumentHook | None,
    plan: InboundPlan,
    progress: Progress | None = None,
) -> None:
    from translators.x12.ack_reader import read_ta1

    per_interchange = _translated(message, payload, partners, progress, keep_segments=hook is not None)
    sets = sum(len(s) for _, s in per_interchange)
    groups = sum(len(i.outcome.groups) for i, _ in per_interchange)
    plan.events.append(("parsed", {"interchanges": len(per_interchange), "groups": groups, "sets": sets}))
    if per_interchange:
        first = per_interchange[0][0].outcome.header
        plan.first_sender = _sender_of(per_interchange[0][0])
        plan.first_control = first.control_number.strip()
    check_senders(message, [i for i, _ in per_interchange])

    rejected: list[str] = []
    seq = 0
    for interchange, tsets in per_interchange:
        plan.interchanges.append(interchange)
        documents_before, not_used = len(plan.documents), 0
        if interchange.profile is not None:
            plan.acks.extend(
                (interchange.profile.id, read_ta1(segment))
                for segment in interchange.interchange_segments
                if segment and segment[0] == "TA1"
            )
        for tset in tsets:
            seq += 1
            envelope_problem = interchange.rejection_of(tset) if tset.document is not None else None
            if envelope_problem is not None:
                not_used += 1
                # A valid set in a rejected group or interchange: the partner is told
                # to send it all again, so it must not reach the ERP now. A rejected
                # interchange is said once, below, for all its sets.
                if not interchange.outcome.notes:
                    rejected.append(
                        f"{tset.outcome.set_id} {tset.outcome.control_number} not used: {envelope_problem}"
                    )
            elif tset.document is not None and tset.accepted:
                # A failed hook raises HookFailed: fix the hook, then replay; nothing
                # of this message is used.
                document = hook(tset.document, tset.segments or ()) if hook is not None else tset.document
                tset.segments = None  # used: let them go
                canonical = document.model_dump(mode="json")
                plan.documents.append(_document_row(message, seq, document.kind, canonical, document, tset))
            elif tset.ack_report is not None:
                if interchange.profile is not None:
                    plan.acks.append((interchange.profile.id, tset.ack_report))
                plan.events.append(
                    (
                        "functional_ack_received",
                        {"set_control": tset.outcome.control_number, "set_id": tset.outcome.set_id},
                    )
                )
            else:
                not_used += 1
                rejected.append(
                    tset.reason or f"{tset.outcome.set_id} {tset.outcome.control_number} not translated"
                )
        envelope = interchange.envelope_rejection()
        if envelope is not None:
            rejected.append(envelope)
        plan.results.append(
            InterchangeResult(
                index=interchange.outcome.header.index,
                sender=_sender_of(interchange),
                control=interchange.outcome.header.control_number.strip(),
                sets=len(tsets),
                documents=len(plan.documents) - documents_before,
                rejected=not_used,
                envelope=envelope,
            )
        )
    detail: dict[str, Any] = {"documents": len(plan.documents)}
    if rejected:
        detail["rejected"] = rejected[:20]
    plan.detail = detail
    if not plan.documents and rejected:
        plan.status, plan.reason = "failed", "; ".join(rejected[:5])
    elif rejected:
        plan.reason = f"{len(rejected)} set(s) rejected: " + "; ".join(rejected[:3])


def _document_row(
    message: InboundMessage,
    seq: int,
    kind: str,
    canonical: dict[str, Any],
    doc: CanonicalDocument,
    tset: TranslatedSet | None,
) -> dict[str, Any]:
    """The values of one ``documents`` row (without ``id``)."""
    number = business_number(kind, doc.document)
    row: dict[str, Any] = {
        "message_id": message.id,
        "seq": seq,
        "partner_id": message.partner_id or getattr(tset, "partner_id", None),
        "direction": "in",
        "kind": kind,
        "set_id": tset.outcome.set_id if tset is not None else None,
        "set_control": tset.outcome.control_number if tset is not None else None,
        "group_control": tset.group.control_number.strip()
        if tset is not None and tset.group is not None
        else None,
        "interchange_control": tset.interchange.control_number.strip() if tset is not None else None,
        "business_number": number,
        "canonical": orjson.loads(orjson.dumps(canonical)),
        "idempotency_key": document_idempotency_key(message.id, seq),
        "status": "pending",
        "attempts": 0,
    }
    if tset is not None:
        row["_isa_index"] = tset.interchange.index
    return row


__all__ = [
    "DocumentHook",
    "HookFailed",
    "InboundMessage",
    "InboundPlan",
    "Progress",
    "check_senders",
    "count_sets",
    "document_idempotency_key",
    "plan_canonical",
    "plan_inbound",
    "plan_x12",
]
