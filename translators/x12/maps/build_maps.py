"""Write the pyx12-format XML grammar maps from the authoring sources next to this file.

Usage: ``python3 -m translators.x12.maps.build_maps`` (rewrites ``*.xml`` here).

The XML files are the grammars the engine loads; this script and the two
``source_*.py`` files are only how they are authored, so that a segment's element
list is written once and shared by every set that uses it. Each map is a complete
pyx12 map (ISA_LOOP > GS_LOOP > ST_LOOP) so pyx12 itself can load it and so
``map.xsd`` validates it. Never imported by the engine.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from translators.x12.maps import source_dictionary as dic
from translators.x12.maps import source_structures as st

HERE = Path(__file__).resolve().parent

USAGE = {"M": "R", "O": "S", "X": "S"}


class Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text)

    def leaf(self, depth: int, tag: str, value: str) -> None:
        self.add(depth, f"<{tag}>{escape(value)}</{tag}>")


def _repeat(value: str) -> str:
    return escape(value)


class MapBuilder:
    """Renders one set/version. Tracks which data elements it used."""

    def __init__(self, set_id: str, version: str) -> None:
        self.set_id = set_id
        self.version = version
        self.v5 = version.startswith("005")
        self.used: set[str] = set()
        self.w = Writer()
        self.codes = dic.CODES_5010 if self.v5 else dic.CODES_4010

    def segment_def(self, tag: str) -> tuple[str, list[str] | None, list[str]]:
        if self.v5 and tag in dic.SEGMENTS_5010:
            return dic.SEGMENTS_5010[tag]
        if tag in dic.SEGMENTS:
            return dic.SEGMENTS[tag]
        if tag in dic.STRUCTURE_ONLY:
            return (dic.STRUCTURE_ONLY[tag], None, [])
        raise KeyError(f"segment {tag} is not in the dictionary")

    def composite_def(self, cid: str) -> tuple[str, list[tuple[str, str]]]:
        if self.v5 and cid in dic.COMPOSITES_5010:
            return dic.COMPOSITES_5010[cid]
        return dic.COMPOSITES[cid]

    def element_name(self, num: str) -> str:
        table = dic.ELEMENTS_5010 if self.v5 and num in dic.ELEMENTS_5010 else dic.ELEMENTS
        if num not in table:
            raise KeyError(f"data element {num} is not in the dictionary")
        self.used.add(num)
        return table[num][3]

    def segment(self, depth: int, tag: str, req: str, pos: int, max_use: str) -> None:
        name, elements, syntax = self.segment_def(tag)
        w = self.w
        w.add(depth, f'<segment xid="{tag}">')
        w.leaf(depth + 1, "name", name)
        w.leaf(depth + 1, "usage", USAGE[req])
        w.leaf(depth + 1, "pos", f"{pos:03d}")
        w.leaf(depth + 1, "max_use", max_use)
        for rule in syntax:
            w.leaf(depth + 1, "syntax", rule)
        for seq, spec in enumerate(elements or [], 1):
            ref, ereq, *repeat = spec.split()
            if ref.startswith("C") and ref[1:].isdigit():
                cname, comps = self.composite_def(ref)
                w.add(depth + 1, "<composite>")
                w.leaf(depth + 2, "data_ele", ref)
                w.leaf(depth + 2, "name", cname)
                w.leaf(depth + 2, "usage", USAGE[ereq])
                w.leaf(depth + 2, "seq", f"{seq:02d}")
                if repeat:
                    w.leaf(depth + 2, "repeat", repeat[0])
                for cseq, (cref, creq) in enumerate(comps, 1):
                    self.element(depth + 2, f"{tag}{seq:02d}-{cseq:02d}", cref, creq, cseq, None)
                w.add(depth + 1, "</composite>")
            else:
                codes = self.codes.get((tag, seq))
                if tag == "ST" and seq == 1 and self.set_id:
                    codes = [self.set_id]
                self.element(
                    depth + 1, f"{tag}{seq:02d}", ref, ereq, seq, codes, repeat[0] if repeat else None
                )
        w.add(depth, "</segment>")

    def element(
        self,
        depth: int,
        xid: str,
        ref: str,
        req: str,
        seq: int,
        codes: list[str] | None,
        repeat: str | None = None,
    ) -> None:
        w = self.w
        w.add(depth, f'<element xid="{xid}">')
        w.leaf(depth + 1, "data_ele", ref)
        w.leaf(depth + 1, "name", self.element_name(ref))
        w.leaf(depth + 1, "usage", USAGE[req])
        w.leaf(depth + 1, "seq", f"{seq:02d}")
        if repeat:
            w.leaf(depth + 1, "repeat", repeat)
        if codes:
            w.add(depth + 1, "<valid_codes>")
            for code in codes:
                w.leaf(depth + 2, "code", code)
            w.add(depth + 1, "</valid_codes>")
        w.add(depth, "</element>")

    def body(self, text: str, depth: int) -> None:
        """Render the indented structure text as segments and loops."""
        rows = [(len(line) - len(line.lstrip()), line.split()) for line in text.splitlines() if line.strip()]
        self._render(rows, 0, len(rows), depth, 0)

    def _render(
        self, rows: list[tuple[int, list[str]]], start: int, end: int, depth: int, indent: int
    ) -> None:
        i = start
        pos = 0
        while i < end:
            ind, parts = rows[i]
            if ind != indent:
                raise ValueError(f"bad indentation at {parts}")
            pos += 10
            if parts[0] == "LOOP":
                j = i + 1
                while j < end and rows[j][0] > indent:
                    j += 1
                _, loop_id, repeat = parts
                trigger_req = rows[i + 1][1][1]
                self.w.add(depth, f'<loop xid="{loop_id}" type="explicit">')
                self.w.leaf(depth + 1, "name", f"{loop_id} loop")
                self.w.leaf(depth + 1, "usage", USAGE[trigger_req])
                self.w.leaf(depth + 1, "pos", f"{pos:03d}")
                self.w.add(depth + 1, f"<repeat>{_repeat(repeat)}</repeat>")
                self._render(rows, i + 1, j, depth + 1, indent + 2)
                self.w.add(depth, "</loop>")
                i = j
            else:
                tag, req, max_use = parts
                self.segment(depth, tag, req, pos, max_use)
                i += 1

    def build(self, name: str, functional_id: str, structure: str) -> str:
        w = self.w
        w.add(0, '<?xml version="1.0" encoding="utf-8"?>')
        w.add(0, "<!-- Generated by build_maps.py from source_dictionary.py and source_structures.py. -->")
        w.add(0, f'<transaction xid="{self.set_id}">')
        w.leaf(1, "name", f"{name} ({self.version})")
        w.add(1, '<loop xid="ISA_LOOP" type="explicit">')
        for tag, text in (("name", "Interchange Control Header"), ("usage", "R"), ("pos", "001")):
            w.leaf(2, tag, text)
        w.add(2, "<repeat>&gt;1</repeat>")
        self.segment(2, "ISA", "M", 10, "1")
        w.add(2, '<loop xid="GS_LOOP" type="explicit">')
        for tag, text in (("name", "Functional Group Header"), ("usage", "R"), ("pos", "020")):
            w.leaf(3, tag, text)
        w.add(3, "<repeat>&gt;1</repeat>")
        self.segment(3, "GS", "M", 10, "1")
        w.add(3, '<loop xid="ST_LOOP" type="explicit">')
        for tag, text in (("name", f"{name} {functional_id}"), ("usage", "R"), ("pos", "020")):
            w.leaf(4, tag, text)
        w.add(4, "<repeat>&gt;1</repeat>")
        self.body(structure, 4)
        w.add(3, "</loop>")
        self.segment(3, "GE", "M", 30, "1")
        w.add(2, "</loop>")
        self.segment(2, "IEA", "M", 30, "1")
        w.add(1, "</loop>")
        w.add(0, "</transaction>")
        return "\n".join(w.lines) + "\n"


def dataele_xml(used: set[str], table: dict[str, tuple[str, int, int, str]], note: str) -> str:
    def key(num: str) -> tuple[int, str]:
        digits = "".join(c for c in num if c.isdigit())
        return (int(digits) if digits else 0, num)

    lines = ['<?xml version="1.0" encoding="utf-8"?>', f"<!-- {note} -->", "<data_elements>"]
    for num in sorted(used, key=key):
        if num not in table:
            continue
        dtype, lo, hi, name = table[num]
        lines.append(
            f'  <data_ele ele_num="{num}" data_type="{dtype}" min_len="{lo}" max_len="{hi}" name="{escape(name)}"/>'
        )
    lines.append("</data_elements>")
    return "\n".join(lines) + "\n"


def main() -> None:
    used: set[str] = set()
    for (set_id, version), (name, fid, structure) in sorted(st.STRUCTURES.items()):
        builder = MapBuilder(set_id, version)
        (HERE / f"{set_id}.{version}.xml").write_text(builder.build(name, fid, structure), encoding="utf-8")
        used |= builder.used
    (HERE / "dataele.xml").write_text(
        dataele_xml(
            used, dic.ELEMENTS, "Data element dictionary (004010 lengths), pyx12 dataele.xml format."
        ),
        encoding="utf-8",
    )
    (HERE / "dataele.005010.xml").write_text(
        dataele_xml(
            used,
            dic.ELEMENTS_5010,
            "005010 overrides of dataele.xml: only elements whose type or length changed.",
        ),
        encoding="utf-8",
    )
    unused = sorted(set(dic.ELEMENTS) - used)
    if unused:
        print("dictionary entries no map uses:", " ".join(unused))


if __name__ == "__main__":
    main()
