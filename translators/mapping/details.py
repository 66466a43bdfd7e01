"""X12 ↔ canonical details every mapper shares beyond ``common``: notes (NTE, MSG,
N9 loops), amounts and totals (AMT, CTT), PO4 pack details, PID*F colour and size,
MAN marks. Readers take segments as the envelope reader cut them; writers return
trimmed segments. Nothing here does I/O or raises on bad data (an unreadable value
becomes null).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from translators.canonical.common import trusted
from translators.canonical.details import Amount, Mark, Note, PackDetails, Totals
from translators.mapping.common import decimal_at, int_at, r, seg, text, value
from translators.x12.model import Segment

__all__ = [
    "COLOR_CODES",
    "SIZE_CODES",
    "amount_segment",
    "characteristic",
    "characteristic_segments",
    "man_segments",
    "mark_segment",
    "message_pieces",
    "n9_note",
    "note_segments",
    "notes_of",
    "nte_segment",
    "pack_segment",
    "read_amount",
    "read_mark",
    "read_note",
    "read_pack",
    "read_totals",
    "sscc_and_marks",
    "totals_segments",
]

# PID02 product characteristic codes of a free-form PID that are not the item's
# description: 73 vendor colour, 75 buyer's colour, 74 vendor size, 91 buyer's size.
COLOR_CODES = frozenset({"73", "75"})
SIZE_CODES = frozenset({"74", "91"})
COLOR_CODE, SIZE_CODE = "73", "74"  # written outbound
NOTE_QUALIFIER = "L1"  # N901 written for a note without one: letters or notes
NOTE_REFERENCE = "NOTE"
SSCC_QUALIFIER = "GM"  # MAN01 of a serial shipping container code
MSG_WIDTH = 264  # MSG01 is AN 1/264

new_note = trusted(Note)
new_amount = trusted(Amount)
new_totals = trusted(Totals)
new_pack = trusted(PackDetails)
new_mark = trusted(Mark)


def characteristic(pid: Segment) -> tuple[str | None, str | None]:
    """A free-form PID (PID01 F) → ("color" | "size" | None, its PID05 text)."""
    description = value(pid, 5)
    code = text(pid, 2)
    if code in COLOR_CODES:
        return "color", description
    if code in SIZE_CODES:
        return "size", description
    return None, description


NOTE_TAGS = frozenset({"NTE", "MSG", "MTX"})
# what follows an N9 inside its loop (850/855/810, 004010 and 005010)
N9_MEMBERS = frozenset({"MSG", "MTX", "DTM", "MEA", "PWK", "EFI"})


def message_text(segment: Segment) -> str | None:
    """The text of a MSG (MSG01) or MTX (MTX02)."""
    return value(segment, 2 if segment[0] == "MTX" else 1)


def read_note(segment: Segment) -> Note:
    """NTE (NTE01 qualifier, NTE02 text), MTX (MTX01, MTX02) or a MSG outside an N9
    loop (MSG01)."""
    if segment[0] == "MSG":
        return new_note(qualifier=None, reference=None, text=value(segment, 1))
    return new_note(qualifier=value(segment, 1), reference=None, text=value(segment, 2))


def n9_note(n9: Segment, messages: Iterable[Segment]) -> Note:
    """An N9 loop: N901 qualifier, N902 reference, the MSG01 texts joined by line
    breaks (N903 when there is none)."""
    texts = [t for t in (message_text(m) for m in messages if m[0] in ("MSG", "MTX")) if t]
    return new_note(
        qualifier=value(n9, 1), reference=value(n9, 2), text="\n".join(texts) if texts else value(n9, 3)
    )


def notes_of(segments: Sequence[Segment]) -> list[Note]:
    """The notes among ``segments``: each N9 loop, and each NTE, MTX or MSG outside
    one."""
    notes: list[Note] = []
    index = 0
    while index < len(segments):
        segment = segments[index]
        tag = segment[0]
        index += 1
        if tag == "N9":
            messages: list[Segment] = []
            while index < len(segments) and segments[index][0] in N9_MEMBERS:
                messages.append(segments[index])
                index += 1
            notes.append(n9_note(segment, messages))
        elif tag in NOTE_TAGS:
            notes.append(read_note(segment))
    return notes


def read_amount(segment: Segment) -> Amount:
    """AMT → Amount (AMT02 is R: taken as written)."""
    return new_amount(
        qualifier=text(segment, 1), amount=decimal_at(segment, 2), credit_debit=value(segment, 3)
    )


def read_totals(ctt: Segment | None, amounts: Sequence[Segment], lines: int) -> Totals | None:
    """CTT01/CTT02 and the AMTs given. None when they say nothing the document does
    not already say: no AMT, no CTT02, and no CTT01 or one equal to ``lines`` (the
    number of line loops read; every rendered set carries that count)."""
    line_count = int_at(ctt, 1) if ctt is not None else None
    hash_total = decimal_at(ctt, 2) if ctt is not None else None
    if not amounts and hash_total is None and line_count in (None, lines):
        return None
    return new_totals(
        line_count=line_count, hash_total=hash_total, amounts=tuple(read_amount(a) for a in amounts)
    )


def read_pack(po4: Segment) -> PackDetails:
    """PO4 → PackDetails."""
    return new_pack(
        pack=int_at(po4, 1),
        size=decimal_at(po4, 2),
        size_uom=value(po4, 3),
        packaging_code=value(po4, 4),
        inner_pack=int_at(po4, 14),
    )


def read_mark(man: Segment) -> Mark:
    """MAN → Mark."""
    return new_mark(qualifier=text(man, 1), number=value(man, 2), number_to=value(man, 3))


def sscc_and_marks(segments: Iterable[Segment]) -> tuple[str | None, tuple[Mark, ...]]:
    """The MAN02 of the first MAN*GM among ``segments`` (the SSCC), and every other
    MAN as a Mark."""
    mans = [s for s in segments if s[0] == "MAN"]
    gm = next((s for s in mans if text(s, 1) == SSCC_QUALIFIER), None)
    return (value(gm, 2) if gm else None), tuple(read_mark(s) for s in mans if s is not gm)


# --------------------------------------------------------------------------- writers


def pack_segment(pack: PackDetails) -> Segment | None:
    """PackDetails → PO4 (None when it holds nothing PO4 can carry)."""
    segment = seg(
        "PO4",
        str(pack.pack) if pack.pack is not None else None,
        r(pack.size),
        pack.size_uom if pack.size is not None else None,
        pack.packaging_code,
        *([None] * 9),
        str(pack.inner_pack) if pack.inner_pack is not None else None,
    )
    return segment if len(segment) > 1 else None


def characteristic_segments(color: str | None, size: str | None) -> list[Segment]:
    """PID*F*73 for a colour, PID*F*74 for a size."""
    found = [(COLOR_CODE, color), (SIZE_CODE, size)]
    return [seg("PID", "F", code, None, None, described) for code, described in found if described]


def note_segments(note: Note) -> list[Segment]:
    """Note → an N9 loop: N9 (N901 L1 when the note has no qualifier; N903 "NOTE"
    when it has no reference: N9 needs N902 or N903, and N903 is not read back when
    MSGs follow), then its text as MSGs, one per line, cut at 264 characters."""
    described = None if note.reference else NOTE_REFERENCE
    segments = [seg("N9", note.qualifier or NOTE_QUALIFIER, note.reference, described)]
    segments.extend(["MSG", piece] for piece in message_pieces(note.text or ""))
    return segments


def message_pieces(text: str) -> list[str]:
    """``text`` as MSG01 values: one per line, cut at 264 characters."""
    return [line[i : i + MSG_WIDTH] for line in text.split("\n") for i in range(0, len(line), MSG_WIDTH)]


def nte_segment(note: Note) -> Segment | None:
    """Note → NTE (810): NTE01 qualifier, NTE02 text (None without text)."""
    return seg("NTE", note.qualifier, note.text) if note.text else None


def mark_segment(mark: Mark) -> Segment:
    """Mark → MAN."""
    return seg("MAN", mark.qualifier, mark.number, mark.number_to)


def totals_segments(
    totals: Totals | None, lines: int, amounts: Sequence[Amount] | None = None
) -> list[Segment]:
    """CTT (CTT01 the number of lines written, CTT02 the hash total when given) and
    after it (the CTT loop) the AMTs of ``amounts`` (default: all the totals')."""
    hash_total = totals.hash_total if totals is not None else None
    segments = [seg("CTT", str(lines), r(hash_total))]
    if amounts is None:
        amounts = totals.amounts if totals is not None else ()
    segments.extend(amount_segment(a) for a in amounts)
    return segments


def amount_segment(amount: Amount) -> Segment:
    """Amount → AMT."""
    return seg("AMT", amount.qualifier, r(amount.amount), amount.credit_debit)


def man_segments(sscc: str | None, marks: Sequence[Mark] = ()) -> list[Segment]:
    """MAN*GM for an SSCC, then a MAN per mark."""
    found = [["MAN", SSCC_QUALIFIER, sscc]] if sscc is not None else []
    return found + [mark_segment(mark) for mark in marks]
