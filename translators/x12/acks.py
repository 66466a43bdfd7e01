"""Acknowledgment builders: TA1, 997 and 999 from the engine's outcome records.

The reader and validation record what they found (:class:`InterchangeOutcome`,
:class:`GroupOutcome`, :class:`SetOutcome`, each error with its X12 code); this
module only renders those records. It decides nothing about the data itself:

* :func:`build_functional_ack` renders one 997 or 999 (ST..SE) for one inbound group;
* :func:`build_ta1` renders the TA1 for one inbound interchange;
* :func:`render_acknowledgments` applies the partner's policy (which functional ack,
  when a TA1) and wraps everything in one interchange through the shared writer.

It must never read a clock, allocate control numbers or touch files: the caller
injects ``now`` and the control numbers, so the same outcome always renders the same
bytes. See docs/acknowledgments.md for what is sent when.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, NamedTuple

from translators.x12.codes import AckCode, ElementSyntaxCode, SetSyntaxCode
from translators.x12.model import (
    Delimiters,
    ElementError,
    GroupOutcome,
    InterchangeOutcome,
    Segment,
    SegmentError,
    SetOutcome,
)
from translators.x12.writer import OutboundGroup, write_interchange

FunctionalAckKind = Literal["997", "999"]

#: The implementation guide a 999 follows (GS08 and ST03 of every 999 we send).
IMPLEMENTATION_999 = "005010X231A1"
#: GS01 of a group of acknowledgments: we never acknowledge those (no ack loops).
ACK_FUNCTIONAL_ID = "FA"
FUNCTIONAL_ACK_SETTINGS = frozenset({"auto", "997", "999", "none"})
TA1_SETTINGS = frozenset({"always", "on-error", "never"})

# Element size limits of the acknowledgment segments (X12 data dictionary).
_MAX_BAD_DATA = 99  # AK404 / IK404
_MAX_LOOP_ID = 4  # AK303 / IK303
_MAX_SEGMENT_TAG = 3  # AK301 / IK301
_MAX_ELEMENT_POSITION = 99  # C03001 / C03002
_MAX_REPETITION = 9999  # C03003
_MAX_CODES = 5  # AK502..AK506, AK905..AK909
_MAX_VERSION = 12  # AK103
_MAX_SET_CONTROL = 9  # AK202
_MAX_IMPLEMENTATION_REFERENCE = 35  # AK203
_MAX_COUNT = 999999  # AK902..AK904

_ACCEPTING = frozenset({AckCode.ACCEPTED, AckCode.ACCEPTED_WITH_ERRORS})
# AK502 codes a 997 may carry: 004010 knows 1-17 (no 14) and 23-27, 005010 adds 18, 19.
_SET_CODES_997_4010 = frozenset(
    c.value
    for c in SetSyntaxCode
    if c.value.isdigit() and (int(c.value) <= 17 or int(c.value) >= 23) and c.value != "14"
)
_SET_CODES_997_5010 = _SET_CODES_997_4010 | {"18", "19"}
_ELEMENT_CODES_SINCE_5010 = frozenset(
    {ElementSyntaxCode.TOO_MANY_REPETITIONS.value, ElementSyntaxCode.TOO_MANY_COMPONENTS.value}
)


class IssuedAck(NamedTuple):
    """One acknowledgment inside an :class:`AckInterchange`.

    ``acknowledges`` is the inbound control number it answers (ISA13 for a TA1, GS06
    for a 997/999); ``code`` its verdict (TA104 or AK901); ``group_control`` and
    ``set_control`` are the GS06 and ST02 we gave a 997/999 (None for a TA1).
    """

    kind: Literal["TA1", "997", "999"]
    acknowledges: str
    code: str
    group_control: str | None = None
    set_control: str | None = None


@dataclass(frozen=True, slots=True)
class AckInterchange:
    """The acknowledgments due for one inbound interchange, written as one interchange."""

    text: str
    interchange_control: str  # our ISA13, as written (9 digits)
    group_controls: tuple[str, ...]  # our GS06 of each FA group, in order
    acks: tuple[IssuedAck, ...]


# --------------------------------------------------------------------------- policy


def functional_ack_kind(version: str, setting: str = "auto") -> FunctionalAckKind | None:
    """Which functional ack answers a group of GS08 ``version`` under ``setting``.

    ``auto`` sends a 997 up to 004xxx and a 999 from 005010 on; a GS08 that does not
    start with six digits is treated as an old version (997). ``none`` sends nothing.
    """
    if setting not in FUNCTIONAL_ACK_SETTINGS:
        raise ValueError(f"functional_ack must be one of {sorted(FUNCTIONAL_ACK_SETTINGS)}, got {setting!r}")
    if setting == "none":
        return None
    if setting == "997":
        return "997"
    if setting == "999":
        return "999"
    base = _base_version(version)
    return "999" if base is not None and base >= "005010" else "997"


def functional_ack_version(kind: FunctionalAckKind, inbound_version: str) -> str:
    """GS08 of the group carrying our ack: 005010X231A1 for a 999; for a 997 the
    inbound group's six-digit base version (004010 when it has none)."""
    if kind == "999":
        return IMPLEMENTATION_999
    return _base_version(inbound_version) or "004010"


