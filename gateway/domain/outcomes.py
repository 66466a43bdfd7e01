"""What became of each interchange of one inbound message, and the one line that
says it in the message's ``reason``.

A file may carry many interchanges, and they need not share a fate: one may be a
repeat of an interchange seen before (TA1 025, not forwarded again), one refused
at its envelope (TA1 notes), one with some sets rejected. The message's status
stays what the transition table (gateway.domain.states) makes of the whole: it is
``acknowledged`` once what was usable reached the ERP. The partial outcomes are
said here: :func:`summarize` writes the reason ("3 interchanges: 2 accepted, 1
duplicate; 000000002 duplicate of message 01H... (TA1 025)") and
:func:`outcome_detail` the timeline detail with the counts and the interchanges
that were not simply accepted.

Pure: values in, values out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

ACCEPTED = "accepted"
PARTLY_REJECTED = "partly_rejected"
REJECTED = "rejected"
DUPLICATE = "duplicate"
_ORDER = (ACCEPTED, PARTLY_REJECTED, REJECTED, DUPLICATE)
_LISTED = 5  # interchanges named in a reason; the timeline detail lists up to _DETAILED
_DETAILED = 50


@dataclass(frozen=True, slots=True)
class InterchangeResult:
    """One interchange of a message: where it sits, what it held, what was used."""

    index: int  # its position in the file (the engine's header index)
    sender: str  # "ZZ/ACME"
    control: str  # ISA13
    sets: int = 0
    documents: int = 0  # sets that became documents for the ERP
    rejected: int = 0  # sets not used (their own errors or their group's)
    envelope: str | None = None  # why the whole interchange was refused (its TA1 notes)
    duplicate_of: str | None = None  # the message that brought it first (TA1 025)

    @property
    def outcome(self) -> str:
        if self.duplicate_of is not None:
            return DUPLICATE
        if self.envelope is not None or (self.rejected and not self.documents):
            return REJECTED
        return PARTLY_REJECTED if self.rejected else ACCEPTED

    def as_duplicate(self, first_message_id: str) -> InterchangeResult:
        return replace(self, duplicate_of=first_message_id)

    def describe(self) -> str:
        outcome = self.outcome
        if outcome == DUPLICATE:
            return f"{self.control} duplicate of message {self.duplicate_of} (TA1 025)"
        if self.envelope is not None:
            return f"{self.control} rejected ({self.envelope.split(' rejected: ', 1)[-1]})"
        return f"{self.control} {self.rejected} of {self.sets} set(s) rejected"


def mark_duplicates(
    results: Sequence[InterchangeResult], duplicates: dict[int, str]
) -> list[InterchangeResult]:
    """``results`` with the interchanges at the indexes of ``duplicates`` (index ->
    first message id) marked as repeats."""
    return [r.as_duplicate(duplicates[r.index]) if r.index in duplicates else r for r in results]


def counts(results: Sequence[InterchangeResult]) -> dict[str, int]:
    """Interchanges per outcome, in a fixed order, outcomes with none left out."""
    seen = Counter(r.outcome for r in results)
    return {outcome: seen[outcome] for outcome in _ORDER if seen[outcome]}


def summarize(results: Sequence[InterchangeResult]) -> str | None:
    """The reason's part about the interchanges, None when there is nothing partial
    to say (every interchange accepted: a single interchange speaks through its
    sets' reasons)."""
    others = [r for r in results if r.outcome != ACCEPTED]
    if not others or len(results) < 2:
        return None
    tally = ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in counts(results).items())
    named = "; ".join(r.describe() for r in others[:_LISTED])
    more = f"; and {len(others) - _LISTED} more" if len(others) > _LISTED else ""
    return f"{len(results)} interchanges: {tally}; {named}{more}"


def outcome_detail(results: Sequence[InterchangeResult]) -> dict[str, Any]:
    """For the timeline: the counts and the first interchanges that were not simply
    accepted (never the whole list of a file with thousands)."""
    others = [r for r in results if r.outcome != ACCEPTED]
    return {
        "total": len(results),
        **counts(results),
        "not_accepted": [
            {
                "index": r.index,
                "sender": r.sender,
                "control": r.control,
                "outcome": r.outcome,
                "sets": r.sets,
                "documents": r.documents,
                **({"duplicate_of": r.duplicate_of} if r.duplicate_of else {}),
                **({"envelope": r.envelope} if r.envelope else {}),
            }
            for r in others[:_DETAILED]
        ],
    }


def with_outcomes(
    results: Sequence[InterchangeResult], reason: str | None, detail: dict[str, Any] | None
) -> tuple[str | None, dict[str, Any] | None]:
    """A message's reason and final-event detail with its interchanges' outcomes
    added (the summary first), when it has more than one interchange."""
    summary = summarize(results)
    if summary is not None:
        reason = with_note(summary, reason)
    if len(results) > 1:
        detail = {**(detail or {}), "interchanges": outcome_detail(results)}
    return reason, detail


def with_note(reason: str | None, note: str | None) -> str | None:
    """A message's reason with a note (e.g. the acknowledgment cap's) added, if any."""
    if note is None:
        return reason
    return f"{reason}; {note}" if reason else note
