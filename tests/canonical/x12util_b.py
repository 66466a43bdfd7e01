"""A small X12 splitter for engineer B's mapping tests: text in, TransactionSets out.

It exists only until translators.x12.envelope.read_events is available; when that
module imports, :func:`read_sets` uses it instead so tests exercise the real reader.
It never validates anything: it finds the delimiters in the ISA, splits segments and
groups ST..SE with their envelopes.
"""

from __future__ import annotations

from pathlib import Path

from translators.x12.events import SetRead
from translators.x12.model import Delimiters, GroupHeader, InterchangeHeader, Segment, TransactionSet


def read_sets(source: str | bytes | Path) -> list[TransactionSet]:
    """Every transaction set in ``source`` (a path, X12 bytes or X12 text)."""
    if isinstance(source, Path):
        source = source.read_bytes()
    if isinstance(source, str):
        source = source.encode("utf-8")
    try:
        from translators.x12.envelope import read_events
    except ImportError:
        return _split(source.decode("utf-8-sig", errors="replace"))
    return [e.transaction_set for e in read_events(source) if isinstance(e, SetRead)]


def _split(text: str) -> list[TransactionSet]:
    start = text.find("ISA")
    text = text[start:]
    sep = text[3]
    pos = 3
    for _ in range(16):  # ISA16 follows the 16th element separator
        pos = text.index(sep, pos) + 1
    component = text[pos]
    terminator = text[pos + 1]
    if terminator in "\r\n":
        terminator = "\n"
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    delimiters = Delimiters(element=sep, component=component, repetition=None, segment=terminator)
    segments = [s.strip() for s in text.split(terminator)]
    interchange: InterchangeHeader | None = None
    group: GroupHeader | None = None
    current: list[Segment] | None = None
    sets: list[TransactionSet] = []
    for raw in segments:
        if not raw:
            continue
        seg = raw.split(sep)
        tag = seg[0]
        if tag == "ISA":
            seg = [seg[0], *seg[1:16], component]
            interchange = InterchangeHeader(
                sender_qualifier=seg[5].strip(),
                sender_id=seg[6].strip(),
                receiver_qualifier=seg[7].strip(),
                receiver_id=seg[8].strip(),
                date=seg[9],
                time=seg[10],
                standards_id=seg[11],
                version=seg[12],
                control_number=seg[13],
                ack_requested=seg[14] == "1",
                usage=seg[15],
                delimiters=delimiters,
                segment=seg,
            )
        elif tag == "GS":
            seg += [""] * (9 - len(seg))
            group = GroupHeader(
                functional_id=seg[1],
                sender_id=seg[2],
                receiver_id=seg[3],
                date=seg[4],
                time=seg[5],
                control_number=seg[6],
                agency=seg[7],
                version=seg[8],
                segment=seg,
            )
        elif tag == "ST":
            current = [seg]
        elif current is not None:
            current.append(seg)
            if tag == "SE":
                assert interchange is not None
                sets.append(
                    TransactionSet(
                        set_id=current[0][1],
                        control_number=current[0][2],
                        implementation_reference=None,
                        segments=current,
                        interchange=interchange,
                        group=group,
                    )
                )
                current = None
    return sets


ISA = (
    "ISA*00*          *00*          *ZZ*GATEWAYTEST    *ZZ*PARTNERTEST    "
    "*240102*1200*U*00401*000000001*0*P*>~\n"
)


def interchange_text(sets: list[list[Segment]], functional_id: str) -> str:
    """An ISA/GS envelope around rendered ST..SE sets, written with the default
    delimiters (``*``, ``>``, ``~`` plus newline)."""
    lines = [ISA, f"GS*{functional_id}*GATEWAYTEST*PARTNERTEST*20240102*1200*1*X*004010~\n"]
    for segments in sets:
        lines.extend("*".join(segment) + "~\n" for segment in segments)
    lines.append(f"GE*{len(sets)}*1~\nIEA*1*000000001~\n")
    return "".join(lines)


def golden(path: Path, actual: str, regen: bool) -> None:
    """Compare ``actual`` with the golden file, or rewrite it under --regen-golden."""
    if regen:
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"golden file {path} missing: run pytest --regen-golden"
    assert actual == path.read_text(encoding="utf-8")