def ta1_due(outcome: InterchangeOutcome, setting: str = "on-error", *, replies_to_ta1: bool = False) -> bool:
    """Whether a TA1 answers this interchange.

    ``always``: every interchange. ``on-error``: when the envelope has errors or the
    sender asked for one (ISA14 = 1). ``never``: the partner does not take TA1s.
    An interchange that itself carried TA1s (``replies_to_ta1``) is never answered
    with a TA1, so two gateways cannot acknowledge each other forever.
    """
    if setting not in TA1_SETTINGS:
        raise ValueError(f"ta1 must be one of {sorted(TA1_SETTINGS)}, got {setting!r}")
    if replies_to_ta1 or setting == "never":
        return False
    if setting == "always":
        return True
    return bool(outcome.notes) or outcome.header.ack_requested


# --------------------------------------------------------------------------- TA1


def build_ta1(
    outcome: InterchangeOutcome, *, policy: str = "always", replies_to_ta1: bool = False
) -> Segment | None:
    """The TA1 answering ``outcome``, or None when ``policy`` says none is due.

    Any envelope note rejects the interchange (TA104 ``R``, TA105 the first note):
    we never send ``E``, because the engine does not process an interchange whose
    envelope it doubts. A sound envelope gets ``A`` / ``000``.
    """
    if not ta1_due(outcome, policy, replies_to_ta1=replies_to_ta1):
        return None
    header = outcome.header
    if outcome.notes:
        code, note = AckCode.REJECTED.value, outcome.notes[0].value
    else:
        code, note = AckCode.ACCEPTED.value, "000"
    return ["TA1", header.control_number.strip(), header.date.strip(), header.time.strip(), code, note]


# --------------------------------------------------------------------------- 997 / 999


def build_functional_ack(
    group: GroupOutcome,
    *,
    kind: FunctionalAckKind,
    control_number: str,
    delimiters: Delimiters | None = None,
) -> list[Segment]:
    """One 997 or 999 (ST..SE, SE01 counted) acknowledging ``group``.

    ``control_number`` is our ST02. ``delimiters`` give the component separator of the
    AK401/IK401 composite and the characters that must not appear in copied bad data
    (AK404); they default to the interchange's own.
    """
    d = delimiters or Delimiters()
    header = group.header
    ack_version = functional_ack_version(kind, header.version)
    five_ten = ack_version[:6] >= "005010"  # AK103, AK203 and C03003 exist from 005010 on
    segments: list[Segment] = []
    if kind == "999":
        segments.append(["ST", "999", control_number, IMPLEMENTATION_999])
    else:
        segments.append(["ST", "997", control_number])
    ak1 = ["AK1", header.functional_id.strip(), header.control_number.strip()]
    if five_ten and header.version.strip():
        ak1.append(header.version.strip()[:_MAX_VERSION])
    segments.append(ak1)
    for outcome in group.sets:
        segments.extend(_set_response(outcome, kind=kind, five_ten=five_ten, d=d))
    segments.append(_ak9(group))
    segments.append(["SE", str(len(segments) + 1), control_number])
    return [_trim(_scrub(s, d)) for s in segments]


