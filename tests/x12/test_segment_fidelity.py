"""Segment definitions that were transcribed wrongly and rejected valid sets (issue 10).

Each test is a set the standard allows and that an earlier map refused; the
dictionary cross-check (test_dictionary_crosscheck.py) finds this class of error
mechanically, these keep the concrete cases readable.
"""

from __future__ import annotations

import pytest

from translators.x12.envelope import read_events
from translators.x12.events import SetRead
from translators.x12.model import TransactionSet
from translators.x12.validation import validate_set

ISA = {
    "004010": "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*U*00401*000000001*0*P*>~",
    "005010": "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*>~",
}
FID = {"850": "PO", "855": "PR", "856": "SH", "810": "IN"}
BODY_850 = ("BEG*00*SA*PO123**20240101~", "PO1*1*10*EA*9.99**VP*ABC~CTT*1~")
BODY_855 = ("BAK*00*AC*PO123*20240101~", "PO1*1*10*EA*9.99**VP*ABC~CTT*1~")
BODY_856 = ("BSN*00*SHIP1*20240101*1200~HL*1**S~", "HL*2*1*I~LIN**VP*ABC~SN1**10*EA~CTT*2~")
BODY_810 = ("BIG*20240101*INV1~", "IT1*1*10*EA*9.99**VP*ABC~TDS*9990~")


def _set(set_id: str, version: str, body: str) -> TransactionSet:
    segments = [s for s in body.split("~") if s]
    text = (
        ISA[version]
        + f"GS*{FID[set_id]}*SENDER*RECEIVER*20240101*1200*1*X*{version}~"
        + f"ST*{set_id}*0001~"
        + "".join(s + "~" for s in segments)
        + f"SE*{len(segments) + 2}*0001~GE*1*1~IEA*1*000000001~"
    )
    (transaction_set,) = [e.transaction_set for e in read_events(text) if isinstance(e, SetRead)]
    return transaction_set


def _errors(set_id: str, version: str, body: str) -> list[tuple[str, int, str, str | None]]:
    outcome = validate_set(_set(set_id, version, body))
    return [(s.tag, x.position, x.code.name, x.value) for s in outcome.segment_errors for x in s.elements] + [
        (s.tag, 0, s.code.name, None) for s in outcome.segment_errors if not s.elements
    ]


VERSIONS = ("004010", "005010")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("set_id", "head", "tail"), [("850", *BODY_850), ("855", *BODY_855)])
def test_td3_has_seal_status_before_seal_number(set_id: str, version: str, head: str, tail: str) -> None:
    # TD308 Seal Status Code (407, ID 2/2), TD309 Seal Number (225), TD310 Equipment Type (24, ID 4/4)
    td3 = "TD3**ABCD*123456*****SS*SEAL12345*4000~"
    assert _errors(set_id, version, head + td3 + tail) == []
    # a 4-character seal status no longer passes as the equipment type
    bad = "TD3*TL*ABCD*123456*****SEAL~"
    assert ("TD3", 8, "TOO_LONG", "SEAL") in _errors(set_id, version, head + bad + tail)
    # equipment type is ID 4/4
    short = "TD3**ABCD*123456*******40~"
    assert ("TD3", 10, "TOO_SHORT", "40") in _errors(set_id, version, head + short + tail)


@pytest.mark.parametrize("version", VERSIONS)
def test_td3_in_the_856_shipment_level(version: str) -> None:
    head, tail = BODY_856
    body = head + "TD3**ABCD*123456*****SS*SEAL12345*4000~" + tail
    assert _errors("856", version, body) == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("set_id", "head", "tail"), [("850", *BODY_850), ("855", *BODY_855)])
def test_csh_has_ten_elements_and_its_real_notes(set_id: str, version: str, head: str, tail: str) -> None:
    # an account number alone: there is no C0406 in the standard
    assert _errors(set_id, version, head + "CSH****ACCT 0001~" + tail) == []
    # CSH08 Product/Service Substitution Code (566), CSH09 Percent (954), CSH10 Percent Qualifier (1004)
    assert _errors(set_id, version, head + "CSH*SC" + "*" * 7 + "Z*10*A~" + tail) == []
    # P0910: a percent and its qualifier come together
    assert ("CSH", 10, "CONDITIONAL_MISSING", None) in _errors(
        set_id, version, head + "CSH*SC" + "*" * 8 + "10~" + tail
    )
    # C0203: an action code needs its amount
    assert ("CSH", 3, "CONDITIONAL_MISSING", None) in _errors(set_id, version, head + "CSH**Y~" + tail)
    # P0607: agency qualifier and special services code come together
    assert ("CSH", 7, "CONDITIONAL_MISSING", None) in _errors(set_id, version, head + "CSH******AX~" + tail)


@pytest.mark.parametrize("version", VERSIONS)
def test_it3_notes_are_p0102_and_r01030405(version: str) -> None:
    head, tail = BODY_810
    it1 = "IT1*1*10*EA*9.99**VP*ABC~"
    assert _errors("810", version, head + it1 + "IT3****7~" + tail) == []
    assert _errors("810", version, head + it1 + "IT3*10*EA*CL~" + tail) == []
    # P0102 still holds; R01030405 needs one of them
    assert ("IT3", 2, "CONDITIONAL_MISSING", None) in _errors("810", version, head + it1 + "IT3*10~" + tail)
    assert ("IT3", 1, "CONDITIONAL_MISSING", None) in _errors("810", version, head + it1 + "IT3**EA~" + tail)


@pytest.mark.parametrize("version", VERSIONS)
def test_it3_in_the_850_line(version: str) -> None:
    head, _ = BODY_850
    body = head + "PO1*1*10*EA*9.99**VP*ABC~IT3****7~CTT*1~"
    assert _errors("850", version, body) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_n9_note_is_c0605(version: str) -> None:
    head, tail = BODY_850
    # a time without a date is allowed (there is no C0504) ...
    assert _errors("850", version, head + "N9*PO*123***1200~" + tail) == []
    # ... a time code without a time is not
    assert ("N9", 5, "CONDITIONAL_MISSING", None) in _errors("850", version, head + "N9*PO*123****ET~" + tail)


@pytest.mark.parametrize("version", VERSIONS)
def test_cur_fourth_and_fifth_date_groups_have_their_notes(version: str) -> None:
    head, tail = BODY_850
    # C1716: a date in CUR17 needs its qualifier in CUR16
    body = head + "CUR*BY*USD" + "*" * 15 + "20240101~" + tail
    assert ("CUR", 16, "CONDITIONAL_MISSING", None) in _errors("850", version, body)
    # L192021: a qualifier in CUR19 needs a date or a time
    body = head + "CUR*BY*USD" + "*" * 17 + "007~" + tail
    assert ("CUR", 20, "CONDITIONAL_MISSING", None) in _errors("850", version, body)
