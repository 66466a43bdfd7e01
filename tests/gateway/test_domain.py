"""gateway.domain on its own: planning, acknowledgment and interchange assembly
decided from bytes and values, no database, no event loop, no files but the
partner profiles the test writes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gwsamples import canonical_order, order_850, profile_toml

from gateway.domain import errors
from gateway.domain.acks import AckDue, assemble_acks, batch_acks
from gateway.domain.inbound import InboundMessage, plan_inbound
from gateway.domain.interchanges import assemble_interchange, business_number, functional_id
from gateway.partners import PartnerDirectory, load_partners
from translators.canonical import CanonicalDocument
from translators.engine import TranslatedInterchange, translate
from translators.profile import OurIdentity
from translators.x12.acks import render_acknowledgments

IDENTITY = OurIdentity(interchange_qualifier="ZZ", interchange_id="OURCOMPANY", group_id="OURCOMPANY")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHA = "0" * 64


@pytest.fixture
def partners(tmp_path: Path) -> PartnerDirectory:
    for partner_id, ta1 in (("acme", "on-error"), ("globex", "always")):
        (tmp_path / partner_id).mkdir()
        (tmp_path / partner_id / "profile.toml").write_text(
            profile_toml(partner_id, partner_id.upper(), "key", ta1=ta1)
        )
    return load_partners(tmp_path, identity=IDENTITY)


def message(partner_id: str | None = "acme", kind: str = "x12") -> InboundMessage:
    return InboundMessage("01MESSAGE", partner_id, kind, SHA)


def interchanges(body: bytes, partners: PartnerDirectory) -> list[TranslatedInterchange]:
    return [i for i in translate(io.BytesIO(body), partners=partners) if isinstance(i, TranslatedInterchange)]


# --------------------------------------------------------------------------- errors


def test_each_error_knows_its_status() -> None:
    cases = [
        (errors.NotX12("no ISA", 0), 422, "failed"),
        (errors.InvalidCanonical("Field required"), 422, "failed"),
        (errors.UnknownSender("ZZ/NOBODY"), 403, "quarantined"),
        (errors.SenderNotPartner("ZZ/GLOBEX", "acme"), 403, "quarantined"),
        (errors.HookFailed("hook says no"), 500, "failed"),
    ]
    for error, http_status, message_status in cases:
        assert isinstance(error, errors.InboundRefused) and isinstance(error, errors.DomainError)
        assert (error.http_status, error.message_status) == (http_status, message_status)
    assert errors.RenderRefused("no", [{"loc": "po_number", "msg": "missing"}]).http_status == 422


# --------------------------------------------------------------------------- inbound planning


def test_a_valid_interchange_plans_its_documents(partners: PartnerDirectory) -> None:
    plan = plan_inbound(message(), io.BytesIO(order_850("ACME", 7, sets=2)), partners)
    assert plan.status == "translated" and plan.reason is None
    assert [d["seq"] for d in plan.documents] == [1, 2]
    assert [d["business_number"] for d in plan.documents] == ["PO-1001-1", "PO-1001-2"]
    assert all("id" not in d for d in plan.documents)  # the writer issues ids
    assert plan.first_sender == "ZZ/ACME" and plan.first_control == "000000007"
    assert plan.events == [("parsed", {"interchanges": 1, "groups": 1, "sets": 2})]


def test_unknown_sender_and_foreign_sender_are_quarantined(partners: PartnerDirectory) -> None:
    unknown = plan_inbound(message(None), io.BytesIO(order_850("NOBODY", 1)), partners)
    assert unknown.status == "quarantined" and "unknown sender ZZ/NOBODY" in (unknown.reason or "")
    foreign = plan_inbound(message("acme"), io.BytesIO(order_850("GLOBEX", 1)), partners)
    assert foreign.status == "quarantined"
    assert foreign.reason == "ISA sender ZZ/GLOBEX is not an address of partner acme"
    assert foreign.documents == [] and foreign.first_sender == "ZZ/GLOBEX"


def test_unreadable_payloads_fail(partners: PartnerDirectory) -> None:
    not_x12 = plan_inbound(message(), io.BytesIO(b"hello"), partners)
    assert not_x12.status == "failed" and (not_x12.reason or "").startswith("not X12: ")
    canonical = plan_inbound(message(kind="canonical"), io.BytesIO(b'{"kind": "order"}'), partners)
    assert canonical.status == "failed" and (canonical.reason or "").startswith(
        "invalid canonical document: "
    )
    good = json.dumps(canonical_order()).encode()
    ok = plan_inbound(message(kind="canonical"), io.BytesIO(good), partners)
    assert ok.status == "translated" and ok.documents[0]["canonical"]["partner_id"] == "acme"


def test_a_failing_hook_fails_the_message_and_uses_nothing(partners: PartnerDirectory) -> None:
    def hook(document: CanonicalDocument, segments: object) -> CanonicalDocument:
        raise errors.HookFailed("hooks.py inbound: KeyError 'store'")

    plan = plan_inbound(message(), io.BytesIO(order_850("ACME", 8, sets=2)), partners, hook)
    assert plan.status == "failed" and plan.reason == "hooks.py inbound: KeyError 'store'"
    assert plan.documents == [] and plan.interchanges == []
    assert [state for state, _ in plan.events] == ["parsed"]


def test_a_repeat_inside_one_input_is_used_once(partners: PartnerDirectory) -> None:
    body = order_850("ACME", 9)
    plan = plan_inbound(message(), io.BytesIO(body + body), partners)
    assert plan.status == "translated" and len(plan.documents) == 1
    assert "TA1 note 025" in (plan.reason or "")


# --------------------------------------------------------------------------- acknowledgments


def ack_args(control: int = 1) -> dict[str, object]:
    return {
        "sender": ("ZZ", "OURCOMPANY"),
        "receiver": ("ZZ", "GLOBEX"),
        "group_sender": "OURCOMPANY",
        "group_receiver": "GLOBEX",
        "interchange_control": control,
        "group_control": control,
        "now": NOW,
    }


def test_one_interchange_is_answered_as_the_translators_answer_it(partners: PartnerDirectory) -> None:
    [one] = interchanges(order_850("GLOBEX", 11), partners)
    assembled = assemble_acks([AckDue.of(one)], ta1="always", **ack_args())  # type: ignore[arg-type]
    expected = render_acknowledgments(one.outcome, functional_ack="997", ta1="always", **ack_args())  # type: ignore[arg-type]
    assert assembled.ack == expected and assembled.unanswered == 0


def test_several_interchanges_share_one_answer_and_the_ta1_cap(partners: PartnerDirectory) -> None:
    found = interchanges(b"".join(order_850("GLOBEX", n) for n in (21, 22, 23)), partners)
    [batch] = batch_acks(found)
    assert batch.receiver == ("ZZ", "GLOBEX") and len(batch.due) == 3 and batch.group_numbers == 1
    assembled = assemble_acks(batch.due, ta1="always", max_ta1=2, **ack_args(5))  # type: ignore[arg-type]
    assert assembled.unanswered == 1 and assembled.ack is not None
    text = assembled.ack.text
    assert text.count("ISA*") == 1 and text.count("TA1*") == 2 and "TA1*000000023*" not in text
    assert text.count("GS*FA*") == 1 and [f"ST*997*000{n}" in text for n in (1, 2, 3)] == [True] * 3
    assert [(a.kind, a.acknowledges) for a in assembled.ack.acks] == [
        ("TA1", "000000021"),
        ("TA1", "000000022"),
        ("997", "21"),
        ("997", "22"),
        ("997", "23"),
    ]
    assert assembled.ack.interchange_control == "000000005" and assembled.ack.group_controls == ("5",)
    # and it reads back as one sound interchange: TA1s after the ISA, one FA group
    items = list(translate(io.BytesIO(text.encode()), partners=partners))
    [back] = [i for i in items if isinstance(i, TranslatedInterchange)]
    assert back.outcome.notes == [] and [g.errors for g in back.outcome.groups] == [[]]
    assert [seg[0] for seg in back.interchange_segments] == ["TA1", "TA1"]
    assert [i.accepted for i in items if not isinstance(i, TranslatedInterchange)] == [True] * 3


def test_a_duplicate_gets_its_ta1_025_only(partners: PartnerDirectory) -> None:
    first, again = interchanges(order_850("GLOBEX", 31) + order_850("GLOBEX", 32), partners)
    [batch] = batch_acks([first], [again])
    assert [d.functional_ack for d in batch.due] == ["997", "none"]
    ack = assemble_acks(batch.due, ta1="on-error", **ack_args()).ack  # type: ignore[arg-type]
    assert ack is not None and "TA1*000000032*" in ack.text and "*R*025" in ack.text
    assert "TA1*000000031*" not in ack.text and ack.text.count("ST*997*") == 1


def test_unknown_senders_get_no_answer(partners: PartnerDirectory) -> None:
    assert batch_acks(interchanges(order_850("NOBODY", 41), partners)) == []


# --------------------------------------------------------------------------- interchanges


def test_documents_are_grouped_by_functional_id(partners: PartnerDirectory) -> None:
    profile = partners.get("acme")
    docs = [CanonicalDocument.model_validate(canonical_order(po)) for po in ("PO-A", "PO-B")]
    text = assemble_interchange(docs, profile, IDENTITY, interchange_control=7, group_control=70, at=NOW)
    assert text.count("GS*PO*OURCOMPANY*ACME*") == 1 and "*70*X*004010" in text
    assert "ST*850*0001" in text and "ST*850*0002" in text and "IEA*1*000000007" in text
    assert functional_id("invoice") == "IN" and business_number("order", docs[0].document) == "PO-A"


def test_interchanges_sent_to_different_addresses_of_ours_get_one_answer_each(tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    folder.mkdir()
    text = profile_toml("acme", "ACME", "key").replace(
        "[rest]", 'our_ids = [{ qualifier = "ZZ", id = "OURDUNS" }]\n[rest]'
    )
    (folder / "profile.toml").write_text(text)
    partners = load_partners(tmp_path, identity=IDENTITY)
    body = (
        order_850("ACME", 31, receiver="OURDUNS")
        + order_850("ACME", 32)
        + order_850("ACME", 33, receiver="OURDUNS")
    )
    batches = batch_acks(interchanges(body, partners))
    # by the partner's own our_ids address, and by [identity] (None: the gateway's)
    assert [(b.sender, len(b.due)) for b in batches] == [(("ZZ", "OURDUNS"), 2), (None, 1)]