def _set_response(
    outcome: SetOutcome, *, kind: FunctionalAckKind, five_ten: bool, d: Delimiters
) -> list[Segment]:
    ak2 = ["AK2", outcome.set_id.strip(), outcome.control_number.strip()[:_MAX_SET_CONTROL]]
    if five_ten and outcome.implementation_reference:
        ak2.append(outcome.implementation_reference.strip()[:_MAX_IMPLEMENTATION_REFERENCE])
    out: list[Segment] = [ak2]
    prefix = "IK" if kind == "999" else "AK"
    for error in _reported(outcome):
        out.append(_segment_error(prefix, error))
        out.extend(_element_error(prefix, e, five_ten=five_ten, d=d) for e in error.elements)
    code = outcome.ack_code
    codes = [c.value for c in outcome.set_errors]
    if kind == "997":
        # I6 exists only in the 999 code list; 18 and 19 arrived with 005010.
        allowed = _SET_CODES_997_5010 if five_ten else _SET_CODES_997_4010
        codes = [c for c in codes if c in allowed]
    if (
        outcome.segment_errors or outcome.noted
    ) and SetSyntaxCode.ONE_OR_MORE_SEGMENTS_IN_ERROR.value not in codes:
        # An AK5 that lists AK3s in error says so; readers look for code 5.
        codes.append(SetSyntaxCode.ONE_OR_MORE_SEGMENTS_IN_ERROR.value)
    out.append([f"{prefix}5", code.value, *_first_codes(codes)])
    return out


def _reported(outcome: SetOutcome) -> list[SegmentError]:
    """Rejecting and noted errors in segment order, one AK3 per segment: noted errors
    (a leniency switch accepted them) are reported like the others, under AK5 E."""
    if not outcome.noted:
        return outcome.segment_errors
    merged: dict[tuple[int, str, str], SegmentError] = {}
    for error in sorted([*outcome.segment_errors, *outcome.noted], key=lambda e: e.position):
        key = (error.position, error.tag, error.code.value)
        if key in merged:
            first = merged[key]
            elements = tuple(sorted([*first.elements, *error.elements], key=lambda e: e.position))
            merged[key] = replace(first, elements=elements)
        else:
            merged[key] = error
    return list(merged.values())


def _segment_error(prefix: str, error: SegmentError) -> Segment:
    loop_id = (error.loop_id or "").strip()[:_MAX_LOOP_ID]
    return [
        f"{prefix}3",
        error.tag.strip()[:_MAX_SEGMENT_TAG],
        str(error.position),
        loop_id,
        error.code.value,
    ]


def _element_error(prefix: str, error: ElementError, *, five_ten: bool, d: Delimiters) -> Segment:
    parts = [str(min(error.position, _MAX_ELEMENT_POSITION))]
    component = "" if error.component is None else str(min(error.component, _MAX_ELEMENT_POSITION))
    repetition = ""
    if five_ten and error.repetition is not None:
        repetition = str(min(error.repetition, _MAX_REPETITION))
    parts += [component, repetition]
    while parts[-1] == "":
        parts.pop()
    reference = (error.reference or "").strip()
    if not (reference.isdigit() and len(reference) <= 4):
        reference = ""  # AK402 is a data element number (N0 1/4); a composite id is not one
    code = error.code.value
    if not five_ten and code in _ELEMENT_CODES_SINCE_5010:
        # 004010 has no repetitions and no code for extra components: the nearest
        # older code is 3, too many data elements.
        code = ElementSyntaxCode.TOO_MANY_ELEMENTS.value
    segment = [f"{prefix}4", d.component.join(parts), reference, code]
    bad_data = _copy_of_bad_data(error.value, d)
    if bad_data is not None:
        segment.append(bad_data)
    return segment


