"""The translation engine: X12 in, validated canonical documents and outcome records out.

This is the one function the service and the CLI call. It composes the layers:

    read_events (envelope reader) -> validate_set (grammar) -> to_canonical (mapping)

and yields, in input order, one :class:`TranslatedSet` per transaction set and one
:class:`TranslatedInterchange` after the sets of each interchange. Outcome records
(not segments) are kept per interchange so acknowledgments can be built; nothing
else accumulates, so memory stays bounded on big files.

It never does I/O beyond reading the stream it is handed, and never decides what to
do with a document: storing, forwarding and acknowledging belong to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, BinaryIO, Protocol

from translators.canonical import CanonicalDocument, DocumentWarning
from translators.mapping import KIND_BY_SET, to_canonical
from translators.mapping.coverage import unmapped_segments
from translators.mapping.errors import MappingError
from translators.mapping.rules import MappingRules
from translators.profile import PartnerProfile
from translators.x12.codes import InterchangeNote, SetSyntaxCode
from translators.x12.envelope import read_events
from translators.x12.events import (
    GroupEnd,
    GroupStart,
    InterchangeEnd,
    InterchangeSegment,
    InterchangeStart,
    SetRead,
    Stray,
)
from translators.x12.leniency import switch_for
from translators.x12.model import (
    ElementError,
    GroupHeader,
    GroupOutcome,
    InterchangeHeader,
    InterchangeOutcome,
    Segment,
    SegmentError,
    SetOutcome,
    TransactionSet,
)
from translators.x12.validation import set_grammar, validate_set

if TYPE_CHECKING:
    from translators.x12.ack_reader import FunctionalAckReport

FUNCTIONAL_ACK_SETS = frozenset({"997", "999"})
_NO_RULES = MappingRules.model_construct()


class PartnerLookup(Protocol):
    """Finds partner profiles; the gateway's partner directory is one."""

    def get(self, partner_id: str) -> PartnerProfile | None: ...

    def by_interchange(self, qualifier: str, interchange_id: str) -> PartnerProfile | None: ...


@dataclass(slots=True)
class TranslatedSet:
    """One transaction set: its verdict and, when accepted and mapped, its document.

    ``reason`` says in one line why the set was rejected or not translated.
    ``ack_report`` is set for inbound 997/999 sets (what the partner acknowledged).
    """

    outcome: SetOutcome
    interchange: InterchangeHeader
    group: GroupHeader | None
    partner_id: str | None
    document: CanonicalDocument | None = None
    reason: str | None = None
    ack_report: FunctionalAckReport | None = None
    # the set's segments (ST..SE), kept only when ``translate(keep_segments=...)``
    # asks for them (a partner hook receives them)
    segments: list[Segment] | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome.accepted and self.reason is None


@dataclass(slots=True)
class TranslatedInterchange:
    """The outcome tree of one interchange, yielded after its sets.

    ``profile`` is None when no partner profile matched the ISA sender.
    ``interchange_segments`` holds segments outside groups (TA1 from the partner);
    ``stray`` the data found around the interchange that belongs to no envelope.
    """

    outcome: InterchangeOutcome
    partner_id: str | None
    profile: PartnerProfile | None
    interchange_segments: list[Segment] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)

    def envelope_rejection(self) -> str | None:
        """One line saying why the whole interchange was rejected (its TA1 notes),
        None when its envelope is sound."""
        if not self.outcome.notes:
            return None
        header = self.outcome.header
        notes = ", ".join(f"{n.value} ({n.name.lower().replace('_', ' ')})" for n in self.outcome.notes)
        return (
            f"interchange {header.control_number.strip()} from {header.sender_qualifier.strip()}/"
            f"{header.sender_id.strip()} rejected: TA1 note {notes}"
        )

    def rejection_of(self, tset: TranslatedSet) -> str | None:
        """Why ``tset``'s document must not be used although the set itself is
        valid: its interchange was rejected (TA1 notes) or its group was (AK9 R, e.g.
        a GE01 count or GE02 control that does not match). The partner is told to
        send the whole interchange or group again, so using its documents now would
        make duplicates. None when nothing above the set is wrong.

        Only known once the interchange has ended: sets are yielded as they are read,
        before their GE and IEA, so a caller that forwards documents waits for this."""
        rejected = self.envelope_rejection()
        if rejected is not None:
            return rejected
        for group in self.outcome.groups:
            if group.header is tset.group:
                if group.errors:
                    codes = ", ".join(f"{e.value} ({e.name.lower().replace('_', ' ')})" for e in group.errors)
                    return f"group {group.header.control_number.strip()} rejected: AK9 code {codes}"
                return None
        if tset.group is not None:  # its GE never came: the group is not complete
            return f"group {tset.group.control_number.strip()} rejected: no GE trailer"
        return None


