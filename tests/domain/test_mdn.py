"""The MDN status of an AS2 send, decided without a database (gateway.domain.mdn)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.domain.mdn import MdnStatus, after_async_mdn, after_send, columns, reported

PROCESSED = {"disposition": "automatic-action/MDN-sent-automatically; processed", "mic_matches": True}
REFUSED = {"disposition": "automatic-action/MDN-sent-automatically; processed/error: decryption-failed"}


def test_a_sync_mdn_settles_the_send_either_way() -> None:
    ok = after_send([("mdn_received", PROCESSED)], True, "MDN processed")
    assert ok is not None and ok.status is MdnStatus.PROCESSED and ok.detail == PROCESSED["disposition"]
    bad = after_send([("mdn_received", REFUSED)], False, "MDN processed/error: decryption-failed")
    assert bad is not None and bad.status is MdnStatus.ERROR and "decryption-failed" in (bad.detail or "")


def test_an_async_send_waits_and_no_mdn_asked_or_no_answer_has_no_status() -> None:
    pending = after_send([("as2_sent", {"mdn": "async", "mic": "x, sha256"})], True, "HTTP 200")
    assert pending is not None and pending.status is MdnStatus.PENDING and pending.detail is None
    assert after_send([("as2_sent", {"mdn": "none"})], True, "HTTP 200") is None
    assert after_send([], False, "HTTP 503") is None  # not sent: nothing to wait for
    assert after_send([], True, "HTTP 202") is None  # another channel


def test_an_async_mdn_counts_only_when_it_can_be_held_to_the_partner() -> None:
    assert after_async_mdn("sent", True, "ok", PROCESSED) == after_send(
        [("mdn_received", PROCESSED)], True, "ok"
    )
    refused = after_async_mdn("permanent", True, "MDN refused", REFUSED)
    assert refused is not None and refused.status is MdnStatus.ERROR
    assert after_async_mdn("permanent", False, "forged", REFUSED) is None
    assert after_async_mdn("transient", True, "unreadable", {}) is None


def test_a_pending_mdn_becomes_overdue_only_in_the_report() -> None:
    sent = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert reported("pending", sent, sent + timedelta(minutes=59), hour) == "pending"
    assert reported("pending", sent, sent + timedelta(minutes=61), hour) == "overdue"
    assert reported("processed", sent, sent + 10 * hour, hour) == "processed"
    assert reported(None, sent, sent + 10 * hour, hour) is None


def test_the_columns_written_for_a_verdict() -> None:
    now = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    pending = after_send([("as2_sent", {"mdn": "async"})], True, "HTTP 200")
    assert pending is not None and columns(pending, now) == {
        "mdn_status": "pending",
        "mdn_at": None,
        "mdn_detail": None,
    }
    refused = after_async_mdn("permanent", True, "x" * 5000, REFUSED)
    assert refused is not None
    written = columns(refused, now)
    assert written["mdn_status"] == "error" and written["mdn_at"] == now
    assert len(written["mdn_detail"]) == 2000 and written["mdn_detail"].endswith("…")
