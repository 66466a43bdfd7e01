"""Heading loops of the 850/855: a segment belongs to the loop it sits in.

Only heading-level REFs (850/855 pos 040, before any heading loop) and the REFs of the
heading N1 loops are order references; only heading N1 loops (850 pos 340, 855 pos
310) are parties. The REF, N1 (N3/N4/PER) and DTM segments of the N9, SPI (and its N1
and CB1 loops), LM, ADV, SAC, LDT and AMT loops are not the order's. Inside a PO1 loop
the line's own PID/SDQ/DTM count, not those of its N9, N1 and SLN loops.

The sets are small X12 sets read through the real envelope reader; all but one (a
REF after an N9, which the grammar has nowhere to place) are grammar-valid (checked
with validate_set).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from ordersets import one_set, po1, valid_ack, valid_order
from x12util import read_sets

from translators.canonical import Order
from translators.canonical.common import Reference
from translators.mapping import MappingRules, to_canonical
from translators.mapping.order import order_from_x12
from translators.x12.model import Segment
from translators.x12.validation import validate_set

VERSIONS = ["004010", "005010"]

BEG = ["BEG", "00", "SA", "PO-77", "", "20240301"]
BAK = ["BAK", "00", "AC", "PO-77", "20240301", "", "", "", "", "20240302"]
HEADING_REF = ["REF", "DP", "100"]
SHIP_TO = [
    ["N1", "ST", "STORE 42", "92", "0042"],
    ["N3", "1 MAIN ST"],
    ["N4", "SPRINGFIELD", "IL", "62701"],
    ["REF", "ST", "STORE-REF"],
    ["PER", "IC", "DOCK"],
]


def message(version: str, words: str) -> Segment:
    return ["MSG", words] if version == "004010" else ["MTX", "", words]


def pairs(references: tuple[Reference, ...]) -> list[tuple[str, str | None]]:
    return [(r.qualifier, r.value) for r in references]


# --------------------------------------------------------------------------- 850 heading


@pytest.mark.parametrize("version", VERSIONS)
def test_spi_loop_ref_and_n1_are_not_the_orders(version: str) -> None:
    # 850 heading: REF 040, DTM 160, N9 loop 330, N1 loop 340, SPI loop 360 (SPI REF
    # DTM MSG/MTX, N1 loop 050: N1 N2 N3 N4 REF ..., CB1 loop 060: CB1 REF DTM ...),
    # ADV loop 370 (ADV DTM).
    order = valid_order(
        [
            BEG,
            HEADING_REF,
            ["DTM", "002", "20240320"],
            ["N9", "ZZ", "NOTE-1"],
            ["DTM", "010", "20240311"],
            message(version, "A NOTE"),
            *SHIP_TO,
            ["SPI", "00"],
            ["REF", "ZZ", "SPEC-REF"],
            ["DTM", "001", "20240330"],
            message(version, "SPEC TEXT"),
            ["N1", "BY", "SPEC PARTY", "92", "SP1"],
            ["N3", "9 SPEC RD"],
            ["N4", "OTHERTOWN", "OH", "44101"],
            ["REF", "ZZ", "SPEC-PARTY-REF"],
            ["CB1", "TC"],
            ["REF", "ZZ", "CB1-REF"],
            ["DTM", "038", "20240331"],
            ["ADV", "AA"],
            ["DTM", "037", "20240305"],
            po1(1),
            ["CTT", "1"],
        ],
        version,
    )
    assert pairs(order.references) == [("DP", "100"), ("ST", "STORE-REF")]
    assert [(p.role, p.name, p.id) for p in order.parties] == [("ship_to", "STORE 42", "0042")]
    (ship_to,) = order.parties
    assert (ship_to.address_lines, ship_to.city, ship_to.postal_code) == (
        ("1 MAIN ST",),
        "SPRINGFIELD",
        "62701",
    )
    assert order.dates.requested_delivery == date(2024, 3, 20)
    assert (order.dates.requested_ship, order.dates.cancel_after) == (None, None)
    assert (order.dates.ship_no_later, order.dates.ship_not_before) == (None, None)


def test_spi_loop_only_no_parties_no_references() -> None:
    # An SPI loop's N1 loop is the specification's party, even with no heading N1.
    order = valid_order(
        [
            BEG,
            ["SPI", "00"],
            ["REF", "ZZ", "SPEC-REF"],
            ["N1", "BY", "SPEC PARTY"],
            ["N3", "9 SPEC RD"],
            ["REF", "ZZ", "SPEC-PARTY-REF"],
            po1(1),
            ["CTT", "1"],
        ]
    )
    assert order.references == ()
    assert order.parties == ()


def test_ref_after_an_n9_is_not_an_order_reference() -> None:
    # The N9 loop (N9 DTM MSG) has no REF and the heading REF (040) comes before it, so
    # the grammar places a REF there nowhere; the mapper does not make it the order's.
    tset = one_set(
        "850",
        [BEG, HEADING_REF, ["N9", "ZZ", "NOTE-1"], ["REF", "ZZ", "N9-REF"], *SHIP_TO, po1(1), ["CTT", "1"]],
        "004010",
    )
    assert not validate_set(tset).accepted
    order = order_from_x12(tset, MappingRules())
    assert pairs(order.references) == [("DP", "100"), ("ST", "STORE-REF")]
    assert [p.role for p in order.parties] == ["ship_to"]


def test_heading_ref_before_the_loops_and_several_n1_loops() -> None:
    order = valid_order(
        [
            BEG,
            ["REF", "DP", "100"],
            ["REF", "IA", "VENDOR-9"],
            ["N9", "ZZ", "NOTE-1"],
            *SHIP_TO,
            ["N1", "BY", "BUYER CO", "92", "B1"],
            ["REF", "ZZ", "BUYER-REF"],
            ["LM", "DF"],
            ["LQ", "0", "X1"],
            po1(1),
            ["CTT", "1"],
        ]
    )
    # Heading REFs first, then those of the N1 loops in order.
    assert pairs(order.references) == [
        ("DP", "100"),
        ("IA", "VENDOR-9"),
        ("ST", "STORE-REF"),
        ("ZZ", "BUYER-REF"),
    ]
    assert [p.role for p in order.parties] == ["ship_to", "buyer"]


def test_sac_loop_cur_is_not_the_order_currency() -> None:
    # SAC loop (pos 120: SAC CUR): its CUR is the charge's currency; the order's is CUR 030.
    sac = ["SAC", "C", "D240", "", "", "10000"]
    without = valid_order([BEG, sac, ["CUR", "SE", "CAD"], *SHIP_TO, po1(1), ["CTT", "1"]])
    assert without.currency is None
    heading = valid_order(
        [BEG, ["CUR", "BY", "USD"], sac, ["CUR", "SE", "CAD"], *SHIP_TO, po1(1), ["CTT", "1"]]
    )
    assert heading.currency == "USD"


def test_td5_of_an_n1_loop_is_not_the_order_carrier() -> None:
    # TD5 is a heading segment (pos 250) and an N1 loop segment (340/110): the latter
    # routes to that party.
    td5 = ["TD5", "", "2", "PARTYSCAC"]
    in_loop = valid_order([BEG, *SHIP_TO, td5, po1(1), ["CTT", "1"]])
    assert in_loop.carrier is None
    heading = valid_order([BEG, ["TD5", "", "2", "ORDERSCAC"], *SHIP_TO, td5, po1(1), ["CTT", "1"]])
    assert heading.carrier is not None and heading.carrier.scac == "ORDERSCAC"


def test_5010_ldt_loop_ref_and_in2_of_an_n1_loop() -> None:
    # 005010 heading LDT loop (pos 310: LDT QTY MTX REF) holds a REF that is the lead
    # time's; the N1 loop has IN2 (pos 030) between N2 and N3.
    order = valid_order(
        [
            BEG,
            HEADING_REF,
            ["LDT", "AA", "10", "DA"],
            ["REF", "ZZ", "LDT-REF"],
            ["N1", "ST", "STORE 42", "92", "0042"],
            ["IN2", "01", "PAT"],
            ["N3", "1 MAIN ST"],
            ["N4", "SPRINGFIELD", "IL", "62701"],
            ["REF", "ST", "STORE-REF"],
            po1(1),
            ["CTT", "1"],
        ],
        "005010",
    )
    assert pairs(order.references) == [("DP", "100"), ("ST", "STORE-REF")]
    (ship_to,) = order.parties
    assert (ship_to.address_lines, ship_to.city) == (("1 MAIN ST",), "SPRINGFIELD")


# --------------------------------------------------------------------------- 850 lines


@pytest.mark.parametrize("version", VERSIONS)
def test_line_sub_loops_do_not_feed_the_line(version: str) -> None:
    # PO1 loop: REF 130, DTM 250 are the line's; N9 (430: N9 DTM ...), N1 (440: N1 ...
    # REF DTM) and SLN (450: SLN ... PID DTM) loops are a note's, a party's, a subline's.
    order = valid_order(
        [
            BEG,
            *SHIP_TO,
            po1(1),
            ["PID", "F", "", "", "", "LINE ONE"],
            ["REF", "ZZ", "LINE-REF"],
            ["DTM", "010", "20240311"],
            ["N9", "ZZ", "LINE-NOTE"],
            ["DTM", "002", "20240321"],
            ["N1", "ST", "LINE STORE", "92", "0099"],
            ["REF", "ZZ", "LINE-PARTY-REF"],
            ["DTM", "001", "20240331"],
            ["SLN", "1", "", "I", "1", "EA"],
            ["PID", "F", "", "", "", "SUBLINE"],
            ["DTM", "037", "20240305"],
            po1(2),
            ["CTT", "2"],
        ],
        version,
    )
    first, second = order.lines
    assert first.description == "LINE ONE"
    assert first.dates.requested_ship == date(2024, 3, 11)
    assert (first.dates.requested_delivery, first.dates.cancel_after, first.dates.ship_not_before) == (
        None,
        None,
        None,
    )
    assert second.description is None and second.dates.requested_ship is None
    # The line's REF and its N1 loop are not the order's either.
    assert pairs(order.references) == [("ST", "STORE-REF")]
    assert [p.id for p in order.parties] == ["0042"]


# --------------------------------------------------------------------------- 855 heading


@pytest.mark.parametrize("version", VERSIONS)
def test_855_heading_loops(version: str) -> None:
    # 855 heading: CUR 030, REF 040, SAC loop 110 (SAC CUR), N9 loop 300, N1 loop 310
    # (5010: IN2 after N2), ADV loop 320.
    n1 = [["N1", "ST", "STORE 42", "92", "0042"]]
    if version == "005010":
        n1.append(["IN2", "01", "PAT"])
    order_ack = valid_ack(
        [
            BAK,
            HEADING_REF,
            ["SAC", "C", "D240", "", "", "10000"],
            ["CUR", "SE", "CAD"],
            ["N9", "ZZ", "NOTE-1"],
            message(version, "A NOTE"),
            *n1,
            ["N3", "1 MAIN ST"],
            ["REF", "ST", "STORE-REF"],
            ["ADV", "AA"],
            ["DTM", "002", "20240320"],
            po1(1),
            ["CTT", "1"],
        ],
        version,
    )
    assert order_ack.currency is None
    assert pairs(order_ack.references) == [("DP", "100"), ("ST", "STORE-REF")]
    (ship_to,) = order_ack.parties
    assert (ship_to.id, ship_to.address_lines) == ("0042", ("1 MAIN ST",))


# --------------------------------------------------------------------------- corpus


def test_corpus_spi_order_keeps_its_heading_references_and_parties(corpus: Path) -> None:
    # BEG REF N1 N1 N3 N4 PER SPI MSG: the SPI loop adds nothing.
    (tset,) = read_sets(corpus / "x12" / "850" / "oop_850_4010_p2p_SPI_MSG.edi")
    order = to_canonical(tset, partner_id=None, rules=MappingRules()).document
    assert isinstance(order, Order)
    assert len(order.references) == 1 and len(order.parties) == 2


def test_corpus_sac_loop_currency_is_not_the_orders(corpus: Path) -> None:
    # BEG REF REF SAC CUR N1...: the only CUR is the SAC loop's (the set is otherwise
    # rejected by validation for its SAC, and its CTT01 counts items, hence "ignore").
    (tset,) = read_sets(corpus / "x12" / "850" / "vscodeedi_850_4010_dropship_SLN_LDT_N9.edi")
    rules = MappingRules.model_validate({"order": {"line_count": "ignore"}})
    order = order_from_x12(tset, rules)
    assert order.currency is None
    assert [r.qualifier for r in order.references] == ["IA", "2H"]
    assert [p.role for p in order.parties] == ["bill_to", "so"]