def _copy_of_bad_data(value: str | None, d: Delimiters) -> str | None:
    """AK404: the bad value, without our delimiters and cut to 99 characters.

    A delimiter inside the copy would break the acknowledgment itself, so those
    characters are dropped; a value that is empty or all blanks is not copied.
    """
    if value is None:
        return None
    forbidden = _forbidden(d)
    cleaned = "".join(ch for ch in value if ch not in forbidden)
    cleaned = cleaned[:_MAX_BAD_DATA]
    return cleaned if cleaned.strip() else None


def _ak9(group: GroupOutcome) -> Segment:
    received = len(group.sets)
    included = group.sets_included if group.sets_included is not None else received
    code = group.ack_code
    if code is AckCode.ACCEPTED and any(s.ack_code is AckCode.ACCEPTED_WITH_ERRORS for s in group.sets):
        code = AckCode.ACCEPTED_WITH_ERRORS
    # A rejected group accepts nothing, whatever its sets' own AK5 say.
    accepted = 0 if code is AckCode.REJECTED else sum(1 for s in group.sets if s.ack_code in _ACCEPTING)
    counts = [str(min(n, _MAX_COUNT)) for n in (included, received, accepted)]
    return ["AK9", code.value, *counts, *_first_codes([e.value for e in group.errors])]


def _first_codes(codes: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(codes))
    return unique[:_MAX_CODES]


def _forbidden(d: Delimiters) -> frozenset[str]:
    # NUL too: no X12 character set has it, and an acknowledgment carrying one is
    # text many stores and partners' readers refuse.
    return frozenset({d.element, d.component, d.segment, *(d.repetition or ""), "\r", "\n", "\x00"})


def _scrub(segment: Segment, d: Delimiters) -> Segment:
    """Drop delimiter characters from values echoed from the inbound data.

    They cannot hold the inbound delimiters, but ours may differ (a newline
    terminator replaced, unusable delimiters swapped for the defaults), and one
    stray character must not make the acknowledgment unwritable. The AK401/IK401
    composite keeps its component separators.
    """
    forbidden = _forbidden(d)
    composite = 1 if segment[0] in ("AK4", "IK4") else -1
    return [
        value if i in (0, composite) else "".join(ch for ch in value if ch not in forbidden)
        for i, value in enumerate(segment)
    ]


def _trim(segment: Segment) -> Segment:
    """Drop trailing empty elements: X12 forbids trailing element separators."""
    end = len(segment)
    while end > 1 and segment[end - 1] == "":
        end -= 1
    return segment[:end]


def _base_version(version: str) -> str | None:
    base = version.strip()[:6]
    return base if len(base) == 6 and base.isdigit() else None


# --------------------------------------------------------------------------- whole interchange


class _AckGroup(NamedTuple):
    kind: FunctionalAckKind
    version: str
    sets: list[list[Segment]]
    acks: list[IssuedAck]


