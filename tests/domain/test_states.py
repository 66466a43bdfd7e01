"""The transition tables (gateway.domain.states), tested without a database."""

from __future__ import annotations

import itertools

import pytest

from gateway.domain.states import (
    INBOUND,
    JOB,
    OUTBOUND,
    OUTBOX,
    IllegalTransition,
    InboundStatus,
    OutboundStatus,
    OutboxStatus,
)


def test_inbound_happy_path_is_legal() -> None:
    path = ["received", "translated", "delivered", "acknowledged"]
    for old, new in itertools.pairwise(path):
        INBOUND.check(old, new)


@pytest.mark.parametrize("final", sorted(INBOUND.final))
def test_a_final_inbound_message_only_moves_by_replay(final: str) -> None:
    # from translate: back to received; from deliver (only when it may hold documents): translated
    redeliverable = final in ("acknowledged", "partly_delivered", "failed")
    assert INBOUND.edges[final] == frozenset({"received", "translated"} if redeliverable else {"received"})
    with pytest.raises(IllegalTransition, match=f"{final} -> delivered"):
        INBOUND.check(final, "delivered", "m1")
    if not redeliverable:
        with pytest.raises(IllegalTransition, match=f"{final} -> translated"):
            INBOUND.check(final, "translated", "m1")


def test_illegal_transition_names_machine_states_and_subject() -> None:
    with pytest.raises(IllegalTransition) as caught:
        INBOUND.check("acknowledged", "delivered", "01HX")
    assert str(caught.value) == "inbound message: acknowledged -> delivered is not a legal transition (01HX)"


def test_unknown_old_state_is_illegal() -> None:
    with pytest.raises(IllegalTransition):
        INBOUND.check(None, "received")
    with pytest.raises(IllegalTransition):
        INBOUND.check("parsed", "translated")


def test_sources_are_what_a_guarded_update_may_move_from() -> None:
    assert OUTBOUND.sources(OutboundStatus.OVERDUE) == ("sent",)
    assert set(INBOUND.sources(InboundStatus.ACKNOWLEDGED)) == {"translated", "delivered"}
    assert OUTBOX.sources(OutboxStatus.PENDING) == ("failed", "held", "sending")


def test_outbound_verdicts_can_be_replaced_by_a_later_ack_but_not_unsent() -> None:
    OUTBOUND.check("accepted", "rejected")
    with pytest.raises(IllegalTransition):
        OUTBOUND.check("accepted", "queued")
    with pytest.raises(IllegalTransition):
        OUTBOUND.check("overdue", "sent")


def test_every_target_is_a_state_of_its_machine() -> None:
    for machine in (INBOUND, OUTBOUND, OUTBOX, JOB):
        for targets in machine.edges.values():
            assert targets <= machine.states, machine.name
        assert machine.final <= machine.states


def test_enum_values_are_the_stored_strings() -> None:
    assert InboundStatus.PARTLY_DELIVERED == "partly_delivered"
    assert {s.value for s in InboundStatus} == INBOUND.states
    assert {s.value for s in OutboundStatus} == OUTBOUND.states
    assert {s.value for s in OutboxStatus} == OUTBOX.states


def test_a_failed_outbox_item_is_requeued_or_cancelled_and_cancelled_is_the_end() -> None:
    assert OUTBOX.allowed("failed", "cancelled") and OUTBOX.allowed("failed", "pending")
    assert OUTBOX.sources("cancelled") == ("failed",)
    assert "cancelled" in OUTBOX.final and not OUTBOX.edges["cancelled"]
