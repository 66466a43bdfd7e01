"""A partner's [x12.validation] switches through the engine and the 997: "note"
accepts the set with AK5/AK9 E and the same AK3/AK4, and the document carries the
finding in ``warnings``; a rejection names the switch that would accept it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from translators.engine import TranslatedInterchange, TranslatedSet, translate
from translators.profile import PartnerProfile
from translators.x12.acks import render_acknowledgments

ISA = "ISA*00*          *00*          *ZZ*ACME           *ZZ*US             *261122*0930*U*00401*000000001*0*P*>~"
PO = [
    "BEG*00*SA*PO-1**20261120",
    "N1*ST*STORE*92*0012",
    "N4*TOWN*State*55401",
    "PO1*1*12*EA*4.25**UP*012345678905",
    "CTT*1",
]


class OnePartner:
    def __init__(self, validation: dict[str, str]) -> None:
        self.profile = PartnerProfile.model_validate(
            {
                "id": "acme",
                "name": "Acme",
                "x12": {
                    "interchange_qualifier": "ZZ",
                    "interchange_id": "ACME",
                    "group_id": "ACME",
                    "version": "004010",
                    "functional_ack": "997",
                    "validation": validation,
                },
            }
        )

    def get(self, partner_id: str) -> PartnerProfile | None:
        return self.profile

    def by_interchange(self, qualifier: str, interchange_id: str) -> PartnerProfile | None:
        return self.profile


def run(body: list[str], **validation: str) -> tuple[TranslatedSet, str]:
    segments = ["ST*850*0001", *body, f"SE*{len(body) + 2}*0001"]
    text = (
        ISA
        + "GS*PO*ACME*US*20261122*0930*1*X*004010~"
        + "".join(s + "~" for s in segments)
        + "GE*1*1~IEA*1*000000001~"
    )
    items = list(translate(text.encode(), partners=OnePartner(validation)))
    tset = next(i for i in items if isinstance(i, TranslatedSet))
    interchange = next(i for i in items if isinstance(i, TranslatedInterchange))
    ack = render_acknowledgments(
        interchange.outcome,
        functional_ack="997",
        ta1="never",
        sender=("ZZ", "US"),
        receiver=("ZZ", "ACME"),
        group_sender="US",
        group_receiver="ACME",
        interchange_control=1,
        group_control=1,
        now=datetime(2026, 11, 22, 10, 30),
    )
    assert ack is not None
    return tset, ack.text


def _ack_lines(text: str) -> list[str]:
    return [line for line in text.replace("\n", "").split("~") if line[:3] in ("AK3", "AK4", "AK5", "AK9")]


def test_rejected_by_default_and_the_message_names_the_switch() -> None:
    tset, ack = run(PO)
    assert not tset.accepted
    assert (
        tset.reason is not None and '[x12.validation] element_length = "note" would accept it' in tset.reason
    )
    assert _ack_lines(ack) == ["AK3*N4*4*N1*8", "AK4*2*156*5*State", "AK5*R*5", "AK9*R*1*1*0"]


def test_note_accepts_with_e_and_the_same_detail() -> None:
    tset, ack = run(PO, element_length="note")
    assert tset.accepted and tset.document is not None
    assert _ack_lines(ack) == ["AK3*N4*4*N1*8", "AK4*2*156*5*State", "AK5*E*5", "AK9*E*1*1*1"]
    warnings: list[dict[str, Any]] = [w.model_dump() for w in tset.document.warnings]
    assert warnings == [
        {"segment": "N4", "position": 4, "element": 2, "code": "5", "text": "N402: code 5 (too long) 'State'"}
    ]


def test_ignore_accepts_silently() -> None:
    tset, ack = run(PO, element_length="ignore")
    assert tset.accepted and tset.document is not None and tset.document.warnings == ()
    assert _ack_lines(ack) == ["AK5*A", "AK9*A*1*1*1"]


def test_line_count_note() -> None:
    body = [s if s != "CTT*1" else "CTT*3" for s in PO if not s.startswith("N4")]
    rejected, _ = run(body)
    assert (
        rejected.reason is not None
        and '[x12.validation] line_count = "note" would accept it' in rejected.reason
    )
    tset, ack = run(body, line_count="note")
    assert tset.accepted and tset.document is not None
    assert _ack_lines(ack) == ["AK3*CTT*5**8", "AK4*1**7", "AK5*E*5", "AK9*E*1*1*1"]
    assert [(w.segment, w.element, w.code) for w in tset.document.warnings] == [("CTT", 1, "7")]
    ignored, ack = run(body, line_count="ignore")
    assert ignored.accepted and _ack_lines(ack) == ["AK5*A", "AK9*A*1*1*1"]
