"""The states of everything the gateway tracks, and the only transitions allowed.

Five machines: an inbound message, an outbound message, an outbox item (one thing
to send to a partner), a job (one step of leased work) and an alert (one event to
one alert webhook). Each status is a
``StrEnum`` (stored as its plain string, so old rows read back unchanged) and each
machine is a transition table: ``MACHINE.check(old, new)`` raises
:class:`IllegalTransition` for a move the table does not list, and
``MACHINE.sources(new)`` is the set of states a guarded ``UPDATE ... WHERE status
IN (...)`` may move from. Every status write in the gateway goes through one of
these two; a write that finds the row in another state is a bug, not a race to
paper over.

Pure: no I/O, no database, no clock. The final-state sets that retention, the
dead-letter list and the metrics need are derived here, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class IllegalTransition(Exception):
    """A status write the transition table does not allow."""

    def __init__(self, machine: str, old: str | None, new: str, subject: str | None = None) -> None:
        where = f" ({subject})" if subject else ""
        super().__init__(f"{machine}: {old or '?'} -> {new} is not a legal transition{where}")
        self.machine, self.old, self.new, self.subject = machine, old, new, subject


class InboundStatus(StrEnum):
    """An inbound message (X12 file or canonical document from a partner)."""

    RECEIVED = "received"  # stored durably; translation pending (also: replay requested)
    TRANSLATED = "translated"  # documents stored; handing them to the ERP
    DELIVERED = "delivered"  # every document with the ERP; acks being released
    ACKNOWLEDGED = "acknowledged"  # done: ERP has everything, our acks are released
    PARTLY_DELIVERED = "partly_delivered"  # done: some documents refused by the ERP (dead letters)
    FAILED = "failed"  # done: not X12, every set rejected, a step gave up
    QUARANTINED = "quarantined"  # done: no profile for the sender, or not the authenticated partner
    DUPLICATE = "duplicate"  # done: sender + ISA13 seen before; not forwarded again


class OutboundStatus(StrEnum):
    """An outbound message (an interchange we render for a partner)."""

    QUEUED = "queued"  # rendered, in the outbox
    SENT = "sent"  # the partner's transport took it; waiting for its 997/999
    OVERDUE = "overdue"  # sent, no functional acknowledgment in time (not final)
    ACCEPTED = "accepted"
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"
    PARTIALLY_ACCEPTED = "partially_accepted"
    REJECTED = "rejected"
    FAILED = "failed"  # delivery gave up (a dead letter an operator can requeue)


class OutboxStatus(StrEnum):
    HELD = "held"  # an ack waiting for its message to settle
    PENDING = "pending"  # due for sending (or for the partner to collect: mailbox)
    SENDING = "sending"  # claimed by a sender under a lease
    SENT = "sent"
    FAILED = "failed"  # gave up; replayable
    CANCELLED = "cancelled"  # a failed item an operator gave up on: never sent


class JobState(StrEnum):
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AlertStatus(StrEnum):
    """One alert to one ``[[alerts]]`` webhook (gateway.alerts)."""

    PENDING = "pending"  # due at next_attempt_at (first try or a retry)
    SENT = "sent"  # the receiver answered 2xx
    FAILED = "failed"  # refused (4xx) or given up after retries; replayable


class DocumentStatus(StrEnum):
    """A canonical document, inbound (to the ERP) or outbound (to a partner)."""

    PENDING = "pending"  # inbound: not yet with the ERP (or dead-lettered: see last_error)
    AVAILABLE = "available"  # inbound, feed mode: waiting for the ERP to confirm
    DELIVERED = "delivered"  # inbound: the ERP has it
    QUEUED = "queued"  # outbound: rendered, not yet sent
    SENT = "sent"
    ACCEPTED = "accepted"
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"
    PARTIALLY_ACCEPTED = "partially_accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # inbound: a dead letter an operator gave up on (a replay sends it after all)


@dataclass(frozen=True, slots=True)
class Machine:
    """A transition table: ``edges[old]`` is every state ``old`` may move to."""

    name: str
    edges: Mapping[str, frozenset[str]]
    final: frozenset[str]

    def check(self, old: str | None, new: str, subject: str | None = None) -> None:
        if old is None or new not in self.edges.get(old, frozenset()):
            raise IllegalTransition(self.name, old, new, subject)

    def allowed(self, old: str, new: str) -> bool:
        return new in self.edges.get(old, frozenset())

    def sources(self, new: str) -> tuple[str, ...]:
        """Every state that may move to ``new`` (for a guarded UPDATE)."""
        return tuple(sorted(old for old, targets in self.edges.items() if new in targets))

    @property
    def states(self) -> frozenset[str]:
        return frozenset(self.edges)


def _table(edges: Mapping[StrEnum, Iterable[StrEnum]]) -> dict[str, frozenset[str]]:
    return {str(old): frozenset(str(n) for n in new) for old, new in edges.items()}


_I = InboundStatus
_INBOUND_DONE = (_I.ACKNOWLEDGED, _I.PARTLY_DELIVERED, _I.FAILED, _I.QUARANTINED, _I.DUPLICATE)
# Settled messages that may hold translated documents: a replay from deliver may
# hand those to the ERP again (quarantined and duplicate messages never have any).
_REDELIVERABLE = (_I.ACKNOWLEDGED, _I.PARTLY_DELIVERED, _I.FAILED)
INBOUND = Machine(
    "inbound message",
    _table(
        {
            # A replay from translate moves any message back to received (the raw bytes
            # are read again); a replay from deliver moves a settled message that has
            # documents back to translated (gateway.domain.replay).
            _I.RECEIVED: (_I.RECEIVED, _I.TRANSLATED, _I.FAILED, _I.QUARANTINED, _I.DUPLICATE),
            _I.TRANSLATED: (_I.RECEIVED, _I.DELIVERED, _I.ACKNOWLEDGED, _I.PARTLY_DELIVERED, _I.FAILED),
            _I.DELIVERED: (_I.RECEIVED, _I.ACKNOWLEDGED, _I.FAILED),
            **{done: (_I.RECEIVED,) for done in _INBOUND_DONE},
            **{done: (_I.RECEIVED, _I.TRANSLATED) for done in _REDELIVERABLE},
        }
    ),
    final=frozenset(map(str, _INBOUND_DONE)),
)

_O = OutboundStatus
_VERDICTS = (_O.ACCEPTED, _O.ACCEPTED_WITH_ERRORS, _O.PARTIALLY_ACCEPTED, _O.REJECTED)
OUTBOUND = Machine(
    "outbound message",
    _table(
        {
            _O.QUEUED: (_O.SENT, _O.FAILED, _O.REJECTED),
            # A partner's later 997 replaces the verdict of an earlier one; a TA1 may
            # reject an interchange whatever a 997 said.
            _O.SENT: (_O.OVERDUE, _O.FAILED, *_VERDICTS),
            _O.OVERDUE: _VERDICTS,
            **{v: _VERDICTS for v in _VERDICTS},
            _O.FAILED: (_O.QUEUED, _O.SENT, _O.REJECTED),  # requeued by an operator; sent late
        }
    ),
    final=frozenset(map(str, (*_VERDICTS, _O.FAILED))),
)

_B = OutboxStatus
OUTBOX = Machine(
    "outbox item",
    _table(
        {
            _B.HELD: (_B.PENDING,),
            _B.PENDING: (_B.SENDING, _B.SENT, _B.FAILED),
            _B.SENDING: (
                _B.PENDING,
                _B.SENDING,
                _B.SENT,
                _B.FAILED,
            ),  # SENDING -> SENDING: a dead lease reclaimed
            _B.SENT: (),
            _B.FAILED: (_B.PENDING, _B.CANCELLED),
            _B.CANCELLED: (),
        }
    ),
    final=frozenset({str(_B.SENT), str(_B.FAILED), str(_B.CANCELLED)}),
)

_J = JobState
JOB = Machine(
    "job",
    _table(
        {
            _J.READY: (_J.RUNNING, _J.CANCELLED),
            _J.RUNNING: (_J.READY, _J.RUNNING, _J.DONE, _J.FAILED, _J.CANCELLED),
            _J.DONE: (),
            _J.FAILED: (),
            _J.CANCELLED: (),
        }
    ),
    final=frozenset({str(_J.DONE), str(_J.FAILED), str(_J.CANCELLED)}),
)

_A = AlertStatus
ALERT = Machine(
    "alert",
    _table({_A.PENDING: (_A.PENDING, _A.SENT, _A.FAILED), _A.SENT: (), _A.FAILED: (_A.PENDING,)}),
    final=frozenset({str(_A.SENT), str(_A.FAILED)}),
)

# Final inbound states whose undelivered documents with an error are dead letters.
DEAD_LETTER_STATES = (str(_I.FAILED), str(_I.PARTLY_DELIVERED))
# Outbox items not yet settled (retention keeps their messages).
UNSENT_OUTBOX = (str(_B.HELD), str(_B.PENDING), str(_B.SENDING), str(_B.FAILED))
IDLE_JOBS = tuple(sorted(JOB.final))
SETTLED_DOCUMENTS = tuple(
    str(s)
    for s in (
        DocumentStatus.DELIVERED,
        DocumentStatus.SENT,
        DocumentStatus.ACCEPTED,
        DocumentStatus.ACCEPTED_WITH_ERRORS,
        DocumentStatus.PARTIALLY_ACCEPTED,
        DocumentStatus.REJECTED,
    )
)


def machine_for(direction: str) -> Machine:
    """The message machine of ``direction`` ("in" or "out")."""
    return INBOUND if direction == "in" else OUTBOUND