Translated = TranslatedSet | TranslatedInterchange


def translate(
    source: bytes | BinaryIO,
    *,
    partners: PartnerLookup,
    partner_id: str | None = None,
    receivers: Collection[tuple[str, str]] | None = None,
    reject_duplicates: bool = False,
    unknown_sender_rules: MappingRules | None = None,
    keep_segments: Callable[[str | None], bool] | None = None,
) -> Iterator[Translated]:
    """Translate every transaction set in ``source``.

    When ``partner_id`` is given (the transport already authenticated the partner)
    that profile applies to every interchange; otherwise each interchange's ISA
    sender picks the profile, and an unknown sender leaves ``profile`` None (the
    sets are still read and validated, but nothing is mapped: whose rules would
    apply?). Raises :class:`translators.x12.errors.NotX12Error` when the input holds
    no interchange at all.

    ``unknown_sender_rules``: map the sets of a sender no profile matches with these
    rules (``partner_id`` null) instead of leaving them untranslated; for looking at
    a new partner's samples before its profile exists. The service never does this.

    ``receivers`` are the ISA addresses (qualifier, id) that are us; with them, an
    interchange addressed to anyone else (ISA07/ISA08), and not to one of the
    ``our_ids`` of the sender's profile, is rejected with TA1 note 009 (unknown
    interchange receiver): it was sent to the wrong company. None: no check.

    ``reject_duplicates``: an interchange whose sender (ISA05/ISA06) and control
    number (ISA13) repeat those of an earlier interchange in this same input is
    rejected with TA1 note 025 (duplicate interchange control number), so
    :meth:`TranslatedInterchange.rejection_of` keeps all of its documents from use;
    a sender whose profile sets ``x12.reject_duplicates = false`` is exempt. Only
    this one input is known here: duplicates of earlier messages are the caller's
    to find (the service keeps them in its database).

    ``keep_segments``: called with a set's partner id; when it says yes, the
    set's raw segments stay on its :class:`TranslatedSet` (``segments``), for the
    partner's hooks. Off by default: they would keep every set of the input alive.
    """
    fixed = partners.get(partner_id) if partner_id is not None else None
    profile: PartnerProfile | None = fixed
    interchange: InterchangeOutcome | None = None
    group: GroupOutcome | None = None
    loose: list[Segment] = []
    stray: list[str] = []
    received: set[tuple[str, str, str]] = set()

    for event in read_events(source):
        if isinstance(event, SetRead):
            tset = event.transaction_set
            result = _translate_set(tset, profile, unknown_sender_rules)
            if keep_segments is not None and keep_segments(result.partner_id):
                result.segments = tset.segments
            if group is not None:
                group.sets.append(result.outcome)
            yield result
        elif isinstance(event, InterchangeStart):
            header = event.header
            profile = fixed or partners.by_interchange(header.sender_qualifier, header.sender_id)
            interchange = InterchangeOutcome(header=header)
            if receivers is not None and not _addressed_to_us(header, receivers, profile):
                interchange.notes.append(InterchangeNote.UNKNOWN_RECEIVER_ID)
            if reject_duplicates and (profile is None or profile.x12.reject_duplicates):
                key = (
                    header.sender_qualifier.strip(),
                    header.sender_id.strip(),
                    header.control_number.strip(),
                )
                if key in received:
                    interchange.notes.append(InterchangeNote.DUPLICATE_INTERCHANGE)
                received.add(key)
            loose = []
        elif isinstance(event, GroupStart):
            group = GroupOutcome(header=event.header)
        elif isinstance(event, GroupEnd):
            if group is not None:
                group.errors.extend(event.errors)
                group.sets_included = _count(event.trailer)
                if interchange is not None:
                    interchange.groups.append(group)
            group = None
        elif isinstance(event, InterchangeEnd):
            if interchange is None:
                interchange = InterchangeOutcome(header=event.header)
            interchange.notes.extend(event.notes)
            interchange.groups_included = _count(event.trailer)
            yield TranslatedInterchange(
                outcome=interchange,
                partner_id=profile.id if profile else None,
                profile=profile,
                interchange_segments=loose,
                stray=stray,
            )
            interchange, group, stray = None, None, []
        elif isinstance(event, InterchangeSegment):
            loose.append(event.segment)
        elif isinstance(event, Stray):
            stray.append(event.text)


