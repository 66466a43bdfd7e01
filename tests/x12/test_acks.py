"""The acknowledgment builders: every verdict a 997/999/TA1 can carry, the element
limits, the policy (which ack, when a TA1) and the byte-stable goldens."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from translators.x12.acks import (
    IMPLEMENTATION_999,
    build_functional_ack,
    build_ta1,
    functional_ack_kind,
    functional_ack_version,
    render_acknowledgments,
    ta1_due,
)
from translators.x12.codes import (
    AckCode,
    ElementSyntaxCode,
    GroupSyntaxCode,
    InterchangeNote,
    SegmentSyntaxCode,
    SetSyntaxCode,
)
from translators.x12.model import (
    Delimiters,
    ElementError,
    GroupHeader,
    GroupOutcome,
    InterchangeHeader,
    InterchangeOutcome,
    SegmentError,
    SetOutcome,
)

NOW = datetime(2026, 3, 4, 5, 6, 7)
D = Delimiters()


def interchange(
    *, version: str = "00401", ack_requested: bool = False, usage: str = "P"
) -> InterchangeHeader:
    return InterchangeHeader(
        sender_qualifier="ZZ",
        sender_id="PARTNER",
        receiver_qualifier="ZZ",
        receiver_id="OURCOMPANY",
        date="260301",
        time="1200",
        standards_id="U" if version < "00402" else "^",
        version=version,
        control_number="000000042",
        ack_requested=ack_requested,
        usage=usage,
        delimiters=Delimiters(repetition=None if version < "00402" else "^"),
        segment=["ISA"],
    )


def group_header(version: str = "004010", functional_id: str = "PO", control: str = "17") -> GroupHeader:
    return GroupHeader(
        functional_id=functional_id,
        sender_id="PARTNER",
        receiver_id="OURCOMPANY",
        date="20260301",
        time="1200",
        control_number=control,
        agency="X",
        version=version,
        segment=["GS"],
    )


def good_set(control: str = "0001", set_id: str = "850") -> SetOutcome:
    return SetOutcome(set_id=set_id, control_number=control)


def bad_set(control: str = "0002") -> SetOutcome:
    return SetOutcome(
        set_id="850",
        control_number=control,
        segment_errors=[
            SegmentError(
                tag="BEG",
                position=2,
                code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
                elements=(
                    ElementError(
                        position=5, code=ElementSyntaxCode.INVALID_DATE, reference="373", value="20261399"
                    ),
                ),
            )
        ],
    )


# --------------------------------------------------------------------------- 997


def test_997_accepting_a_clean_group() -> None:
    group = GroupOutcome(header=group_header(), sets=[good_set()], sets_included=1)
    assert build_functional_ack(group, kind="997", control_number="0001") == [
        ["ST", "997", "0001"],
        ["AK1", "PO", "17"],
        ["AK2", "850", "0001"],
        ["AK5", "A"],
        ["AK9", "A", "1", "1", "1"],
        ["SE", "6", "0001"],
    ]


def test_997_rejecting_a_set_lists_segment_and_element_errors() -> None:
    group = GroupOutcome(header=group_header(), sets=[bad_set("0002")], sets_included=1)
    segments = build_functional_ack(group, kind="997", control_number="0009")
    assert segments[2:6] == [
        ["AK2", "850", "0002"],
        ["AK3", "BEG", "2", "", "8"],
        ["AK4", "5", "373", "8", "20261399"],
        ["AK5", "R", "5"],  # code 5 added: AK3s are listed
    ]
    assert segments[-2] == ["AK9", "R", "1", "1", "0"]
    assert segments[-1] == ["SE", str(len(segments)), "0009"]


def test_997_partial_acceptance_is_p_with_counts() -> None:
    group = GroupOutcome(
        header=group_header(), sets=[good_set("0001"), bad_set("0002"), good_set("0003")], sets_included=3
    )
    segments = build_functional_ack(group, kind="997", control_number="0001")
    assert segments[-2] == ["AK9", "P", "3", "3", "2"]
    assert [s[1] for s in segments if s[0] == "AK5"] == ["A", "R", "A"]


def test_group_errors_reject_the_group_and_accept_nothing() -> None:
    group = GroupOutcome(
        header=group_header(),
        sets=[good_set("0001"), good_set("0002")],
        errors=[GroupSyntaxCode.SET_COUNT_WRONG, GroupSyntaxCode.CONTROL_NUMBER_MISMATCH],
        sets_included=3,
    )
    segments = build_functional_ack(group, kind="997", control_number="0001")
    assert segments[-2] == ["AK9", "R", "3", "2", "0", "5", "4"]


def test_missing_ge_counts_the_sets_received() -> None:
    group = GroupOutcome(header=group_header(), sets=[good_set()], errors=[GroupSyntaxCode.TRAILER_MISSING])
    assert build_functional_ack(group, kind="997", control_number="0001")[-2] == [
        "AK9",
        "R",
        "1",
        "1",
        "0",
        "3",
    ]


def test_group_without_sets_counts_zero() -> None:
    group = GroupOutcome(header=group_header(), sets=[], sets_included=0)
    assert build_functional_ack(group, kind="997", control_number="0001") == [
        ["ST", "997", "0001"],
        ["AK1", "PO", "17"],
        ["AK9", "A", "0", "0", "0"],
        ["SE", "4", "0001"],
    ]


def test_set_errors_without_segment_errors() -> None:
    trailer = SetOutcome(set_id="850", control_number="0001", set_errors=[SetSyntaxCode.SEGMENT_COUNT_WRONG])
    segments = build_functional_ack(
        GroupOutcome(header=group_header(), sets=[trailer]), kind="997", control_number="1"
    )
    assert ["AK5", "R", "4"] in segments


def test_at_most_five_codes_and_no_duplicates() -> None:
    many = SetOutcome(
        set_id="850",
        control_number="0001",
        set_errors=[SetSyntaxCode(c) for c in ("1", "2", "3", "3", "4", "6", "7", "23")],
    )
    segments = build_functional_ack(
        GroupOutcome(header=group_header(), sets=[many]), kind="997", control_number="1"
    )
    assert ["AK5", "R", "1", "2", "3", "4", "6"] in segments


def test_997_in_4010_drops_codes_the_4010_lists_lack() -> None:
    outcome = SetOutcome(
        set_id="850",
        control_number="0001",
        set_errors=[
            SetSyntaxCode.IMPLEMENTATION_CONVENTION_NOT_SUPPORTED,
            SetSyntaxCode.SET_NOT_IN_GROUP,
            SetSyntaxCode.TRAILER_MISSING,
        ],
        segment_errors=[
            SegmentError(
                tag="PO1",
                position=7,
                code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
                elements=(
                    ElementError(
                        position=2, code=ElementSyntaxCode.TOO_MANY_COMPONENTS, component=3, repetition=2
                    ),
                ),
            )
        ],
    )
    group = GroupOutcome(header=group_header(), sets=[outcome])
    segments = build_functional_ack(group, kind="997", control_number="1")
    assert ["AK5", "R", "2", "5"] in segments
    assert ["AK4", "2>3", "", "3"] in segments  # no repetition in C030, code 13 -> 3


def test_element_limits_bad_data_and_loop_id() -> None:
    long_value = "X*Y>Z^" + "9" * 200
    outcome = SetOutcome(
        set_id="850",
        control_number="0001",
        segment_errors=[
            SegmentError(
                tag="N1",
                position=12,
                code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
                loop_id="N1LOOP",
                elements=(
                    ElementError(
                        position=2, code=ElementSyntaxCode.TOO_LONG, reference="93", value=long_value
                    ),
                    ElementError(
                        position=4, code=ElementSyntaxCode.MANDATORY_MISSING, reference="67", value=None
                    ),
                    ElementError(position=3, code=ElementSyntaxCode.INVALID_CHARACTER, value="   "),
                ),
            )
        ],
    )
    segments = build_functional_ack(
        GroupOutcome(header=group_header(), sets=[outcome]), kind="997", control_number="1"
    )
    ak3 = next(s for s in segments if s[0] == "AK3")
    assert ak3 == ["AK3", "N1", "12", "N1LO", "8"]
    ak4s = [s for s in segments if s[0] == "AK4"]
    assert ak4s[0][:4] == ["AK4", "2", "93", "5"]
    assert ak4s[0][4] == "XYZ" + "9" * 96 and len(ak4s[0][4]) == 99
    assert ak4s[1] == ["AK4", "4", "67", "1"]  # missing: no copy of bad data
    assert ak4s[2] == ["AK4", "3", "", "6"]  # all blanks: nothing worth copying


def test_accepted_with_errors_reaches_ak5_and_ak9() -> None:
    class Tolerated(SetOutcome):
        """A set validation chose to accept despite its errors (warnings)."""

        @property
        def ack_code(self) -> AckCode:
            return AckCode.ACCEPTED_WITH_ERRORS

    warned = Tolerated(set_id="850", control_number="0002", segment_errors=bad_set().segment_errors)
    group = GroupOutcome(header=group_header(), sets=[good_set("0001"), warned], sets_included=2)
    # GroupOutcome.ack_code counts only fully clean sets as accepted; a tolerated set
    # still counts as accepted in AK904.
    segments = build_functional_ack(group, kind="997", control_number="1")
    assert ["AK5", "E", "5"] in segments
    assert segments[-2][2:5] == ["2", "2", "2"]


# --------------------------------------------------------------------------- 999


def test_999_carries_versions_implementation_reference_and_repetition() -> None:
    outcome = SetOutcome(
        set_id="850",
        control_number="0001",
        implementation_reference="005010",
        segment_errors=[
            SegmentError(
                tag="REF",
                position=5,
                code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
                loop_id="N9",
                elements=(
                    ElementError(
                        position=4,
                        component=2,
                        repetition=3,
                        code=ElementSyntaxCode.TOO_LONG,
                        reference="C040",
                        value="ABC",
                    ),
                ),
            ),
            SegmentError(tag="ZZZ", position=9, code=SegmentSyntaxCode.UNRECOGNIZED),
        ],
        set_errors=[SetSyntaxCode.IMPLEMENTATION_CONVENTION_NOT_SUPPORTED],
    )
    group = GroupOutcome(header=group_header("005010"), sets=[outcome, good_set("0002")], sets_included=2)
    assert build_functional_ack(group, kind="999", control_number="0001") == [
        ["ST", "999", "0001", IMPLEMENTATION_999],
        ["AK1", "PO", "17", "005010"],
        ["AK2", "850", "0001", "005010"],
        ["IK3", "REF", "5", "N9", "8"],
        ["IK4", "4>2>3", "", "5", "ABC"],  # C040 is a composite, not a data element number
        ["IK3", "ZZZ", "9", "", "1"],
        ["IK5", "R", "I6", "5"],
        ["AK2", "850", "0002"],
        ["IK5", "A"],
        ["AK9", "P", "2", "2", "1"],
        ["SE", "11", "0001"],
    ]


def test_component_separator_comes_from_the_delimiters() -> None:
    outcome = SetOutcome(
        set_id="850",
        control_number="0001",
        segment_errors=[
            SegmentError(
                tag="PO1",
                position=3,
                code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
                elements=(ElementError(position=6, component=1, code=ElementSyntaxCode.INVALID_CODE),),
            )
        ],
    )
    group = GroupOutcome(header=group_header("005010"), sets=[outcome])
    segments = build_functional_ack(
        group, kind="999", control_number="1", delimiters=Delimiters(component=":")
    )
    assert ["IK4", "6:1", "", "7"] in segments


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("version", "setting", "kind"),
    [
        ("004010", "auto", "997"),
        ("004010VICS", "auto", "997"),
        ("003050", "auto", "997"),
        ("005010", "auto", "999"),
        ("005010X222A1", "auto", "999"),
        ("006020", "auto", "999"),
        ("T", "auto", "997"),
        ("004010", "999", "999"),
        ("005010", "997", "997"),
        ("005010", "none", None),
    ],
)
def test_which_functional_ack(version: str, setting: str, kind: str | None) -> None:
    assert functional_ack_kind(version, setting) == kind


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="functional_ack"):
        functional_ack_kind("004010", "998")
    with pytest.raises(ValueError, match="functional_ack"):
        render(InterchangeOutcome(header=interchange()), functional_ack="yes")
    with pytest.raises(ValueError, match="ta1"):
        ta1_due(InterchangeOutcome(header=interchange()), "sometimes")


def test_ack_group_versions() -> None:
    assert functional_ack_version("997", "004010VICS") == "004010"
    assert functional_ack_version("997", "003050") == "003050"
    assert functional_ack_version("997", "X") == "004010"
    assert functional_ack_version("999", "004010") == "005010X231A1"


@pytest.mark.parametrize(
    ("setting", "notes", "isa14", "expected"),
    [
        ("on-error", [], False, None),
        ("on-error", [], True, ["A", "000"]),
        ("on-error", [InterchangeNote.INVALID_GROUP_COUNT], False, ["R", "021"]),
        ("always", [], False, ["A", "000"]),
        (
            "always",
            [InterchangeNote.IMPROPER_END_OF_FILE, InterchangeNote.INVALID_GROUP_COUNT],
            False,
            ["R", "023"],
        ),
        ("never", [InterchangeNote.CONTROL_NUMBER_MISMATCH], True, None),
    ],
)
def test_ta1_policy(
    setting: str, notes: list[InterchangeNote], isa14: bool, expected: list[str] | None
) -> None:
    outcome = InterchangeOutcome(header=interchange(ack_requested=isa14), notes=list(notes))
    segment = build_ta1(outcome, policy=setting)
    if expected is None:
        assert segment is None
    else:
        assert segment == ["TA1", "000000042", "260301", "1200", *expected]


@pytest.mark.parametrize("note", list(InterchangeNote)[1:])
def test_ta1_rejects_with_every_note(note: InterchangeNote) -> None:
    outcome = InterchangeOutcome(header=interchange(), notes=[note])
    assert build_ta1(outcome) == ["TA1", "000000042", "260301", "1200", "R", note.value]


def test_no_ta1_answers_a_ta1() -> None:
    outcome = InterchangeOutcome(
        header=interchange(ack_requested=True), notes=[InterchangeNote.INVALID_GROUP_COUNT]
    )
    assert build_ta1(outcome, policy="always", replies_to_ta1=True) is None


# --------------------------------------------------------------------------- whole interchange


def render(outcome: InterchangeOutcome, **kwargs: object) -> Any:
    options: dict[str, object] = {
        "sender": ("ZZ", "OURCOMPANY"),
        "receiver": ("ZZ", "PARTNER"),
        "group_sender": "OURCOMPANY",
        "group_receiver": "PARTNER",
        "interchange_control": 7,
        "group_control": 70,
        "now": NOW,
    }
    options.update(kwargs)
    return render_acknowledgments(outcome, **options)  # type: ignore[arg-type]


def test_nothing_due_renders_nothing() -> None:
    ack_of_ack = InterchangeOutcome(
        header=interchange(),
        groups=[GroupOutcome(header=group_header(functional_id="FA"), sets=[good_set(set_id="997")])],
    )
    assert render(ack_of_ack) is None
    no_fa = InterchangeOutcome(
        header=interchange(), groups=[GroupOutcome(header=group_header(), sets=[good_set()])]
    )
    assert render(no_fa, functional_ack="none") is None


def accepted_4010(delimiters: Delimiters, *, version: str = "00401") -> InterchangeOutcome:
    header = interchange(version=version)
    header.delimiters = delimiters
    return InterchangeOutcome(header=header, groups=[GroupOutcome(header=group_header(), sets=[good_set()])])


def test_render_records_what_it_holds() -> None:
    outcome = InterchangeOutcome(
        header=interchange(ack_requested=True),
        groups=[
            GroupOutcome(header=group_header(control="17"), sets=[good_set()], sets_included=1),
            GroupOutcome(header=group_header("005010", control="18"), sets=[bad_set()], sets_included=1),
            GroupOutcome(header=group_header(control="19"), sets=[good_set(), bad_set()], sets_included=2),
        ],
    )
    ack = render(outcome)
    assert ack.interchange_control == "000000007"
    assert ack.group_controls == ("70", "71")  # one FA group per ack kind and version
    assert ack.acks == (
        ("TA1", "000000042", "A", None, None),
        ("997", "17", "A", "70", "0001"),
        ("997", "19", "P", "70", "0003"),
        ("999", "18", "R", "71", "0002"),
    )
    assert ack.text.startswith(
        "ISA*00*          *00*          *ZZ*OURCOMPANY     *ZZ*PARTNER        *260304*0506*U*00401*000000007*0*P*>~\n"
    )
    assert "GS*FA*OURCOMPANY*PARTNER*20260304*0506*71*X*005010X231A1~" in ack.text


def test_render_mirrors_the_partners_delimiters_and_usage() -> None:
    outcome = accepted_4010(
        Delimiters(element="|", component="<", repetition=None, segment="!", suffix="\r\n")
    )
    outcome.header.usage = "T"
    ack = render(outcome)
    assert ack.text.startswith("ISA|00|")
    assert "|U|00401|000000007|0|T|<!\r\n" in ack.text
    assert "AK9|A|1|1|1!\r\n" in ack.text
    assert render(outcome, usage="P").text.count("|P|<!") == 1


def test_render_replaces_a_newline_terminator_and_adds_a_repetition_for_a_999() -> None:
    outcome = accepted_4010(Delimiters(element="*", component=":", repetition=None, segment="\n", suffix=""))
    ack = render(outcome, functional_ack="999")
    assert "*^*00501*000000007*0*P*:~\n" in ack.text
    assert "ST*999*0001*005010X231A1~\n" in ack.text


def test_render_falls_back_to_standard_delimiters_when_the_partners_clash() -> None:
    outcome = accepted_4010(Delimiters(element="*", component="*", repetition=None, segment="~"))
    assert "*U*00401*000000007*0*P*>~\n" in render(outcome).text


def test_render_scrubs_our_delimiters_from_echoed_values() -> None:
    outcome = accepted_4010(Delimiters(element="|", component="<", repetition=None, segment="!"))
    outcome.groups[0].header.control_number = "17*1"  # harmless under '|', not under '*'
    ack = render(outcome, delimiters=Delimiters())
    assert "AK1*PO*171~" in ack.text


def test_ta1_only_interchange_keeps_the_inbound_envelope_version() -> None:
    outcome = InterchangeOutcome(header=interchange(version="00501"), notes=[InterchangeNote.INVALID_DATE])
    ack = render(outcome)
    assert "*^*00501*000000007*0*P*>~\nTA1*000000042*260301*1200*R*014~\nIEA*0*000000007~\n" in ack.text
    assert ack.acks == (("TA1", "000000042", "R", None, None),)


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "acks"
GOLDEN_INPUTS = sorted(FIXTURES.glob("*.edi"))


class NoPartners:
    """No profile for anyone: sets are still read and validated, which is all acks need."""

    def get(self, partner_id: str) -> None:
        return None

    def by_interchange(self, qualifier: str, interchange_id: str) -> None:
        return None


def acknowledge_file(path: Path) -> str:
    """What the gateway sends back for ``path``, every interchange's acks in order."""
    from translators.engine import TranslatedInterchange, translate

    texts: list[str] = []
    for number, item in enumerate(
        (
            i
            for i in translate(path.read_bytes(), partners=NoPartners())
            if isinstance(i, TranslatedInterchange)
        ),
        start=1,
    ):
        header = item.outcome.header
        ack = render_acknowledgments(
            item.outcome,
            sender=(header.receiver_qualifier, header.receiver_id),
            receiver=(header.sender_qualifier, header.sender_id),
            group_sender="OURCOMPANY",
            group_receiver="PARTNER",
            interchange_control=500 + number,
            group_control=5000 + 10 * number,
            now=NOW,
            replies_to_ta1=any(s[0] == "TA1" for s in item.interchange_segments),
        )
        texts.append(ack.text if ack is not None else "")
    return "".join(texts)


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=[p.name for p in GOLDEN_INPUTS])
def test_golden_acknowledgments(path: Path, regen_golden: bool) -> None:
    expected_path = path.with_suffix(".ack")
    actual = acknowledge_file(path)
    if regen_golden:
        expected_path.write_text(actual, encoding="utf-8", newline="")
    assert expected_path.exists(), f"no golden {expected_path.name}: run pytest --regen-golden"
    assert actual == expected_path.read_text(encoding="utf-8"), f"{path.name}: acknowledgment changed"
    assert acknowledge_file(path) == actual, "the same input renders the same bytes"


def test_goldens_cover_every_verdict() -> None:
    texts = {p.name: p.with_suffix(".ack").read_text(encoding="utf-8") for p in GOLDEN_INPUTS}
    everything = "".join(texts.values())
    for needle in (
        "AK9*A*",
        "AK9*P*",
        "AK9*R*",
        "TA1*000000101*260301*1200*A*000",
        "*R*021",
        "ST*999*",
        "IK4*",
    ):
        assert needle in everything, needle
    ack_of_ack = texts["997_4010_inbound_ta1_requested.edi"]
    assert "TA1*000000109*260301*1200*A*000" in ack_of_ack, "ISA14=1 is honoured on any interchange"
    assert "ST*997" not in ack_of_ack, "a 997 is never acknowledged with a 997"
