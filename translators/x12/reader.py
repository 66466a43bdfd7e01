"""Low-level X12 reading: bytes in, decoded text, ISA headers and segments out.

This module turns a byte stream into a stream of *tokens* for the envelope checker
(:mod:`translators.x12.envelope`): an :class:`IsaFound` for each interchange header,
an :class:`Envelope` for each envelope segment (GS, ST, SE, GE, IEA) and a
:class:`Body` for each run of ordinary segments between them, plus ``Stray`` for
text outside any interchange. Delimiters are re-detected at every ISA.

Speed is the point of the design: text is decoded in big chunks, envelope segments
are located with one regular-expression scan per 8 KB piece, and the runs between them
are cut with ``str.split`` and sliced, so that ordinary segments cost no per-segment Python code
beyond splitting them into elements.

It must never judge envelope structure (that is the envelope module's job), never
read the whole input at once, and never do I/O beyond the file-like object handed in.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from translators.x12.codes import InterchangeNote
from translators.x12.errors import NotX12Error
from translators.x12.events import Stray
from translators.x12.model import Delimiters, InterchangeHeader, Segment

# Characters skipped between interchanges and at the start of segments.
_BLANKS: Final = " \t\r\n\x0b\x0c\x00\x1a\ufeff"
_NEWLINES: Final = "\r\n"
# A separator may be a control character (some partners use 0x1D, 0x15, 0x7F), but
# never a letter, a digit or ordinary white space.
_BAD_SEPARATORS: Final = " \t\r\n\x0b\x0c"
# An ISA is 106 characters; wrapped or NBSP-padded ones need a little more room.
_ISA_WINDOW: Final = 512
# Where the element separators sit in a well-formed 106-character ISA (after the tag).
_ISA_FIXED_SEPARATORS: Final = (6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
# Text before the first ISA, or between interchanges, is held back at most this long.
STRAY_LIMIT: Final = 1 << 20
# A segment longer than this is cut, so a missing terminator cannot make the reader
# hold the whole input.
MAX_SEGMENT: Final = 8 << 20
_PIECE: Final = 1 << 13

DEFAULT_CHUNK_SIZE: Final = 1 << 20


# --------------------------------------------------------------------------- tokens


@dataclass(slots=True)
class IsaFound:
    """An interchange header and the TA1 notes its own fields earned."""

    header: InterchangeHeader
    notes: list[InterchangeNote] = field(default_factory=list)


@dataclass(slots=True)
class Envelope:
    """One envelope segment (GS, ST, SE, GE, IEA) in input order."""

    segment: Segment


@dataclass(slots=True)
class Body:
    """A run of ordinary segments between two envelope segments."""

    segments: list[Segment]
    offset: int


Token = IsaFound | Envelope | Body | Stray


# --------------------------------------------------------------------------- decoding


def _raw_chunks(source: bytes | str | BinaryIO, chunk_size: int) -> Iterator[bytes | str]:
    if isinstance(source, str | bytes | bytearray | memoryview):
        data = source if isinstance(source, str | bytes) else bytes(source)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]
        return
    while True:
        chunk = source.read(chunk_size)
        if not chunk:
            return
        yield chunk


def decode_chunks(source: bytes | str | BinaryIO, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[str]:
    """Decode ``source`` chunk by chunk: UTF-8, falling back to Latin-1 for good from
    the first chunk that is not UTF-8. A leading byte-order mark is dropped. Multi-byte
    characters split across chunk boundaries are reassembled."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    decoder = codecs.getincrementaldecoder("utf-8")()
    latin1 = False
    first = True
    for chunk in _raw_chunks(source, chunk_size):
        if isinstance(chunk, str):
            text = chunk
        elif latin1:
            text = chunk.decode("latin-1")
        else:
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                # The decoder keeps its buffered partial character when it raises.
                pending: bytes = decoder.getstate()[0]
                text = (pending + chunk).decode("latin-1")
                latin1 = True
        if first and text:
            first = False
            if text[0] == "\ufeff":
                text = text[1:]
        if text:
            yield text
    if not latin1:
        pending = decoder.getstate()[0]
        if pending:
            yield pending.decode("latin-1")


