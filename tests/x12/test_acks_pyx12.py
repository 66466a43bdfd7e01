"""Interop evidence: the 997s and 999s we send pass pyx12, a reference validator,
and read back through our own ack reader to the verdicts we meant.

pyx12's 997/999 maps are written for HIPAA: AK101 and AK201 only list the
health-care functional ids (HC, BE...) and sets (837, 834...). For our retail acks
(PO/850, SH/856, IN/810) the test runs pyx12 on a copy of its maps, made in a
temporary folder, with only those two code lists opened; everything else (segment
order, loops, lengths, types, every other code list) is pyx12's own. One test runs
the pristine maps on a health-care group to show nothing else was relaxed.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pyx12
import pyx12.params
import pyx12.x12n_document
from lxml import etree

from translators.x12.ack_reader import FunctionalAckReport, read_functional_ack
from translators.x12.acks import AckInterchange, render_acknowledgments
from translators.x12.codes import (
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
HIPAA_ONLY = ("AK101", "AK201")
ACK_MAPS = ("997.4010.xml", "999.5010X231.A1.xml")


@pytest.fixture(scope="module")
def retail_maps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pyx12's map folder with the HIPAA-only AK101/AK201 code lists removed."""
    source = Path(pyx12.__file__).parent / "map"
    target = tmp_path_factory.mktemp("pyx12maps")
    for path in source.iterdir():
        if path.is_file():
            shutil.copy(path, target / path.name)
    for name in ACK_MAPS:
        tree = etree.parse(str(target / name))
        for node in tree.iter("element"):
            if node.get("xid") in HIPAA_ONLY:
                for codes in node.findall("valid_codes"):
                    node.remove(codes)
        tree.write(str(target / name), xml_declaration=True, encoding="utf-8")
    return target


def pyx12_errors(text: str, map_path: Path | None = None) -> list[str]:
    """Every error pyx12 reports on ``text`` (empty when it is valid)."""
    out = io.StringIO()
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    ok = pyx12.x12n_document.x12n_document(
        pyx12.params.params(),
        io.StringIO(text),
        None,
        None,
        None,
        out,
        map_path=str(map_path) if map_path else None,
    )
    errors = list(_errors_in(json.loads(out.getvalue())))
    if not ok and not errors:
        errors.append("pyx12 returned False without naming an error")
    return errors


