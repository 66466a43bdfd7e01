"""Replaying from a stage (gateway.domain.replay), decided without a database."""

from __future__ import annotations

import pytest

from gateway.domain.replay import (
    AckResend,
    ReplayNotAllowed,
    ReplayStage,
    acks_to_resend,
    parse_stage,
    replay_status,
)


def test_no_stage_is_translate_and_an_unknown_one_is_named() -> None:
    assert parse_stage(None) is ReplayStage.TRANSLATE
    assert parse_stage("deliver") is ReplayStage.DELIVER
    with pytest.raises(
        ReplayNotAllowed, match="unknown stage 'parse': one of translate, deliver, acknowledge"
    ):
        parse_stage("parse")


@pytest.mark.parametrize(
    "status", ["received", "translated", "delivered", "acknowledged", "failed", "quarantined", "duplicate"]
)
def test_translate_moves_any_message_back_to_received(status: str) -> None:
    assert replay_status(ReplayStage.TRANSLATE, status, 0) == "received"


@pytest.mark.parametrize("status", ["acknowledged", "partly_delivered", "failed"])
def test_deliver_moves_a_settled_message_with_documents_back_to_translated(status: str) -> None:
    assert replay_status(ReplayStage.DELIVER, status, 3) == "translated"


def test_deliver_is_refused_without_documents_or_while_the_message_moves() -> None:
    with pytest.raises(
        ReplayNotAllowed, match="no translated documents to deliver: replay it from translate"
    ):
        replay_status(ReplayStage.DELIVER, "failed", 0)
    for status in ("received", "translated", "delivered", "quarantined", "duplicate"):
        with pytest.raises(ReplayNotAllowed, match=f"a {status} message cannot be replayed from deliver"):
            replay_status(ReplayStage.DELIVER, status, 2)


def test_acknowledge_keeps_the_status() -> None:
    assert replay_status(ReplayStage.ACKNOWLEDGE, "acknowledged", 1) is None


def test_acks_sent_are_copied_failed_ones_requeued_moving_ones_refused() -> None:
    assert acks_to_resend([("a", "sent"), ("b", "failed"), ("c", "cancelled")]) == AckResend(("a",), ("b",))
    with pytest.raises(ReplayNotAllowed, match="no acknowledgment"):
        acks_to_resend([])
    for moving in ("held", "pending", "sending"):
        with pytest.raises(ReplayNotAllowed, match="still on its way"):
            acks_to_resend([("a", "sent"), ("b", moving)])
    with pytest.raises(ReplayNotAllowed, match="cancelled"):
        acks_to_resend([("c", "cancelled")])