# --------------------------------------------------------------------------- ISA parsing


@dataclass(frozen=True, slots=True)
class Layout:
    """How segments of one interchange are cut: the terminator as it splits after
    line-break normalisation, and whether line breaks are the terminator."""

    delimiters: Delimiters
    element: str
    terminator: str  # "\n" when line breaks end segments
    newline: bool  # line breaks terminate segments (CR, LF, CRLF, or space + line break)
    trim_space: bool  # "space then line break" terminators: drop the space
    envelope_re: re.Pattern[str]

    @classmethod
    def build(cls, delimiters: Delimiters, newline: bool, trim_space: bool) -> Layout:
        terminator = "\n" if newline else delimiters.segment
        tags = r"[ \t]*(?:S[TE]|G[SE]|IEA|ISA)" + re.escape(delimiters.element)
        envelope_re = re.compile(re.escape(terminator) + tags)
        return cls(delimiters, delimiters.element, terminator, newline, trim_space, envelope_re)


@dataclass(slots=True)
class _IsaParse:
    header: InterchangeHeader
    notes: list[InterchangeNote]
    layout: Layout
    end: int  # index just after the ISA's terminator


class _NeedMore:
    """Marker: the buffer ends before the ISA does."""


_NEED_MORE: Final = _NeedMore()


def _valid_date(value: str) -> bool:
    if len(value) != 6 or not value.isdigit():
        return False
    month, day = int(value[2:4]), int(value[4:6])
    return 1 <= month <= 12 and 1 <= day <= 31


def _valid_time(value: str) -> bool:
    return len(value) == 4 and value.isdigit() and int(value[:2]) < 24 and int(value[2:]) < 60


def _separators(buf: str, start: int, sep: str, limit: int) -> list[int]:
    found: list[int] = []
    at = start
    while len(found) < 16:
        at = buf.find(sep, at, limit)
        if at == -1:
            break
        found.append(at)
        at += 1
    return found


def _fixed_separator(buf: str, i: int) -> str | None:
    """For an ISA whose fourth character is unusable, the separator the other fixed
    positions agree on, if they do."""
    if len(buf) < i + 106:
        return None
    candidates = {buf[i + p] for p in _ISA_FIXED_SEPARATORS}
    if len(candidates) != 1:
        return None
    sep = candidates.pop()
    return None if sep.isalnum() or sep in _BAD_SEPARATORS else sep