def _errors_in(node: Any, where: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        label = node.get("seg_id") or node.get("trn_set_id") or node.get("gs_control_num") or where
        for error in node.get("errors", []):
            yield f"{label}: {error.get('err_cde')} {error.get('err_str')} ({error.get('err_val')!r})"
        for value in node.values():
            if isinstance(value, list | dict):
                yield from _errors_in(value, str(label))
    elif isinstance(node, list):
        for item in node:
            yield from _errors_in(item, where)


def read_back(ack: AckInterchange) -> list[FunctionalAckReport]:
    from translators.x12.envelope import read_events
    from translators.x12.events import SetRead

    return [
        read_functional_ack(e.transaction_set)
        for e in read_events(ack.text.encode())
        if isinstance(e, SetRead)
    ]


# --------------------------------------------------------------------------- outcomes


def header(version: str, *, ack_requested: bool = False) -> InterchangeHeader:
    five = version >= "00402"
    return InterchangeHeader(
        "ZZ", "PARTNER", "ZZ", "OURCOMPANY", "260301", "1200", "^" if five else "U", version, "000000042",
        ack_requested, "P", Delimiters(repetition="^" if five else None), ["ISA"],
    )  # fmt: skip


def group(version: str, functional_id: str, control: str, sets: list[SetOutcome], **kw: Any) -> GroupOutcome:
    gs = GroupHeader(
        functional_id, "PARTNER", "OURCOMPANY", "20260301", "1200", control, "X", version, ["GS"]
    )
    return GroupOutcome(header=gs, sets=sets, **kw)


def clean(set_id: str, control: str) -> SetOutcome:
    return SetOutcome(set_id=set_id, control_number=control)


def broken(set_id: str, control: str) -> SetOutcome:
    return SetOutcome(
        set_id=set_id,
        control_number=control,
        set_errors=[SetSyntaxCode.SEGMENT_COUNT_WRONG],
        segment_errors=[
            SegmentError(
                "BEG", 2, SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
                elements=(
                    ElementError(5, ElementSyntaxCode.INVALID_DATE, reference="373", value="20261399"),
                    ElementError(3, ElementSyntaxCode.TOO_LONG, reference="324", value="P" * 150),
                ),
            ),
            SegmentError(
                "PO1", 7, SegmentSyntaxCode.HAS_ELEMENT_ERRORS, loop_id="PO1",
                elements=(ElementError(7, ElementSyntaxCode.INVALID_CODE, component=None, reference="235", value="QQ"),),
            ),
            SegmentError("ZZZ", 9, SegmentSyntaxCode.UNRECOGNIZED),
            SegmentError("CTT", 11, SegmentSyntaxCode.MANDATORY_MISSING, loop_id="CTT"),
        ],
    )  # fmt: skip


def cases() -> dict[str, InterchangeOutcome]:
    """One interchange per verdict, in 004010 (997) and 005010 (999)."""
    out: dict[str, InterchangeOutcome] = {}
    for isa, gs in (("00401", "004010"), ("00501", "005010")):
        out[f"{gs}-accepted"] = InterchangeOutcome(
            header(isa, ack_requested=True),
            groups=[group(gs, "PO", "17", [clean("850", "0001"), clean("850", "0002")], sets_included=2)],
        )
        out[f"{gs}-rejected"] = InterchangeOutcome(
            header(isa), groups=[group(gs, "SH", "18", [broken("856", "0001")], sets_included=1)]
        )
        out[f"{gs}-partial"] = InterchangeOutcome(
            header(isa),
            groups=[group(gs, "IN", "19", [clean("810", "0001"), broken("810", "0002")], sets_included=2)],
        )
        out[f"{gs}-group-errors"] = InterchangeOutcome(
            header(isa),
            groups=[
                group(
                    gs, "PO", "20", [clean("850", "0001")], sets_included=3,
                    errors=[GroupSyntaxCode.SET_COUNT_WRONG, GroupSyntaxCode.CONTROL_NUMBER_MISMATCH],
                ),
                group(gs, "PO", "21", [], sets_included=0),
            ],
        )  # fmt: skip
    return out


CASES = cases()


def render(outcome: InterchangeOutcome, **kw: Any) -> AckInterchange:
    ack = render_acknowledgments(
        outcome,
        sender=("ZZ", "OURCOMPANY"),
        receiver=("ZZ", "PARTNER"),
        group_sender="OURCOMPANY",
        group_receiver="PARTNER",
        interchange_control=900,
        group_control=50,
        now=NOW,
        **kw,
    )
    assert ack is not None
    return ack


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", sorted(CASES))
def test_pyx12_finds_no_error_in_our_acks(name: str, retail_maps: Path) -> None:
    ack = render(CASES[name])
    kind = "999" if name.startswith("005010") else "997"
    assert f"ST*{kind}*" in ack.text
    assert pyx12_errors(ack.text, retail_maps) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_our_acks_read_back_to_the_verdicts_meant(name: str) -> None:
    outcome = CASES[name]
    reports = read_back(render(outcome))
    assert len(reports) == len(outcome.groups)
    for report, grp in zip(reports, outcome.groups, strict=True):
        assert report.problems == ()
        assert (report.functional_id, report.group_control, report.code) == (
            grp.header.functional_id, grp.header.control_number, grp.ack_code.value,
        )  # fmt: skip
        assert report.group_errors == tuple(e.value for e in grp.errors)
        for sent, back in zip(grp.sets, report.sets, strict=True):
            assert (back.set_id, back.control_number, back.code) == (
                sent.set_id,
                sent.control_number,
                sent.ack_code.value,
            )
            assert [(s.tag, s.position, s.code) for s in back.segment_errors] == [
                (s.tag, s.position, s.code.value) for s in sent.segment_errors
            ]
            expected = "rejected" if grp.errors else {"A": "accepted", "R": "rejected"}[sent.ack_code.value]
            assert report.set_verdict(sent.control_number) == expected


def test_pristine_pyx12_maps_accept_a_health_care_999_and_997() -> None:
    for isa, gs in (("00401", "004010"), ("00501", "005010")):
        outcome = InterchangeOutcome(
            header(isa),
            groups=[group(gs, "HC", "7", [clean("837", "0001"), broken("837", "0002")], sets_included=2)],
        )
        assert pyx12_errors(render(outcome).text) == []


def test_pyx12_does_notice_a_broken_ack(retail_maps: Path) -> None:
    """The validator is live: a wrong AK9 code and a bad AK304 are reported."""
    text = render(CASES["004010-rejected"]).text
    assert pyx12_errors(text.replace("AK9*R*", "AK9*Q*").replace("**8~", "**Z~"), retail_maps)


def test_ta1_with_a_functional_ack_passes_pyx12(retail_maps: Path) -> None:
    accepted = render(CASES["004010-accepted"])  # ISA14 = 1: TA1 A plus the 997
    assert "TA1*000000042*260301*1200*A*000" in accepted.text
    assert pyx12_errors(accepted.text, retail_maps) == []


def test_rejected_interchange_gets_only_a_ta1() -> None:
    outcome = InterchangeOutcome(
        header("00401"),
        notes=[InterchangeNote.INVALID_GROUP_COUNT],
        groups=[group("004010", "PO", "17", [clean("850", "0001")], sets_included=1)],
    )
    ack = render(outcome)
    assert [a.kind for a in ack.acks] == ["TA1"] and ack.group_controls == ()
    assert "TA1*000000042*260301*1200*R*021" in ack.text and "ST*997" not in ack.text


# --------------------------------------------------------------------------- the public corpus

CORPUS_X12 = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "x12"
CORPUS_FILES = sorted(p for p in CORPUS_X12.rglob("*") if p.is_file()) if CORPUS_X12.is_dir() else []
PYX12_ACK_VERSIONS = {"004010", "005010X231A1"}  # pyx12 ships FA maps for these only


class NoPartners:
    def get(self, partner_id: str) -> None:
        return None

    def by_interchange(self, qualifier: str, interchange_id: str) -> None:
        return None


def corpus_outcomes(path: Path) -> list[tuple[InterchangeOutcome, bool]]:
    from translators.engine import TranslatedInterchange, translate

    return [
        (item.outcome, any(s[0] == "TA1" for s in item.interchange_segments))
        for item in translate(path.read_bytes(), partners=NoPartners())
        if isinstance(item, TranslatedInterchange)
    ]


@pytest.mark.skipif(not CORPUS_FILES, reason="shared corpus not present")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=[str(p.relative_to(CORPUS_X12)) for p in CORPUS_FILES])
def test_acks_for_the_corpus_pass_pyx12_and_read_back(path: Path, retail_maps: Path) -> None:
    """Real validation outcomes (the codes our validator gives real files) rendered as
    acks: pyx12 finds nothing wrong, and our reader gets back every verdict.

    pyx12 sees the acks with standard delimiters and a ZZ receiver, because its
    HIPAA control map refuses ISA qualifiers like 12 or 16 and some separators that
    partners legitimately use; the read-back uses the partner's own delimiters."""
    for outcome, replies_to_ta1 in corpus_outcomes(path):
        mirrored = render_acknowledgments(
            outcome,
            sender=("ZZ", "OURCOMPANY"),
            receiver=(outcome.header.sender_qualifier, outcome.header.sender_id),
            group_sender="OURCOMPANY",
            group_receiver="PARTNER",
            interchange_control=1,
            group_control=1,
            now=NOW,
            replies_to_ta1=replies_to_ta1,
        )
        due = [g for g in outcome.groups if g.header.functional_id != "FA"] if outcome.accepted else []
        if mirrored is None:
            assert not due
            continue
        standard = render(outcome, delimiters=Delimiters(), replies_to_ta1=replies_to_ta1)
        versions = {line.split("*")[8] for line in standard.text.split("~\n") if line.startswith("GS*")}
        if versions and versions <= PYX12_ACK_VERSIONS:
            assert pyx12_errors(standard.text, retail_maps) == []
        reports = read_back(mirrored)
        assert [(r.group_control, r.code) for r in reports] == [
            (g.header.control_number.strip(), g.ack_code.value) for g in due
        ]
        for report, grp in zip(reports, due, strict=True):
            assert [s.code for s in report.sets] == [s.ack_code.value for s in grp.sets]