def _addressed_to_us(
    header: InterchangeHeader, receivers: Collection[tuple[str, str]], profile: PartnerProfile | None
) -> bool:
    address = (header.receiver_qualifier.strip(), header.receiver_id.strip())
    if address in receivers:
        return True
    return profile is not None and any((a.qualifier, a.id) == address for a in profile.x12.our_ids)


def _translate_set(
    tset: TransactionSet, profile: PartnerProfile | None, unknown_sender_rules: MappingRules | None = None
) -> TranslatedSet:
    validation = profile.x12.validation if profile is not None else None
    paths: list[tuple[str, ...]] = []  # each segment's loop path, for the unmapped listing
    outcome = validate_set(
        tset, leniency=validation.leniency() if validation is not None else None, paths=paths
    )
    result = TranslatedSet(
        outcome=outcome,
        interchange=tset.interchange,
        group=tset.group,
        partner_id=profile.id if profile else None,
    )
    if not outcome.accepted:
        result.reason = describe_rejection(outcome)
        return result
    if tset.set_id in FUNCTIONAL_ACK_SETS:
        # imported when a 997/999 comes: its seven dataclasses cost a one-set
        # translation ~3% of its start-up
        from translators.x12.ack_reader import AckReadError, read_functional_ack

        try:
            result.ack_report = read_functional_ack(tset)
        except AckReadError as exc:
            result.reason = f"unreadable {tset.set_id}: {exc}"
        return result
    if tset.set_id not in KIND_BY_SET:
        result.reason = f"transaction set {tset.set_id} is not translated by this gateway"
        return result
    if profile is None and unknown_sender_rules is None:
        result.reason = (
            f"no partner profile for sender {tset.interchange.sender_qualifier}/{tset.interchange.sender_id}"
        )
        return result
    if profile is None:
        # A first look at a new partner's sample: default rules, partner_id null.
        partner, rules = None, unknown_sender_rules or _NO_RULES
    else:
        partner, rules = profile.id, profile.mapping or _NO_RULES
    line_count = validation.line_count if validation is not None else "reject"
    if line_count == "ignore":
        rules = _ignoring_line_count(rules)
    try:
        try:
            result.document = to_canonical(tset, partner_id=partner, rules=rules)
        except MappingError as exc:
            if exc.switch != "line_count" or line_count != "note":
                raise
            # [x12.validation] line_count = "note": accept, and report the count as noted
            result.document = to_canonical(tset, partner_id=partner, rules=_ignoring_line_count(rules))
            noted = _mapping_segment_error(tset, exc)
            if noted is not None:
                outcome.noted.append(noted)
    except MappingError as exc:
        result.reason = exc.reason
        if exc.switch is not None:
            result.reason += f' ([x12.validation] {exc.switch} = "note" would accept it)'
        _record_mapping_error(outcome, tset, exc)
        return result
    warnings = document_warnings(outcome, tset)
    found = set_grammar(tset) if outcome.grammar_version is not None else None
    kind = KIND_BY_SET[tset.set_id]
    unmapped = unmapped_segments(tset.segments, kind, found[0], rules, paths) if found else ()
    if warnings or unmapped:
        result.document = result.document.model_copy(update={"warnings": warnings, "unmapped": unmapped})
    return result


