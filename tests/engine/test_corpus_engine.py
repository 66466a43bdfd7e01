"""Walks every public X12 sample through the whole engine and the ack builder.

Valid files translate; broken ones get acknowledgment codes; nothing raises but the
engine's own documented NotX12Error. The samples are read in place.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from translators.canonical import Order, OrderAck
from translators.engine import TranslatedInterchange, TranslatedSet, translate
from translators.profile import PartnerProfile
from translators.x12.acks import render_acknowledgments
from translators.x12.envelope import read_events
from translators.x12.errors import NotX12Error
from translators.x12.events import SetRead

CORPUS_X12 = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "x12"
FILES = sorted(p for p in CORPUS_X12.rglob("*") if p.is_file()) if CORPUS_X12.is_dir() else []
NOW = datetime(2026, 1, 2, 3, 4, 5)


class AnyPartner:
    """Accepts every sender as one generic partner, so every set gets mapped."""

    def __init__(self) -> None:
        self.profile = PartnerProfile.model_validate(
            {
                "id": "corpus",
                "name": "Corpus sender",
                "x12": {
                    "interchange_qualifier": "ZZ",
                    "interchange_id": "CORPUS",
                    "group_id": "CORPUS",
                    "version": "004010",
                },
            }
        )

    def get(self, partner_id: str) -> PartnerProfile | None:
        return self.profile if partner_id == "corpus" else None

    def by_interchange(self, qualifier: str, interchange_id: str) -> PartnerProfile | None:
        return self.profile


def run(
    path: Path, *, reject_duplicates: bool = True
) -> tuple[list[TranslatedSet], list[TranslatedInterchange]]:
    """As ``gateway translate`` runs by default: a repeated interchange is rejected (025)."""
    sets: list[TranslatedSet] = []
    interchanges: list[TranslatedInterchange] = []
    with path.open("rb") as stream:
        for item in translate(stream, partners=AnyPartner(), reject_duplicates=reject_duplicates):
            (sets if isinstance(item, TranslatedSet) else interchanges).append(item)
    return sets, interchanges


@pytest.mark.skipif(not FILES, reason="shared corpus not present")
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS_X12)) for p in FILES])
def test_every_corpus_file_translates_or_is_acknowledged(path: Path) -> None:
    try:
        sets, interchanges = run(path)
    except NotX12Error:
        pytest.fail(f"{path.name}: every corpus file holds at least one ISA")
    assert interchanges, "each file yields at least one interchange outcome"
    # The engine yields one TranslatedSet per set read, in order.
    read = [e.transaction_set for e in read_events(path.read_bytes()) if isinstance(e, SetRead)]
    assert [t.control_number for t in read] == [s.outcome.control_number for s in sets]
    for item, tset in zip(sets, read, strict=True):
        if item.accepted and item.outcome.set_id in {"850", "855", "856", "810"}:
            assert item.document is not None
            assert item.document.envelope.set_control == item.outcome.control_number
            if isinstance(item.document.document, Order | OrderAck):
                # Every PO1 loop becomes a line: nothing (e.g. an AMT) may end the lines early.
                po1_count = sum(1 for segment in tset.segments if segment and segment[0] == "PO1")
                assert len(item.document.document.lines) == po1_count, f"set {tset.control_number}"
        if not item.accepted:
            assert item.reason, "a rejected set always says why"
    for ix in interchanges:
        ack = render_acknowledgments(
            ix.outcome,
            functional_ack="auto",
            ta1="on-error",
            sender=("ZZ", "OURCOMPANY"),
            receiver=(ix.outcome.header.sender_qualifier, ix.outcome.header.sender_id),
            group_sender="OURCOMPANY",
            group_receiver="PARTNER",
            interchange_control=1,
            group_control=1,
            now=NOW,
        )
        if ix.outcome.notes:
            assert ack is not None and "TA1" in ack.text


def corpus_file(name: str) -> Path:
    matches = [p for p in FILES if p.name == name]
    if not matches:
        pytest.skip(f"{name} not in corpus")
    return matches[0]


def test_sdq_department_store_orders_translate_with_allocations() -> None:
    sets, _ = run(corpus_file("bots_850_4010VICS_dept_store_SDQ_control_char_delims.edi"))
    orders = [s.document for s in sets if s.document is not None]
    assert len(orders) == 4
    allocations = [a for o in orders for line in o.document.lines for a in line.allocations]
    assert allocations, "SDQ store distribution becomes line allocations"


def test_three_interchanges_with_their_own_envelopes() -> None:
    sets, interchanges = run(corpus_file("bots_850_4010_dept_store_three_interchanges_crlf.edi"))
    assert len(interchanges) == 3
    assert all(ix.outcome.accepted for ix in interchanges)
    assert len({s.interchange.control_number for s in sets}) == 3


def test_control_number_mismatches_are_coded() -> None:
    _sets, interchanges = run(corpus_file("edieng_940_control_numbers_mismatch.edi"))
    (ix,) = interchanges
    assert "001" in {n.value for n in ix.outcome.notes}
    (group,) = ix.outcome.groups
    assert "4" in {e.value for e in group.errors}
    assert "3" in {e.value for s in group.sets for e in s.set_errors}


# Files holding an interchange that repeats the sender and ISA13 of an earlier one:
# index (in file order) of each interchange that gets TA1 note 025.
DUPLICATE_INTERCHANGES = {
    "nodex12_850_two_interchanges_duplicate_ctrl.edi": [1],
    "edweave_810_three_isa_missing_iea_corrupt_isa_pipe.edi": [2],  # the third repeats the first
}


@pytest.mark.parametrize("name", sorted(DUPLICATE_INTERCHANGES))
def test_repeated_interchange_is_rejected_025(name: str) -> None:
    path = corpus_file(name)
    sets, interchanges = run(path)
    duplicates = [i for i, ix in enumerate(interchanges) if "025" in {n.value for n in ix.outcome.notes}]
    assert duplicates == DUPLICATE_INTERCHANGES[name]
    for i in duplicates:
        ix = interchanges[i]
        header = ix.outcome.header
        mine = [s for s in sets if s.interchange is header]
        assert mine and all(ix.rejection_of(s) for s in mine), "nothing of a duplicate interchange is used"
    first = interchanges[0]
    if not first.outcome.notes:  # the original is used as usual
        assert all(first.rejection_of(s) is None for s in sets if s.interchange is first.outcome.header)
    _sets, allowed = run(path, reject_duplicates=False)
    assert not any("025" in {n.value for n in ix.outcome.notes} for ix in allowed)


def test_no_other_corpus_file_has_a_duplicate_interchange() -> None:
    for path in FILES:
        if path.name in DUPLICATE_INTERCHANGES:
            continue
        try:
            _sets, interchanges = run(path)
        except NotX12Error:
            continue
        assert not any("025" in {n.value for n in ix.outcome.notes} for ix in interchanges), path.name
