"""Test helper: X12 text or bytes → TransactionSets.

Uses the real envelope reader (translators.x12.envelope.read_events) when it is
importable; until then a minimal splitter stands in: delimiters from the ISA,
segments split on the terminator, ST..SE grouped with their ISA/GS. It validates
nothing and is only for tests.
"""

from __future__ import annotations

from pathlib import Path

from translators.x12.model import Delimiters, GroupHeader, InterchangeHeader, Segment, TransactionSet


def read_sets(source: str | bytes | Path) -> list[TransactionSet]:
    """Every transaction set in ``source`` (a path, bytes or text)."""
    data = source.read_bytes() if isinstance(source, Path) else source
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        from translators.x12.envelope import read_events  # type: ignore[import-not-found,unused-ignore]

        from translators.x12.events import SetRead
    except ImportError:
        return _split(raw.decode("utf-8-sig", errors="replace"))
    return [event.transaction_set for event in read_events(raw) if isinstance(event, SetRead)]


def _split(text: str) -> list[TransactionSet]:
    text = text[text.index("ISA") :]
    element = text[3]
    position = 3
    for _ in range(16):
        position = text.index(element, position) + 1
    component, terminator = text[position], text[position + 1]
    if terminator in "\r\n":
        text, terminator = text.replace("\r\n", "\n").replace("\r", "\n"), "\n"
    delimiters = Delimiters(element=element, component=component, repetition=None, segment=terminator)
    interchange: InterchangeHeader | None = None
    group: GroupHeader | None = None
    current: list[Segment] = []
    sets: list[TransactionSet] = []
    for chunk in text.split(terminator):
        chunk = chunk.strip("\r\n")
        if not chunk.strip():
            continue
        segment = chunk.lstrip().split(element)
        tag = segment[0]
        if tag == "ISA":
            e = [*segment[:16], component]
            interchange = InterchangeHeader(
                sender_qualifier=e[5], sender_id=e[6], receiver_qualifier=e[7], receiver_id=e[8],
                date=e[9], time=e[10], standards_id=e[11], version=e[12], control_number=e[13],
                ack_requested=e[14] == "1", usage=e[15], delimiters=delimiters, segment=e,
            )
        elif tag == "GS":
            g = segment + [""] * (9 - len(segment))
            group = GroupHeader(
                functional_id=g[1], sender_id=g[2], receiver_id=g[3], date=g[4], time=g[5],
                control_number=g[6], agency=g[7], version=g[8], segment=g,
            )
        elif tag == "ST":
            current = [segment]
        elif current:
            current.append(segment)
            if tag == "SE" and interchange is not None:
                sets.append(
                    TransactionSet(
                        set_id=current[0][1], control_number=current[0][2], implementation_reference=None,
                        segments=current, interchange=interchange, group=group, position=len(sets) + 1,
                    )
                )
                current = []
    return sets


def interchange_text(sets: list[list[Segment]], *, functional_id: str, version: str = "004010") -> str:
    """Wrap rendered ST..SE sets in a minimal ISA/GS envelope, '*' '~' '>' delimiters.

    Only for tests, until the envelope writer (translators.x12.writer) is used instead.
    """
    isa = [
        "ISA", "00", " " * 10, "00", " " * 10, "ZZ", "GATEWAYTEST".ljust(15), "ZZ", "PARTNER".ljust(15),
        "240315", "1402", "U", "00401", "000000909", "0", "P", ">",
    ]
    segments: list[Segment] = [isa, ["GS", functional_id, "GATEWAYTEST", "PARTNER", "20240315", "1402", "9", "X", version]]
    for tset in sets:
        segments.extend(tset)
    segments += [["GE", str(len(sets)), "9"], ["IEA", "1", "000000909"]]
    return "".join("*".join(segment) + "~\n" for segment in segments)