def document_warnings(outcome: SetOutcome, tset: TransactionSet) -> tuple[DocumentWarning, ...]:
    """What validation noted but accepted, as the document's ``warnings``: first
    which grammar was used when it was not the set's own release (decision 0004),
    then one entry per noted segment or element error."""
    warnings: list[DocumentWarning] = []
    if outcome.grammar_version is not None and not outcome.grammar_exact:
        version = (tset.group.version if tset.group is not None else tset.interchange.version).strip()
        warnings.append(
            DocumentWarning(
                segment="GS" if tset.group is not None else "ISA",
                element=8 if tset.group is not None else 12,
                code="grammar",
                text=(
                    f"no {tset.set_id} grammar for version {version}: validated with the nearest, "
                    f"{tset.set_id} {outcome.grammar_version}; what it does not know is noted, not rejected"
                ),
            )
        )
    for error in outcome.noted:
        if not error.elements:
            text = f"{error.tag} at segment {error.position}: {_label(error.code)}"
            warnings.append(
                DocumentWarning(segment=error.tag, position=error.position, code=error.code.value, text=text)
            )
        for element in error.elements:
            text = f"{error.tag}{element.position:02d}: {_label(element.code)}"
            if element.value:
                text += f" {element.value!r}"
            if error.message:
                text += f": {error.message}"
            warnings.append(
                DocumentWarning(
                    segment=error.tag,
                    position=error.position,
                    element=element.position,
                    code=element.code.value,
                    text=text,
                )
            )
    return tuple(warnings)


def _label(code: Enum) -> str:
    return f"code {code.value} ({code.name.lower().replace('_', ' ')})"


def _ignoring_line_count(rules: MappingRules) -> MappingRules:
    return rules.model_copy(
        update={
            "order": rules.order.model_copy(update={"line_count": "ignore"}),
            "order_ack": rules.order_ack.model_copy(update={"line_count": "ignore"}),
        }
    )


def _mapping_segment_error(tset: TransactionSet, exc: MappingError) -> SegmentError | None:
    """The AK3/AK4 for a mapping rejection, when the mapper named a segment."""
    if exc.segment is None or exc.segment_code is None:
        return None
    position = next(
        (i for i, seg in enumerate(tset.segments, start=1) if seg and seg[0] == exc.segment),
        len(tset.segments),
    )
    elements: tuple[ElementError, ...] = ()
    if exc.element is not None and exc.element_code is not None:
        elements = (ElementError(position=exc.element, code=exc.element_code),)
    return SegmentError(
        tag=exc.segment, position=position, code=exc.segment_code, elements=elements, message=exc.reason
    )


def _record_mapping_error(outcome: SetOutcome, tset: TransactionSet, exc: MappingError) -> None:
    """Turn a mapping rejection into acknowledgment codes: the segment to blame when
    the mapper named one (AK3/AK4), and the set code it chose (AK5)."""
    error = _mapping_segment_error(tset, exc)
    if error is not None:
        outcome.segment_errors.append(error)
    if exc.set_code not in outcome.set_errors:
        outcome.set_errors.append(exc.set_code)


def describe_rejection(outcome: SetOutcome, *, limit: int | None = 3) -> str:
    """One line a person can act on, naming the first ``limit`` segment errors (all
    with None: ``--all-errors``) and their codes, and the ``[x12.validation]``
    switch that would accept an error when one would."""
    parts: list[str] = []
    for code in outcome.set_errors:
        if code is not SetSyntaxCode.ONE_OR_MORE_SEGMENTS_IN_ERROR:
            parts.append(f"set error {code.value} ({code.name.lower().replace('_', ' ')})")
    shown = outcome.segment_errors if limit is None else outcome.segment_errors[:limit]
    for seg in shown:
        text = f"{seg.tag} at segment {seg.position}: code {seg.code.value} ({seg.code.name.lower().replace('_', ' ')})"
        elements = seg.elements if limit is None else seg.elements[:1]
        for el in elements:
            text += f", element {seg.tag}{el.position:02d} code {el.code.value} ({el.code.name.lower().replace('_', ' ')})"
            if el.value:
                text += f" value {el.value!r}"
        check = switch_for(seg)
        if check is not None:
            text += f' ([x12.validation] {check.value} = "note" would accept it)'
        parts.append(text)
    more = len(outcome.segment_errors) - len(shown)
    if more > 0:
        parts.append(f"and {more} more segment errors")
    return f"{outcome.set_id} {outcome.control_number} rejected: " + "; ".join(parts or ["invalid"])


def _count(trailer: Segment | None) -> int | None:
    if trailer is None or len(trailer) < 2:
        return None
    value = trailer[1].strip()
    return int(value) if value.isdigit() else None