def parse_isa(
    buf: str, i: int, at_eof: bool, index: int = 1, offset: int = 0
) -> _IsaParse | _NeedMore | None:
    """Read the ISA starting at ``buf[i]``. Returns None when the text there is not an
    ISA that can be read, ``_NEED_MORE`` when the buffer ends too early."""
    notes: list[InterchangeNote] = []
    limit = min(len(buf), i + _ISA_WINDOW)
    incomplete = not at_eof and len(buf) < i + _ISA_WINDOW
    if len(buf) < i + 4:
        return _NEED_MORE if incomplete else None
    sep = buf[i + 3]
    if sep.isalnum() or sep in _BAD_SEPARATORS:
        if len(buf) < i + 106 and incomplete:
            return _NEED_MORE
        fixed = _fixed_separator(buf, i)
        if fixed is None:
            return None
        notes.append(InterchangeNote.INVALID_DATA_ELEMENT_SEPARATOR)
        buf = buf[: i + 3] + fixed + buf[i + 4 :]
        sep = fixed
    seps = _separators(buf, i + 3, sep, limit)
    if len(seps) < 16:
        return _NEED_MORE if incomplete else None
    at = seps[15] + 1
    # A wrapped ISA may break between ISA16's separator and ISA16 itself.
    while at < limit and buf[at] in _NEWLINES:
        at += 1
    if at + 4 > len(buf) and not at_eof:  # ISA16, terminator and a two-character suffix
        return _NEED_MORE
    if at >= len(buf):
        return None
    component = buf[at]
    term_at = at + 1
    terminator = buf[term_at] if term_at < len(buf) else "~"
    fields = [*buf[i : seps[15]].replace("\r", "").replace("\n", "").split(sep), component]
    if len(fields) != 17 or len(fields[15].strip()) > 1:
        return None

    newline = terminator in _NEWLINES
    trim_space = False
    end = term_at + 1
    if newline:
        # "...*>~" then a line break, with the next line also ending in "~": the ISA
        # lost its ISA16 and "~" is really the terminator.
        nl = buf.find("\n", end)
        if nl == -1 and not at_eof:
            return _NEED_MORE if len(buf) - end < 4096 else None
        next_line = (buf[end:nl] if nl != -1 else buf[end:]).strip()
        if next_line[:2] in ("GS", "TA", "IS", "IE") and next_line.endswith(component) and component != sep:
            notes.append(InterchangeNote.INVALID_COMPONENT_SEPARATOR)
            terminator, component, newline, end = component, "\x1f", False, term_at
    elif terminator in " \t":
        nxt = buf[term_at + 1 : term_at + 2]
        if nxt == "" and not at_eof:
            return _NEED_MORE
        if nxt in ("\r", "\n"):
            newline, trim_space = True, True
    suffix_start = end
    if not newline:
        while end < len(buf) and end - suffix_start < 2 and buf[end] in _NEWLINES:
            end += 1
    suffix = buf[suffix_start:end]
    if terminator == "\r" and buf[term_at + 1 : term_at + 2] == "\n":
        suffix, end = "\n", term_at + 2

    version = fields[12].strip()
    isa11 = fields[11]
    repetition: str | None = None
    if len(isa11) == 1 and not isa11.isalnum() and isa11 not in _BAD_SEPARATORS:
        # From 00402 on ISA11 is the repetition separator; older partners who put a
        # punctuation mark there use it that way too (it cannot be a standards id).
        repetition = isa11
    if repetition in (sep, component, terminator):
        repetition = None

    if terminator == sep or terminator.isalnum():
        notes.append(InterchangeNote.SEGMENT_TERMINATOR_INVALID)
    bad_component = component in (sep, terminator) or component.isalnum() or component in _BAD_SEPARATORS
    if bad_component and InterchangeNote.INVALID_COMPONENT_SEPARATOR not in notes:
        notes.append(InterchangeNote.INVALID_COMPONENT_SEPARATOR)
    if not (len(version) == 5 and version.isdigit()):
        notes.append(InterchangeNote.INVALID_VERSION_ID)
    date, time = fields[9].strip(), fields[10].strip()
    if not _valid_date(date):
        notes.append(InterchangeNote.INVALID_DATE)
    if not _valid_time(time):
        notes.append(InterchangeNote.INVALID_TIME)
    control = fields[13].strip()
    if not (len(control) == 9 and control.isdigit()):
        notes.append(InterchangeNote.INVALID_CONTROL_NUMBER)
    if fields[14].strip() not in ("0", "1"):
        notes.append(InterchangeNote.INVALID_ACK_REQUESTED)
    usage = fields[15].strip()
    if usage not in ("P", "T", "I"):
        notes.append(InterchangeNote.INVALID_TEST_INDICATOR)

    delimiters = Delimiters(
        element=sep, component=component, repetition=repetition, segment=terminator, suffix=suffix
    )
    header = InterchangeHeader(
        sender_qualifier=fields[5].strip(),
        sender_id=fields[6].strip(),
        receiver_qualifier=fields[7].strip(),
        receiver_id=fields[8].strip(),
        date=date,
        time=time,
        standards_id=isa11,
        version=version,
        control_number=control,
        ack_requested=fields[14].strip() == "1",
        usage=usage,
        delimiters=delimiters,
        segment=fields,
        index=index,
        offset=offset,
    )
    return _IsaParse(header, notes, Layout.build(delimiters, newline, trim_space), end)


# --------------------------------------------------------------------------- the token stream

_CONTINUE, _NEED, _DONE = 0, 1, 2