def render_acknowledgments(
    outcome: InterchangeOutcome,
    *,
    functional_ack: str = "auto",
    ta1: str = "on-error",
    sender: tuple[str, str],
    receiver: tuple[str, str],
    group_sender: str,
    group_receiver: str,
    interchange_control: int,
    group_control: int,
    now: datetime,
    delimiters: Delimiters | None = None,
    usage: str | None = None,
    replies_to_ta1: bool = False,
) -> AckInterchange | None:
    """Every acknowledgment due for ``outcome``, as one interchange; None if none is due.

    ``sender`` is us and ``receiver`` the partner (qualifier, id), i.e. the inbound
    ISA's receiver and sender swapped. Our FA groups are numbered from
    ``group_control`` (one group per ack kind and version, in inbound order) and our
    997/999 sets from ``0001``. ``usage`` and ``delimiters`` mirror the inbound
    interchange unless given. ``replies_to_ta1`` says the inbound interchange carried
    TA1 segments (no TA1 answers a TA1).

    An interchange rejected at envelope level (notes) gets a TA1 only: its groups
    were not processed, so no 997/999 speaks for them.
    """
    if functional_ack not in FUNCTIONAL_ACK_SETTINGS:
        raise ValueError(
            f"functional_ack must be one of {sorted(FUNCTIONAL_ACK_SETTINGS)}, got {functional_ack!r}"
        )
    header = outcome.header
    d = _outbound_delimiters(delimiters or header.delimiters)
    acks: list[IssuedAck] = []
    interchange_segments: list[Segment] = []
    ta1_segment = build_ta1(outcome, policy=ta1, replies_to_ta1=replies_to_ta1)
    if ta1_segment is not None:
        ta1_segment = _scrub(ta1_segment, d)
        interchange_segments.append(ta1_segment)
        acks.append(IssuedAck("TA1", ta1_segment[1], ta1_segment[4]))

    groups: list[_AckGroup] = []
    if outcome.accepted:
        set_number = 0
        for group in outcome.groups:
            if group.header.functional_id.strip() == ACK_FUNCTIONAL_ID:
                continue
            kind = functional_ack_kind(group.header.version, functional_ack)
            if kind is None:
                continue
            version = functional_ack_version(kind, group.header.version)
            target = next((g for g in groups if g.kind == kind and g.version == version), None)
            if target is None:
                target = _AckGroup(kind, version, [], [])
                groups.append(target)
            set_number += 1
            st02 = f"{set_number:04d}"
            target.sets.append(build_functional_ack(group, kind=kind, control_number=st02, delimiters=d))
            ak9 = target.sets[-1][-2]
            target.acks.append(IssuedAck(kind, group.header.control_number.strip(), ak9[1], None, st02))

    if not interchange_segments and not groups:
        return None
    group_controls = tuple(str(group_control + i) for i in range(len(groups)))
    for control, g in zip(group_controls, groups, strict=True):
        acks.extend(a._replace(group_control=control) for a in g.acks)
    text = write_interchange(
        sender=sender,
        receiver=receiver,
        control_number=interchange_control,
        at=now,
        usage=usage or _mirrored_usage(header.usage),
        ack_requested=False,
        delimiters=d,
        # ISA12 follows our first FA group (write_interchange derives it); a lone TA1
        # goes back in the envelope version the partner used.
        version=None if groups else _interchange_version(header.version),
        interchange_segments=interchange_segments,
        groups=[
            OutboundGroup(
                ACK_FUNCTIONAL_ID, group_sender, group_receiver, group_control + i, g.version, g.sets
            )
            for i, g in enumerate(groups)
        ],
    )
    return AckInterchange(
        text=text,
        interchange_control=f"{interchange_control:09d}",
        group_controls=group_controls,
        acks=tuple(acks),
    )


def _mirrored_usage(inbound: str) -> str:
    usage = inbound.strip()
    return usage if usage in {"P", "T", "I"} else "P"


def _interchange_version(isa12: str) -> str:
    """ISA12 of an interchange holding only a TA1: the inbound one when it is five
    digits, else 00401."""
    value = isa12.strip()
    return value if len(value) == 5 and value.isdigit() else "00401"


_SAFE_REPETITIONS = "^!`{}|"
_SAFE_TERMINATORS = "~'"


def _outbound_delimiters(inbound: Delimiters) -> Delimiters:
    """The partner's own delimiters when they can be written, else ours.

    Writable means distinct single characters, none a letter, digit or blank. A
    newline terminator is read fine but not written (a line break is layout to many
    tools): ``~`` replaces it, followed by a newline. A 999 (ISA12 00501) needs a
    repetition separator even when the inbound 004010 had none: we add the first of
    ``^ ! ` { } |`` not already taken.
    """
    element, component, segment, suffix = inbound.element, inbound.component, inbound.segment, inbound.suffix
    if segment in ("\r", "\n", "\r\n"):
        segment = next(
            (c for c in _SAFE_TERMINATORS if c not in (element, component, inbound.repetition)), ""
        )
        suffix = "\n"
    taken = [element, component, segment]
    if inbound.repetition is not None:
        taken.append(inbound.repetition)
    if len(set(taken)) != len(taken) or any(len(c) != 1 or c.isalnum() or c.isspace() for c in taken):
        return Delimiters()
    repetition = inbound.repetition
    if repetition is None:
        repetition = next(c for c in _SAFE_REPETITIONS if c not in taken)
    return Delimiters(
        element=element, component=component, repetition=repetition, segment=segment, suffix=suffix
    )
