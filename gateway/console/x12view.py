"""Raw X12 for people: one segment per line, and which segments a 997/999 points at.

Pure: text in, values out. The delimiters come from the ISA (element separator at
position 3, segment terminator at 105); anything that is not an ISA is split on
``~`` and newlines. A functional acknowledgment points at a segment with AK2/IK2
(the set: id and control number) and AK3/IK3 (segment id and its position counted
from ST = 1); :func:`pointed_segments` turns those into line numbers of the raw file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Segment:
    number: int  # 1-based line in the raw file
    text: str
    highlighted: bool = False
    note: str = ""


def delimiters(text: str) -> tuple[str, str]:
    """(element separator, segment terminator)."""
    stripped = text.lstrip()
    if stripped.startswith("ISA") and len(stripped) >= 106:
        return stripped[3], stripped[105]
    return "*", "~"


def split_segments(text: str) -> list[str]:
    _, terminator = delimiters(text)
    parts = text.split(terminator)
    return [p.strip("\r\n ") for p in parts if p.strip("\r\n ")]


def ack_pointers(ack_text: str) -> list[tuple[str, str, str, int, str]]:
    """(set id, set control, segment id, position, error code) of each AK3/IK3 in a
    997/999, under the AK2/IK2 it belongs to."""
    element, _ = delimiters(ack_text)
    out: list[tuple[str, str, str, int, str]] = []
    current: tuple[str, str] | None = None
    for segment in split_segments(ack_text):
        fields = segment.split(element)
        tag = fields[0]
        if tag in ("AK2", "IK2") and len(fields) >= 3:
            current = (fields[1], fields[2])
        elif tag in ("AK3", "IK3") and current is not None and len(fields) >= 3:
            try:
                position = int(fields[2])
            except ValueError:
                continue
            code = fields[4] if len(fields) > 4 else ""
            out.append((current[0], current[1], fields[1], position, code))
        elif tag in ("AK5", "IK5", "SE"):
            current = None if tag == "SE" else current
    return out


def pointed_segments(raw_text: str, acks: list[str]) -> dict[int, str]:
    """Line number (1-based, as :func:`segments` numbers them) -> note, for each
    segment an acknowledgment points at."""
    element, _ = delimiters(raw_text)
    lines = split_segments(raw_text)
    starts: dict[tuple[str, str], int] = {}
    for index, segment in enumerate(lines):
        fields = segment.split(element)
        if fields[0] == "ST" and len(fields) >= 3:
            starts[(fields[1], fields[2])] = index
    found: dict[int, str] = {}
    for ack in acks:
        for set_id, control, segment_id, position, code in ack_pointers(ack):
            start = starts.get((set_id, control))
            if start is None:
                continue
            index = start + position - 1
            if 0 <= index < len(lines) and lines[index].split(element)[0] == segment_id:
                found[index + 1] = f"{segment_id} at position {position}: error {code}".strip()
    return found


def segments(
    raw_text: str, acks: list[str], *, first: int = 1, count: int = 500
) -> tuple[list[Segment], int]:
    """Lines ``first`` .. ``first + count - 1`` of the raw file and the total number
    of segments; pointed-at segments are marked."""
    lines = split_segments(raw_text)
    marks = pointed_segments(raw_text, acks) if acks else {}
    shown = [
        Segment(n, lines[n - 1], n in marks, marks.get(n, ""))
        for n in range(max(1, first), min(len(lines), first + count - 1) + 1)
    ]
    return shown, len(lines)
