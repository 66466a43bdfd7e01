"""The acknowledgment interchanges one inbound message gets.

One message is answered with at most one acknowledgment interchange per partner
address and usage indicator (P/T/I) it came from, not one per inbound
interchange: a post of ten thousand bare ISA..IEA envelopes must not become ten
thousand outbox rows and ten thousand posts to the partner. X12 allows several
TA1 segments in one interchange and several 997/999 sets in one group, so the
interchange answering several inbound ones carries every TA1 (up to
``max_ta1``; the rest are counted, not sent) and every functional ack, grouped
by kind and version as :func:`translators.x12.acks.render_acknowledgments` does
for one. A message of one interchange (the usual case) is answered exactly as
that function answers it.

:func:`batch_acks` decides which inbound interchanges share an answer;
:func:`assemble_acks` writes one answer. Both are pure: the caller allocates the
control numbers (:attr:`AckBatch.group_numbers` of them for the groups), hands
in ``now`` and stores the text. ``gateway ack`` (CLI) and the pipeline both
write their acknowledgments here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from translators.engine import TranslatedInterchange
    from translators.x12.acks import AckInterchange
    from translators.x12.model import InterchangeHeader, InterchangeOutcome

#: TA1 segments one acknowledgment interchange carries at most (the default of
#: ``[pipeline] max_ta1_per_ack``).
DEFAULT_MAX_TA1 = 100


@dataclass(frozen=True, slots=True)
class AckDue:
    """One inbound interchange to answer: its outcome, the functional ack setting
    that applies (``none`` for a duplicate, which gets its TA1 025 only) and
    whether it carried TA1s itself (no TA1 answers a TA1)."""

    outcome: InterchangeOutcome
    functional_ack: str
    replies_to_ta1: bool = False

    @classmethod
    def of(cls, interchange: TranslatedInterchange, *, duplicate: bool = False) -> AckDue:
        from translators.x12.codes import InterchangeNote
        from translators.x12.model import InterchangeOutcome

        replies = any(seg and seg[0] == "TA1" for seg in interchange.interchange_segments)
        if duplicate:
            # A duplicate gets a TA1 025 only (its groups are not processed again).
            outcome = InterchangeOutcome(
                header=interchange.outcome.header, notes=[InterchangeNote.DUPLICATE_INTERCHANGE], groups=[]
            )
            return cls(outcome, "none", replies)
        profile = interchange.profile
        return cls(interchange.outcome, profile.x12.functional_ack if profile else "none", replies)


@dataclass(frozen=True, slots=True)
class AckBatch:
    """Inbound interchanges of one message answered by one acknowledgment
    interchange: same partner, same address (``receiver``), same usage."""

    profile: Any
    receiver: tuple[str, str]
    due: tuple[AckDue, ...]
    # who answers: the address the partner sent to when it is one of its profile's
    # ``our_ids``; None: our [identity]
    sender: tuple[str, str] | None = None

    @property
    def group_numbers(self) -> int:
        """How many GS06 numbers to allocate for this answer."""
        if len(self.due) == 1:
            return max(1, len(self.due[0].outcome.groups))
        return max(1, len(_functional_groups(self.due)))


@dataclass(frozen=True, slots=True)
class AssembledAck:
    """One written answer (None when nothing was due) and how many inbound
    interchanges were not answered individually because of the TA1 cap."""

    ack: AckInterchange | None
    unanswered: int = 0


def ack_receiver(header: InterchangeHeader, profile: Any) -> tuple[str, str]:
    """Where the answer goes: the inbound ISA sender when it is one of the
    partner's addresses, else the partner's own address (a file from their test
    system checked with ``gateway ack --partner``)."""
    sender = (header.sender_qualifier.strip(), header.sender_id.strip())
    x12 = profile.x12
    if any(a.qualifier == sender[0] and a.id == sender[1] for a in x12.addresses):
        return sender
    return (x12.interchange_qualifier, x12.interchange_id)


def ack_sender(header: InterchangeHeader, profile: Any) -> tuple[str, str] | None:
    """The address we answer from: the inbound ISA receiver (ISA07/ISA08) when it
    is one of the partner's ``our_ids`` (the partner knows us by it), else None
    (the gateway's ``[identity]``)."""
    us = (header.receiver_qualifier.strip(), header.receiver_id.strip())
    return us if any((a.qualifier, a.id) == us for a in profile.x12.our_ids) else None


def batch_acks(
    interchanges: Sequence[TranslatedInterchange], duplicates: Sequence[TranslatedInterchange] = ()
) -> list[AckBatch]:
    """The answers one message gets: its interchanges (then its duplicates) grouped
    by partner, address, usage and the address they were sent to, in first-seen order. An interchange of no known
    partner gets nothing (it is quarantined)."""
    from translators.x12.acks import _mirrored_usage

    batches: dict[tuple[str, tuple[str, str], str, tuple[str, str] | None], tuple[Any, list[AckDue]]] = {}
    for interchange, duplicate in [(i, False) for i in interchanges] + [(d, True) for d in duplicates]:
        profile = interchange.profile
        if profile is None:
            continue
        header = interchange.outcome.header
        receiver = ack_receiver(header, profile)
        key = (profile.id, receiver, _mirrored_usage(header.usage), ack_sender(header, profile))
        batches.setdefault(key, (profile, []))[1].append(AckDue.of(interchange, duplicate=duplicate))
    return [AckBatch(profile, key[1], tuple(due), key[3]) for key, (profile, due) in batches.items()]


def assemble_acks(
    due: Sequence[AckDue],
    *,
    ta1: str,
    sender: tuple[str, str],
    receiver: tuple[str, str],
    group_sender: str,
    group_receiver: str,
    interchange_control: int,
    group_control: int,
    now: datetime,
    max_ta1: int = DEFAULT_MAX_TA1,
) -> AssembledAck:
    """The one interchange answering ``due`` (see the module doc). ``ta1`` is the
    partner's TA1 policy; our FA groups are numbered from ``group_control``."""
    from translators.x12.acks import render_acknowledgments

    if len(due) == 1:
        [one] = due
        ack = render_acknowledgments(
            one.outcome,
            functional_ack=one.functional_ack,
            ta1=ta1,
            sender=sender,
            receiver=receiver,
            group_sender=group_sender,
            group_receiver=group_receiver,
            interchange_control=interchange_control,
            group_control=group_control,
            now=now,
            replies_to_ta1=one.replies_to_ta1,
        )
        return AssembledAck(ack)
    return _assemble_many(
        due,
        ta1=ta1,
        sender=sender,
        receiver=receiver,
        group_sender=group_sender,
        group_receiver=group_receiver,
        interchange_control=interchange_control,
        group_control=group_control,
        now=now,
        max_ta1=max_ta1,
    )


def _functional_groups(due: Sequence[AckDue]) -> list[tuple[str, str]]:
    """(kind, version) of each FA group the answer to ``due`` has, in order."""
    from translators.x12.acks import ACK_FUNCTIONAL_ID, functional_ack_kind, functional_ack_version

    found: list[tuple[str, str]] = []
    for item in due:
        if not item.outcome.accepted:
            continue
        for group in item.outcome.groups:
            if group.header.functional_id.strip() == ACK_FUNCTIONAL_ID:
                continue
            kind = functional_ack_kind(group.header.version, item.functional_ack)
            if kind is None:
                continue
            key = (kind, functional_ack_version(kind, group.header.version))
            if key not in found:
                found.append(key)
    return found


def _assemble_many(
    due: Sequence[AckDue],
    *,
    ta1: str,
    sender: tuple[str, str],
    receiver: tuple[str, str],
    group_sender: str,
    group_receiver: str,
    interchange_control: int,
    group_control: int,
    now: datetime,
    max_ta1: int,
) -> AssembledAck:
    # The envelope details (delimiters, usage, a lone TA1's ISA12) follow the first
    # inbound interchange, as render_acknowledgments does for its one.
    from translators.x12.acks import (
        ACK_FUNCTIONAL_ID,
        AckInterchange,
        IssuedAck,
        _interchange_version,
        _mirrored_usage,
        _outbound_delimiters,
        _scrub,
        build_functional_ack,
        build_ta1,
        functional_ack_kind,
        functional_ack_version,
    )
    from translators.x12.writer import OutboundGroup, write_interchange

    first = due[0].outcome.header
    d = _outbound_delimiters(first.delimiters)
    ta1_segments: list[list[str]] = []
    acks: list[IssuedAck] = []
    unanswered = 0
    for item in due:
        segment = build_ta1(item.outcome, policy=ta1, replies_to_ta1=item.replies_to_ta1)
        if segment is None:
            continue
        if len(ta1_segments) >= max_ta1:
            unanswered += 1
            continue
        segment = _scrub(segment, d)
        ta1_segments.append(segment)
        acks.append(IssuedAck("TA1", segment[1], segment[4]))

    order = _functional_groups(due)
    sets: dict[tuple[str, str], list[list[list[str]]]] = {fa_group: [] for fa_group in order}
    group_acks: dict[tuple[str, str], list[IssuedAck]] = {fa_group: [] for fa_group in order}
    set_number = 0
    for item in due:
        if not item.outcome.accepted:
            continue
        for group in item.outcome.groups:
            if group.header.functional_id.strip() == ACK_FUNCTIONAL_ID:
                continue
            kind = functional_ack_kind(group.header.version, item.functional_ack)
            if kind is None:
                continue
            key = (kind, functional_ack_version(kind, group.header.version))
            set_number += 1
            st02 = f"{set_number:04d}"
            built = build_functional_ack(group, kind=kind, control_number=st02, delimiters=d)
            sets[key].append(built)
            group_acks[key].append(
                IssuedAck(kind, group.header.control_number.strip(), built[-2][1], None, st02)
            )

    if not ta1_segments and not order:
        return AssembledAck(None, unanswered)
    group_controls = tuple(str(group_control + i) for i in range(len(order)))
    for control, fa_group in zip(group_controls, order, strict=True):
        acks.extend(a._replace(group_control=control) for a in group_acks[fa_group])
    text = write_interchange(
        sender=sender,
        receiver=receiver,
        control_number=interchange_control,
        at=now,
        usage=_mirrored_usage(first.usage),
        ack_requested=False,
        delimiters=d,
        version=None if order else _interchange_version(first.version),
        interchange_segments=ta1_segments,
        groups=[
            OutboundGroup(
                ACK_FUNCTIONAL_ID, group_sender, group_receiver, group_control + i, key[1], sets[key]
            )
            for i, key in enumerate(order)
        ],
    )
    ack = AckInterchange(
        text=text,
        interchange_control=f"{interchange_control:09d}",
        group_controls=group_controls,
        acks=tuple(acks),
    )
    return AssembledAck(ack, unanswered)