class TokenReader:
    """Iterates the tokens of one input. Holds at most one chunk plus one partial
    segment (or an ISA window) of text at a time."""

    def __init__(
        self,
        source: bytes | str | BinaryIO,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_segment: int = MAX_SEGMENT,
    ) -> None:
        self._chunks = decode_chunks(source, chunk_size)
        self._max_segment = max_segment
        self._buf = ""
        self._pos = 0
        self._base = 0  # characters dropped from the front of the buffer so far
        self._eof = False
        self._layout: Layout | None = None
        self._interchanges = 0

    def __iter__(self) -> Iterator[Token]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Token]]:
        """Tokens in input order, a list at a time (cheaper than one by one)."""
        while True:
            if self._layout is None:
                out: list[Token] = []
                step = self._between(out)
                if out:
                    yield out
            else:
                step = yield from self._inside()
            if step == _DONE:
                return
            if step == _NEED:
                self._refill()

    def _refill(self) -> None:
        chunk = next(self._chunks, None)
        self._base += self._pos
        tail = self._buf[self._pos :]
        self._pos = 0
        if chunk is None:
            self._buf = tail
            self._eof = True
        else:
            self._buf = tail + chunk if tail else chunk

    # ----------------------------------------------------------------- outside interchanges

    def _between(self, out: list[Token]) -> int:
        buf, pos, n = self._buf, self._pos, len(self._buf)
        while pos < n and buf[pos] in _BLANKS:
            pos += 1
        self._pos = pos
        if pos >= n:
            if not self._eof:
                return _NEED
            if self._interchanges == 0:
                raise NotX12Error("no ISA interchange header found: the input is empty", self._base + pos)
            return _DONE
        i = buf.find("ISA", pos)
        parsed: _IsaParse | _NeedMore | None = None
        while i != -1:
            parsed = parse_isa(buf, i, self._eof, self._interchanges + 1, self._base + i)
            if parsed is not None:
                break
            i = buf.find("ISA", i + 1)
        if isinstance(parsed, _NeedMore):
            return _NEED
        if i == -1 or parsed is None:
            if not self._eof and n - pos <= STRAY_LIMIT:
                return _NEED
            if self._interchanges == 0:
                where = (
                    "before the end of the input" if self._eof else f"in the first {STRAY_LIMIT} characters"
                )
                raise NotX12Error(f"no ISA interchange header found {where}", self._base + pos)
            keep = n if self._eof else n - 2  # "IS" may continue in the next chunk
            out.append(Stray(buf[pos:keep].rstrip(_BLANKS), self._base + pos))
            self._pos = keep
            return _DONE if self._eof else _NEED
        if i > pos:
            text = buf[pos:i].rstrip(_BLANKS)
            if text:
                out.append(Stray(text, self._base + pos))
        self._interchanges += 1
        out.append(IsaFound(parsed.header, parsed.notes))
        self._layout = parsed.layout
        self._pos = parsed.end
        return _CONTINUE

    # ----------------------------------------------------------------- inside an interchange

    def _at_segment_start(self, buf: str, i: int, pos: int, layout: Layout) -> bool:
        j = i - 1
        while j >= pos and buf[j] in " \t\r\n":
            j -= 1
        if j < pos:
            return True
        if layout.newline:
            gap = buf[j + 1 : i]
            return "\n" in gap or "\r" in gap
        return buf[j] == layout.delimiters.segment

    def _find_start(self, buf: str, needle: str, pos: int, layout: Layout) -> int:
        i = buf.find(needle, pos)
        while i != -1 and not self._at_segment_start(buf, i, pos, layout):
            i = buf.find(needle, i + 1)
        return i

    def _inside(self) -> Generator[list[Token], None, int]:
        layout = self._layout
        assert layout is not None
        buf, pos, n = self._buf, self._pos, len(self._buf)
        isa_at = self._find_start(buf, "ISA", pos, layout)
        iea_at = self._find_start(buf, "IEA" + layout.element, pos, layout)
        leave = False
        if isa_at != -1 and (iea_at == -1 or isa_at < iea_at):
            end, leave, step = isa_at, True, _CONTINUE
        elif iea_at != -1:
            term_at = self._find_terminator(buf, iea_at, layout)
            if term_at != -1:
                end, leave, step = term_at + 1, True, _CONTINUE
            elif self._eof or n - iea_at > self._max_segment:
                end, leave, step = n, True, _CONTINUE
            else:
                end, step = iea_at, _NEED
        elif self._eof:
            end, leave, step = n, True, _DONE
        else:
            end, step = self._rfind_terminator(buf, pos, layout) + 1, _NEED
            if end == 0:
                if n - pos <= self._max_segment:
                    return _NEED
                # No terminator in sight (a wrong ISA16 neighbour, a runaway BIN):
                # cut here rather than hold the rest of the input in memory.
                end = n
        if end > pos:
            yield from self._region(buf[pos:end], self._base + pos, layout)
        self._pos = end
        if leave:
            self._layout = None
        return step

    @staticmethod
    def _find_terminator(buf: str, at: int, layout: Layout) -> int:
        if not layout.newline:
            return buf.find(layout.delimiters.segment, at)
        cr, lf = buf.find("\r", at), buf.find("\n", at)
        return lf if cr == -1 else cr if lf == -1 else min(cr, lf)

    @staticmethod
    def _rfind_terminator(buf: str, pos: int, layout: Layout) -> int:
        if not layout.newline:
            return buf.rfind(layout.delimiters.segment, pos)
        return max(buf.rfind("\r", pos), buf.rfind("\n", pos))

    def _region(self, text: str, offset: int, layout: Layout) -> Iterator[list[Token]]:
        """Cut the complete segments of one interchange in ``text`` into tokens."""
        term = layout.terminator
        if layout.newline:
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
        else:
            # When the terminator is not a line break, line breaks are not data:
            # files wrapped at 80 columns break lines inside elements.
            if "\n" in text:
                text = text.replace("\n", "")
            if "\r" in text:
                text = text.replace("\r", "")
        # Pieces of about _PIECE characters, cut after a terminator: big enough to
        # amortise the per-piece work, small enough to stay in cache and keep the
        # garbage collector's young generation small.
        n, start = len(text), 0
        while start < n:
            stop = n if n - start <= _PIECE else text.find(term, start + _PIECE) + 1 or n
            out: list[Token] = []
            self._piece(text[start:stop], offset, layout, out)
            yield out
            start = stop

    @staticmethod
    def _piece(piece: str, offset: int, layout: Layout, out: list[Token]) -> None:
        term, sep = layout.terminator, layout.element
        parts = piece.split(term)
        if parts[-1] == "":
            parts.pop()
        # Tags start with a letter or digit, so only a blank segment or one indented
        # with spaces or tabs sorts below "0": one C-level min() spares three scans.
        has_empty = False
        if parts and min(parts) < "0":
            parts = [p.lstrip(" \t") for p in parts]
            has_empty = "" in parts
        if layout.trim_space:
            parts = [p.rstrip(" ") for p in parts]
            has_empty = "" in parts
        segments = [p.split(sep) for p in parts]
        # Envelope segments are found in the text; the number of terminators before
        # each match is its index in ``segments``, so runs between them are slices.
        scan = term + piece
        count = scan.count
        index, at, previous = 0, 0, 0
        for match in layout.envelope_re.finditer(scan):
            q = match.start()
            index += count(term, at, q)
            at = q
            if index > previous:
                body = segments[previous:index]
                if has_empty:
                    body = [s for s in body if s != [""]]
                if body:
                    out.append(Body(body, offset))
            out.append(Envelope(segments[index]))
            previous = index + 1
        if previous < len(segments):
            body = segments[previous:] if previous else segments
            if has_empty:
                body = [s for s in body if s != [""]]
            if body:
                out.append(Body(body, offset))


def read_tokens(source: bytes | str | BinaryIO, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Token]:
    """The token stream of ``source`` (see the module docstring)."""
    return iter(TokenReader(source, chunk_size))


def iter_segments(
    source: bytes | str | BinaryIO, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[tuple[Segment, InterchangeHeader | None]]:
    """Every segment of ``source`` with the interchange it belongs to (None for stray
    text, which comes out as a one-element segment). No envelope checks."""
    header: InterchangeHeader | None = None
    for token in read_tokens(source, chunk_size=chunk_size):
        if isinstance(token, Body):
            for segment in token.segments:
                yield segment, header
        elif isinstance(token, Envelope):
            yield token.segment, header
        elif isinstance(token, IsaFound):
            header = token.header
            yield token.header.segment, header
        else:
            yield [token.text], None
