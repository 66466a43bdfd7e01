"""AMT in 850/855 sets: heading and line amounts end neither the header nor a line;
only the next PO1 or the summary (CTT, and the AMT after it) does. CTT01 must
match the number of PO1 loops, unless the partner's ``line_count`` rule is ``ignore``.

The sets are small, grammar-valid X12 (checked with validate_set) read through the
real envelope reader.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from ordersets import one_set, po1, valid_ack, valid_order
from x12util import interchange_text, read_sets

from translators.canonical import Order
from translators.engine import TranslatedInterchange, TranslatedSet, translate
from translators.mapping import MappingError, MappingRules, to_canonical
from translators.mapping.common import frame
from translators.mapping.order import order_from_x12
from translators.profile import PartnerProfile
from translators.x12.acks import render_acknowledgments
from translators.x12.codes import ElementSyntaxCode, SegmentSyntaxCode, SetSyntaxCode
from translators.x12.model import Segment

VERSIONS = ["004010", "005010"]

BEG = ["BEG", "00", "SA", "PO-77", "", "20240301"]
BAK = ["BAK", "00", "AC", "PO-77", "20240301", "", "", "", "", "20240302"]
PARTIES = [
    ["N1", "ST", "STORE 42", "92", "0042"],
    ["N3", "1 MAIN ST"],
    ["N1", "BY", "BUYER CO", "92", "B1"],
]


# --------------------------------------------------------------------------- 850


@pytest.mark.parametrize("version", VERSIONS)
def test_heading_amt_ends_nothing(version: str) -> None:
    # Heading AMT loop (pos 320) sits before the N1 loops (340); its REF and DTM
    # qualify the amount, not the order.
    order = valid_order(
        [
            BEG,
            ["REF", "DP", "100"],
            ["DTM", "010", "20240310"],
            ["AMT", "TT", "884.06"],
            ["REF", "ZZ", "AMOUNT-REF"],
            ["DTM", "002", "20240320"],
            *PARTIES,
            po1(1),
            po1(2),
            ["CTT", "2"],
        ],
        version,
    )
    assert [p.role for p in order.parties] == ["ship_to", "buyer"]
    assert [line.line_number for line in order.lines] == ["1", "2"]
    assert [(r.qualifier, r.value) for r in order.references] == [("DP", "100")]
    assert order.dates.requested_ship == date(2024, 3, 10)
    assert order.dates.requested_delivery is None  # the AMT loop's DTM


def test_line_amt_then_more_lines() -> None:
    order = valid_order(
        [
            BEG,
            *PARTIES,
            po1(1),
            ["PID", "F", "", "", "", "FIRST ITEM"],
            ["AMT", "1", "25.00"],
            ["REF", "ZZ", "LINE-AMT-REF"],
            po1(2),
            ["PID", "F", "", "", "", "SECOND ITEM"],
            ["DTM", "002", "20240405"],
            ["AMT", "1", "25.00"],
            po1(3),
            ["CTT", "3"],
        ]
    )
    first, second, third = order.lines
    assert (first.line_number, first.description) == ("1", "FIRST ITEM")
    assert (second.line_number, second.description) == ("2", "SECOND ITEM")
    assert second.dates.requested_delivery == date(2024, 4, 5)
    assert third.line_number == "3" and third.description is None


def test_amt_after_ctt_is_summary() -> None:
    order = valid_order([BEG, *PARTIES, po1(1), po1(2), ["CTT", "2"], ["AMT", "TT", "50.00"]])
    assert [line.line_number for line in order.lines] == ["1", "2"]
    assert len(order.parties) == 2


def test_no_lines_header_ends_at_ctt() -> None:
    tset = one_set("850", [BEG, ["AMT", "TT", "0"], *PARTIES, ["CTT", "0"]])
    order = order_from_x12(tset, MappingRules())
    assert len(order.parties) == 2 and order.lines == ()


# --------------------------------------------------------------------------- 855


def test_855_line_amt_then_rejected_line() -> None:
    ack = valid_ack(
        [
            BAK,
            ["N1", "ST", "STORE 42", "92", "0042"],
            po1(1),
            ["ACK", "IA", "10", "EA"],
            ["AMT", "1", "25.00"],
            po1(2),
            ["ACK", "IR", "0", "EA"],
            ["CTT", "2"],
            ["AMT", "TT", "25.00"],
        ]
    )
    assert [(line.line_number, line.status) for line in ack.lines] == [("1", "IA"), ("2", "IR")]
    assert len(ack.parties) == 1


# --------------------------------------------------------------------------- CTT01


@pytest.mark.parametrize(
    ("set_id", "head", "line_tail"),
    [("850", BEG, []), ("855", BAK, [["ACK", "IA", "10", "EA"]])],
)
def test_ctt01_mismatch_rejects(set_id: str, head: Segment, line_tail: list[Segment]) -> None:
    tset = one_set(set_id, [head, po1(1), *line_tail, ["AMT", "1", "25"], po1(2), *line_tail, ["CTT", "3"]])
    with pytest.raises(MappingError, match=r"CTT01 says 3 .* 2 PO1") as caught:
        to_canonical(tset, partner_id=None, rules=MappingRules())
    error = caught.value
    assert (error.segment, error.segment_code) == ("CTT", SegmentSyntaxCode.HAS_ELEMENT_ERRORS)
    assert (error.element, error.element_code) == (1, ElementSyntaxCode.INVALID_CODE)
    assert error.set_code is SetSyntaxCode.ONE_OR_MORE_SEGMENTS_IN_ERROR


@pytest.mark.parametrize("count", ["3", "000003"])
def test_ctt01_match_accepted(count: str) -> None:
    order = valid_order([BEG, po1(1), ["AMT", "1", "25"], po1(2), po1(3), ["CTT", count, "30"]])
    assert len(order.lines) == 3


def test_ctt01_mismatch_is_acknowledged_on_ctt() -> None:
    """Through the engine: the set is rejected and the 997 names CTT01."""

    class OnePartner:
        profile = PartnerProfile.model_validate(
            {
                "id": "p",
                "name": "P",
                "x12": {
                    "interchange_qualifier": "ZZ",
                    "interchange_id": "GATEWAYTEST",
                    "group_id": "GATEWAYTEST",
                    "version": "004010",
                },
            }
        )

        def get(self, partner_id: str) -> PartnerProfile | None:
            return self.profile

        def by_interchange(self, qualifier: str, interchange_id: str) -> PartnerProfile | None:
            return self.profile

    body = [BEG, po1(1), po1(2), ["CTT", "1"]]
    text = interchange_text([frame("850", "0001", body)], functional_id="PO")
    items = list(translate(text.encode(), partners=OnePartner()))
    (result,) = [i for i in items if isinstance(i, TranslatedSet)]
    (ix,) = [i for i in items if isinstance(i, TranslatedInterchange)]
    assert not result.accepted and result.reason is not None and "CTT01" in result.reason
    ack = render_acknowledgments(
        ix.outcome,
        functional_ack="997",
        ta1="never",
        sender=("ZZ", "US"),
        receiver=("ZZ", "GATEWAYTEST"),
        group_sender="US",
        group_receiver="GATEWAYTEST",
        interchange_control=1,
        group_control=1,
        now=datetime(2024, 3, 15, 14, 2),
    )
    assert ack is not None
    assert "AK3*CTT*5**8~" in ack.text and "AK4*1**7~" in ack.text and "AK5*R*5~" in ack.text


@pytest.mark.parametrize(
    ("set_id", "head", "line_tail"),
    [("850", BEG, []), ("855", BAK, [["ACK", "IA", "10", "EA"]])],
)
def test_ctt01_mismatch_ignored_when_the_partner_says_so(
    set_id: str, head: Segment, line_tail: list[Segment]
) -> None:
    """A partner whose CTT01 counts something else (unique items): ``line_count = "ignore"``."""
    tset = one_set(set_id, [head, po1(1), *line_tail, po1(2), *line_tail, ["CTT", "1"]])
    kind = "order" if set_id == "850" else "order_ack"
    rules = MappingRules.model_validate({kind: {"line_count": "ignore"}})
    document = to_canonical(tset, partner_id=None, rules=rules)
    assert len(document.document.lines) == 2
    # The rule is per kind: the other kind's setting does not relax this one.
    other = MappingRules.model_validate(
        {"order_ack" if kind == "order" else "order": {"line_count": "ignore"}}
    )
    with pytest.raises(MappingError, match="CTT01 says 1"):
        to_canonical(tset, partner_id=None, rules=other)


def test_unique_item_count_partner_from_the_corpus(corpus: Path) -> None:
    """bots 'safeway style' 850: five PO1 loops, CTT01 = 1."""
    path = corpus / "x12" / "850" / "bots_850_4010_grocery_safeway_style_SAC_CTP.edi"
    if not path.is_file():
        pytest.skip(f"{path.name} not in corpus")
    (tset,) = read_sets(path)
    with pytest.raises(MappingError, match="CTT01 says 1 line items but the set has 5 PO1"):
        to_canonical(tset, partner_id=None, rules=MappingRules())
    rules = MappingRules.model_validate({"order": {"line_count": "ignore"}})
    order = to_canonical(tset, partner_id=None, rules=rules).document
    assert isinstance(order, Order) and len(order.lines) == 5


# --------------------------------------------------------------------------- DTM in loops


@pytest.mark.parametrize("version", VERSIONS)
def test_dtm_of_a_heading_n9_loop_is_not_an_order_date(version: str) -> None:
    # Heading DTM pos 160; N9 loop (N9, DTM, MSG/MTX) pos 330: its DTM dates the note.
    message = ["MSG", "DELIVER TO DOCK 4"] if version == "004010" else ["MTX", "", "DELIVER TO DOCK 4"]
    order = valid_order(
        [
            BEG,
            ["DTM", "010", "20240310"],
            ["N9", "ZZ", "NOTE-1"],
            ["DTM", "002", "20240320"],
            message,
            ["N9", "ZZ", "NOTE-2"],
            ["DTM", "001", "20240330"],
            *PARTIES,
            po1(1),
            ["CTT", "1"],
        ],
        version,
    )
    assert order.dates.requested_ship == date(2024, 3, 10)
    assert order.dates.requested_delivery is None
    assert order.dates.cancel_after is None


def test_heading_dates_before_any_loop_still_count() -> None:
    order = valid_order(
        [BEG, ["DTM", "002", "20240320"], ["DTM", "001", "20240330"], *PARTIES, po1(1), ["CTT", "1"]]
    )
    assert (order.dates.requested_delivery, order.dates.cancel_after) == (
        date(2024, 3, 20),
        date(2024, 3, 30),
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_dtm_of_a_line_n9_loop_is_not_a_line_date(version: str) -> None:
    # PO1 loop: DTM pos 250 is the line's; N9 loop pos 430 (N9, DTM, ...) is a note's.
    order = valid_order(
        [
            BEG,
            *PARTIES,
            po1(1),
            ["DTM", "010", "20240311"],
            ["N9", "ZZ", "LINE-NOTE"],
            ["DTM", "002", "20240321"],
            po1(2),
            ["CTT", "2"],
        ],
        version,
    )
    first, second = order.lines
    assert first.dates.requested_ship == date(2024, 3, 11)
    assert first.dates.requested_delivery is None
    assert order.dates.requested_delivery is None and second.dates.requested_delivery is None
