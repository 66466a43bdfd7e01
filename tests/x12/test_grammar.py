"""The grammar maps and their loader: maps are valid pyx12 maps, match their
authoring sources, load for the right versions, and expose the loop structure."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import pyx12
from lxml import etree

from translators.x12.grammar import LoopRule, grammar_version, load_grammar
from translators.x12.maps import source_structures
from translators.x12.maps.build_maps import MapBuilder
from translators.x12.valuechecks import valid_date, valid_time

MAPS = Path(str(resources.files("translators.x12").joinpath("maps")))
SHIPPED = sorted(source_structures.STRUCTURES)


@pytest.mark.parametrize(("set_id", "version"), SHIPPED)
def test_every_map_is_valid_against_pyx12_schema(set_id: str, version: str) -> None:
    schema = etree.XMLSchema(etree.parse(str(Path(pyx12.__file__).parent / "map" / "map.xsd")))
    doc = etree.parse(str(MAPS / f"{set_id}.{version}.xml"))
    assert schema.validate(doc), schema.error_log.last_error


@pytest.mark.parametrize(("set_id", "version"), SHIPPED)
def test_maps_are_regenerated_from_their_sources(set_id: str, version: str) -> None:
    name, fid, structure = source_structures.STRUCTURES[(set_id, version)]
    expected = MapBuilder(set_id, version).build(name, fid, structure)
    assert (MAPS / f"{set_id}.{version}.xml").read_text(encoding="utf-8") == expected, (
        "run python3 -m translators.x12.maps.build_maps and commit the XML"
    )


@pytest.mark.parametrize(
    ("set_id", "version", "expected"),
    [
        ("850", "004010", "004010"),
        ("850", "004010VICS", "004010"),
        ("850", "00401", "004010"),
        ("856", "004060", "004010"),
        ("810", "004030", "004010"),
        ("855", "005010", "005010"),
        ("999", "005010X231A1", "005010"),
        ("997", "005010X230", "005010"),
        ("850", "003050", None),
        ("850", "002040", None),
        ("850", "006020", None),
        ("999", "004010", None),  # the 999 only exists from 005010 on
        ("940", "004010", None),
        ("850", "T", None),
        ("850", "", None),
    ],
)
def test_grammar_version_choice(set_id: str, version: str, expected: str | None) -> None:
    assert grammar_version(set_id, version) == expected
    grammar = load_grammar(set_id, version)
    assert (grammar.version if grammar else None) == expected


def test_load_grammar_is_cached_per_map() -> None:
    assert load_grammar("850", "004010") is load_grammar("850", "004010VICS")
    assert load_grammar("850", "004010") is not load_grammar("850", "005010")


def _loop(root: LoopRule, *path: str) -> LoopRule:
    node = root
    for loop_id in path:
        node = next(c for c in node.children if isinstance(c, LoopRule) and c.loop_id == loop_id)
    return node


def test_850_structure_follows_the_standard() -> None:
    grammar = load_grammar("850", "004010")
    assert grammar is not None
    root = grammar.root
    heading = [c.trigger for c in root.children][:12]
    assert heading == ["ST", "BEG", "CUR", "REF", "PER", "TAX", "FOB", "CTP", "PAM", "CSH", "TC2", "SAC"]
    po1 = _loop(root, "PO1")
    assert po1.mandatory and po1.repeat == 100000
    assert _loop(root, "N1").repeat == 200
    sln = _loop(root, "PO1", "SLN")
    assert sln.repeat == 1000 and [c.trigger for c in sln.children][:3] == ["SLN", "MSG", "SI"]
    assert [c.trigger for c in root.children][-2:] == ["CTT", "SE"]
    beg = grammar.segments["BEG"][0]
    assert beg.max_use == 1 and beg.mandatory
    assert [e.reference for e in beg.elements or ()][:5] == ["353", "92", "324", "328", "373"]


def test_5010_differs_where_the_standard_does() -> None:
    g4 = load_grammar("850", "004010")
    g5 = load_grammar("850", "005010")
    assert g4 is not None and g5 is not None
    assert "MSG" in g4.tags and "MSG" not in g5.tags and "MTX" in g5.tags
    assert len(g5.segments["ST"][0].elements or ()) == 3
    ref4 = next(e for e in g4.segments["REF"][0].elements or () if e.position == 2)
    ref5 = next(e for e in g5.segments["REF"][0].elements or () if e.position == 2)
    assert (ref4.max_length, ref5.max_length) == (30, 50)  # type: ignore[union-attr]


def test_walk_yields_loop_paths() -> None:
    grammar = load_grammar("850", "004010")
    assert grammar is not None
    segments = [
        ["ST", "850", "0001"],
        ["BEG", "00", "SA", "PO1", "", "20240101"],
        ["N1", "ST", "STORE"],
        ["N3", "1 MAIN ST"],
        ["PO1", "1", "1", "EA", "1", "", "VP", "X"],
        ["PID", "F", "", "", "", "THING"],
        ["SLN", "1", "", "I", "1", "EA"],
        ["PO1", "2", "1", "EA", "1", "", "VP", "Y"],
        ["CTT", "2"],
        ["AMT", "TT", "2"],
        ["SE", "11", "0001"],
    ]
    paths = [(path, seg[0]) for path, seg in grammar.walk(segments)]
    assert paths == [
        ((), "ST"),
        ((), "BEG"),
        (("N1",), "N1"),
        (("N1",), "N3"),
        (("PO1",), "PO1"),
        (("PO1", "PID"), "PID"),
        (("PO1", "SLN"), "SLN"),
        (("PO1",), "PO1"),
        (("CTT",), "CTT"),
        (("CTT",), "AMT"),
        ((), "SE"),
    ]


def test_walk_keeps_going_past_unknown_segments() -> None:
    grammar = load_grammar("856", "004010")
    assert grammar is not None
    segments = [
        ["ST", "856", "1"],
        ["BSN", "00", "S1", "20240101", "1200"],
        ["ZZZ"],
        ["HL", "1", "", "S"],
        ["SE", "5", "1"],
    ]
    assert [p for p, _ in grammar.walk(segments)] == [(), (), (), ("HL",), ()]


@pytest.mark.parametrize(
    ("value", "short", "ok"),
    [
        ("20240229", False, True),
        ("20230229", False, False),
        ("21000229", False, False),
        ("20000229", False, True),
        ("20241301", False, False),
        ("20240431", False, False),
        ("240101", False, False),
        ("240101", True, True),
        ("2024-01-01", False, False),
        ("\uff12\uff10\uff12\uff14\uff10\uff11\uff10\uff11", False, False),  # full-width digits
    ],
)
def test_dates(value: str, short: bool, ok: bool) -> None:
    assert valid_date(value, short) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1200", True),
        ("2359", True),
        ("2400", False),
        ("1260", False),
        ("120059", True),
        ("120060", False),
        ("12005912", True),
        ("12", False),
        ("12a0", False),
    ],
)
def test_times(value: str, ok: bool) -> None:
    assert valid_time(value) is ok
