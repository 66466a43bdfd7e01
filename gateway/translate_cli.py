"""`gateway translate`'s working part: X12 in, canonical JSON Lines (bytes) out, on
one core or, for a big file, on all of them.

A document is written only once its interchange has ended (then it is known whether
its group or envelope was rejected); until then its encoded line waits in a spool
that stays in memory up to 16 MB and goes to a temporary file beyond, so memory stays
bounded on big interchanges. Lines are encoded by
:func:`translators.canonical.encoding.encode_document` (the bytes of
``model_dump_json``) and written to stdout as bytes.

Both cores (:func:`translate_file` with ``jobs`` > 1): the interchanges of a file are
independent, so the file is cut between interchanges into chunks that a pool of
forked processes translates, each writing its chunk's output to standard output when
its turn comes (a token passed in input order): byte for byte what one process
writes (tests hold it to that). A file is cut only
where one process would see the same thing: after a well-formed IEA, before a
well-formed 106-character ISA, with only blanks between; and only when the whole file
is UTF-8 (the reader switches to Latin-1 for good at the first chunk that is not) and
no interchange repeats an earlier one's sender and control number (TA1 025 needs the
whole file). Otherwise, and below :data:`PARALLEL_MIN_BYTES`, one process does it.

This module imports only the standard library at import time (`gateway translate`
must start fast); it is an entry point's helper and never imports the service.
"""

from __future__ import annotations

import codecs
import io
import itertools
import mmap
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from gateway.partners import PartnerDirectory

# Below this a file is translated in this process: forking and cutting cost more.
PARALLEL_MIN_BYTES = 4 << 20
# Chunks handed to the pool: about this many per process (uneven interchanges even out).
_CHUNKS_PER_JOB = 4
_MIN_CHUNK = 256 << 10
_SPOOL_BYTES = 16 << 20
_BLANKS = b" \t\r\n\x0b\x0c\x00\x1a"
# Element separators of a well-formed 106-character ISA, from the I of "ISA".
_ISA_SEPARATORS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
_ISA_LENGTH = 106


class UsageError(Exception):
    """Input or arguments the command cannot use: one line, exit 2."""


@dataclass(frozen=True, slots=True)
class TranslateOptions:
    """What `gateway translate` was asked for."""

    name: str  # the input as the user named it, for messages ("stdin" for -)
    partner: str | None = None
    allow_duplicates: bool = False
    unknown_senders: bool = False
    all_errors: bool = False


def where(item: Any) -> str:
    """Where a transaction set sits: interchange, sender, group, set."""
    isa = item.interchange
    group = item.group
    gs = group.control_number.strip() if group is not None else "-"
    return (
        f"interchange {isa.control_number.strip()} from {isa.sender_qualifier.strip()}/{isa.sender_id.strip()}, "
        f"group {gs}, set {item.outcome.set_id} {item.outcome.control_number}"
    )


def rejection(item: Any, all_errors: bool) -> str:
    """Why a set was rejected: the engine's line, or every error with --all-errors."""
    outcome = getattr(item, "outcome", None)
    if all_errors and outcome is not None:
        from translators.engine import describe_rejection

        return describe_rejection(outcome, limit=None)
    return str(item.reason or "rejected")


def translated(
    source: BinaryIO | bytes,
    options: TranslateOptions,
    partners: PartnerDirectory,
    receivers: Any = None,
) -> Iterator[Any]:
    """The engine's results; unreadable input becomes a UsageError. An interchange
    repeating an earlier one of the input is rejected (TA1 025) unless
    ``--allow-duplicates`` or the sender's profile (``x12.reject_duplicates``) says not."""
    from translators.engine import translate
    from translators.mapping.rules import MappingRules
    from translators.x12.errors import NotX12Error

    seen = False
    try:
        for item in translate(
            source,
            partners=partners,
            partner_id=options.partner,
            receivers=receivers,
            reject_duplicates=not options.allow_duplicates,
            unknown_sender_rules=MappingRules() if options.unknown_senders else None,
            # the raw segments of a set, for partners whose inbound hook receives them
            keep_segments=lambda pid: (e := partners.entry(pid or "")) is not None and e.hooks is not None,
        ):
            seen = True
            yield item
    except NotX12Error as exc:
        raise UsageError(f"{options.name}: not X12: {exc.reason} (at offset {exc.offset})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{options.name}: cannot decode: {exc.reason} (at byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{options.name}: cannot read: {exc.strerror or exc}") from None
    if not seen:
        raise UsageError(f"{options.name}: not X12: no interchange in the input (it is empty or blank)")


def write_documents(
    items: Iterator[Any],
    partners: PartnerDirectory,
    out: IO[bytes],
    err: Callable[[str], None],
    all_errors: bool,
) -> int:
    """Write the documents of ``items`` as JSON Lines to ``out`` and say on ``err``
    what was not used and why; returns how many sets or interchanges were rejected."""
    from translators.canonical.encoding import encode_document
    from translators.engine import TranslatedInterchange

    rejected = 0
    waiting: list[Any] = []  # sets whose documents are in the spool, in order
    held = _Spool()
    try:
        for item in items:
            if isinstance(item, TranslatedInterchange):
                problem = item.envelope_rejection()
                if problem is not None:
                    rejected += 1
                    err(problem)
                reasons = [item.rejection_of(tset) for tset in waiting]
                if not any(reasons):
                    held.write_all(out)
                else:
                    for tset, line, why in zip(waiting, held.lines(), reasons, strict=True):
                        if why is None:
                            out.write(line)
                        elif problem is None:  # a rejected interchange was said once, above
                            rejected += 1
                            err(f"{where(tset)}: not used: {why}")
                held.clear()
                waiting = []
                for text in item.stray:
                    err(f"ignored data outside any interchange: {text.strip()[:40]!r}")
            elif item.document is not None:
                document = item.document
                entry = partners.entry(document.partner_id) if document.partner_id else None
                if entry is not None and entry.hooks is not None:
                    from gateway.hooks import HookError, inbound_document

                    try:
                        document = inbound_document(entry.hooks, document, item.segments or ())
                    except HookError as exc:
                        raise UsageError(str(exc)) from None
                held.add(encode_document(document) + b"\n")
                item.document = None  # kept: its place in the envelope, not the document
                waiting.append(item)
            elif item.accepted:
                # A 997/999 from the partner: it acknowledges our outbound, no document.
                err(
                    f"{where(item)}: functional acknowledgment, not a document (use the service to reconcile)"
                )
            else:
                rejected += 1
                err(f"{where(item)}: {rejection(item, all_errors)}")
    finally:
        held.clear()
    return rejected


class _Spool:
    """Encoded lines waiting for the end of their interchange: in memory up to
    16 MB, in a temporary file beyond (one interchange may be huge)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.file: IO[bytes] | None = None
        self.sizes: list[int] = []  # of each write to the file

    def add(self, line: bytes) -> None:
        if self.file is None:
            self.parts.append(line)
            self.size += len(line)
            if self.size <= _SPOOL_BYTES:
                return
            import tempfile

            self.file = tempfile.TemporaryFile()  # noqa: SIM115  (closed by clear)
            line, self.parts = b"".join(self.parts), []
        self.file.write(line)
        self.sizes.append(len(line))

    def write_all(self, out: IO[bytes]) -> None:
        if self.file is None:
            out.write(b"".join(self.parts))
            return
        self.file.seek(0)
        while piece := self.file.read(1 << 20):
            out.write(piece)

    def lines(self) -> Iterator[bytes]:
        if self.file is None:
            yield from self.parts
            return
        self.file.seek(0)
        for size in self.sizes:  # the first write holds every line kept in memory before
            for line in self.file.read(size)[:-1].split(b"\n"):
                yield line + b"\n"

    def clear(self) -> None:
        self.parts, self.size, self.sizes = [], 0, []
        if self.file is not None:
            self.file.close()
            self.file = None


def translate_file(
    source: BinaryIO,
    options: TranslateOptions,
    partners: PartnerDirectory,
    receivers: Any,
    *,
    out: IO[bytes],
    err: Callable[[str], None],
    jobs: int = 1,
) -> int:
    """`gateway translate` on an open input: returns how many sets or interchanges
    were rejected. With ``jobs`` > 1, a regular file of at least
    :data:`PARALLEL_MIN_BYTES` that can be cut (see the module docstring) is
    translated by ``jobs`` processes."""
    data = _mapped(source) if jobs > 1 else None
    if data is not None:
        with data:
            if "fork" in _start_methods():
                chunks = plan_chunks(data, jobs, check_duplicates=not options.allow_duplicates)
                if chunks is not None and len(chunks) > 1:
                    return _parallel(data, chunks, options, partners, receivers, out, err, jobs)
    items = translated(source, options, partners, receivers)
    return write_documents(items, partners, out, err, options.all_errors)


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _mapped(source: BinaryIO) -> mmap.mmap | None:
    """The input file mapped into memory, when it is a regular file big enough."""
    try:
        fileno = source.fileno()
        size = os.fstat(fileno).st_size
        if size < PARALLEL_MIN_BYTES or source.tell() != 0:
            return None
        return mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None


# --------------------------------------------------------------------------- cutting


_IEA_END = re.compile(rb"IEA(.)[ \d]*\1[ \d]*\Z", re.DOTALL)


def plan_chunks(
    data: Any, jobs: int, *, check_duplicates: bool = True, min_chunk: int = _MIN_CHUNK
) -> list[tuple[int, int]] | None:
    """(start, end) byte ranges of ``data``, each a run of whole interchanges, that
    translated one by one give exactly what the whole gives; None when the input
    cannot be cut safely (see the module docstring)."""
    size = len(data)
    if not _is_utf8(data):
        return None
    starts = _isa_starts(data)
    if starts is None or len(starts) < 2:
        return None
    if check_duplicates:
        keys = {_isa_key(data, p) for p in starts}
        if len(keys) != len(starts):
            return None
    target = max(min_chunk, size // (jobs * _CHUNKS_PER_JOB))
    chunks: list[tuple[int, int]] = []
    begin = 0
    for previous, p in itertools.pairwise(starts):
        if p - begin >= target and _ends_with_iea(data, previous, p):
            chunks.append((begin, p))
            begin = p
    chunks.append((begin, size))
    return chunks


def _is_utf8(data: Any) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for at in range(0, len(view), 8 << 20):
            decoder.decode(view[at : at + (8 << 20)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        view.release()
    return True


def _isa_starts(data: Any) -> list[int] | None:
    """Where each interchange header starts; None when something that may be an ISA
    is not a well-formed 106-character one (the reader copes; cutting would not)."""
    starts: list[int] = []
    at = data.find(b"ISA")
    while at != -1:
        before = data[at - 1 : at] if at else b""
        if not before.isalnum():  # "VISA", "DISABLED" are text, not segments
            if not _fixed_isa(data, at):
                return None
            starts.append(at)
        at = data.find(b"ISA", at + 3)
    return starts


def _fixed_isa(data: Any, at: int) -> bool:
    isa = data[at : at + _ISA_LENGTH]
    if len(isa) != _ISA_LENGTH:
        return False
    separator = isa[3:4]
    if separator.isalnum() or separator in _BLANKS:
        return False
    return all(isa[p : p + 1] == separator for p in _ISA_SEPARATORS) and isa[105:106] not in (separator, b"")


def _isa_key(data: Any, at: int) -> tuple[bytes, bytes, bytes]:
    # ISA05 sender qualifier, ISA06 sender id, ISA13 control number
    return (data[at + 32 : at + 34].strip(), data[at + 35 : at + 50].strip(), data[at + 90 : at + 99].strip())


def _ends_with_iea(data: Any, previous: int, at: int) -> bool:
    """True when the text between the interchange starting at ``previous`` and the
    ISA at ``at`` ends with that interchange's IEA and then only blanks."""
    separator = data[previous + 3 : previous + 4]
    terminator = data[previous + 105 : previous + 106]
    tail = data[max(previous + _ISA_LENGTH, at - 128) : at].rstrip(_BLANKS)
    if terminator in (b"\r", b"\n"):  # line breaks end segments
        cut = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
    else:
        if not tail.endswith(terminator):
            return False
        tail = tail[:-1]
        cut = tail.rfind(terminator)
    if cut == -1:
        return False
    segment = tail[cut + 1 :].lstrip(_BLANKS)  # as the reader, which skips blanks at a segment start
    match = _IEA_END.match(segment)
    return match is not None and match.group(1) == separator


# --------------------------------------------------------------------------- the pool

# What the forked workers inherit: (data, options, partners, receivers, turn), turn
# being None when output comes back through this process (see _parallel).
_WORK: tuple[Any, TranslateOptions, Any, Any, _Turn | None] | None = None


class _Turn:
    """The token that lets workers write their chunk's output straight to standard
    output in input order: the worker of chunk ``i`` writes once ``next`` is ``i``,
    then passes the token on (``next`` = ``i + 1``), whether it wrote or failed.
    After a failure (``failed`` set) later chunks write nothing, as one process
    would have stopped there."""

    def __init__(self, fileno: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.fileno = fileno
        self.next = context.RawValue("q", 0)
        self.failed = context.RawValue("b", 0)
        self.changed = context.Condition()

    def write(self, index: int, lines: bytes | None) -> None:
        """Wait for chunk ``index``'s turn, write ``lines`` (None: this chunk
        failed), pass the token on."""
        with self.changed:
            self.changed.wait_for(lambda: self.next.value == index)
            try:
                if lines is None:
                    self.failed.value = 1
                elif not self.failed.value:
                    view = memoryview(lines)
                    while view:
                        view = view[os.write(self.fileno, view) :]
            except BaseException:
                self.failed.value = 1
                raise
            finally:
                self.next.value = index + 1
                self.changed.notify_all()


def _translate_chunk(index: int, chunk: tuple[int, int]) -> tuple[bytes | None, list[str], int]:
    """Chunk ``index`` of the input translated: its output (None when written to
    standard output here, in turn), its messages, how many sets it rejected."""
    assert _WORK is not None
    data, options, partners, receivers, turn = _WORK
    start, end = chunk
    out = io.BytesIO()
    errors: list[str] = []
    try:
        items = translated(data[start:end], options, partners, receivers)
        rejected = write_documents(items, partners, out, errors.append, options.all_errors)
    except BaseException:
        if turn is not None:
            turn.write(index, None)
        raise
    if turn is None:
        return out.getvalue(), errors, rejected
    turn.write(index, out.getvalue())
    return None, errors, rejected


def _stdout_fileno(out: IO[bytes]) -> int | None:
    """The descriptor workers may write ``out``'s bytes to, or None (not a file)."""
    try:
        fileno = out.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    out.flush()  # what was written before goes first
    return fileno


def _parallel(
    data: Any,
    chunks: list[tuple[int, int]],
    options: TranslateOptions,
    partners: PartnerDirectory,
    receivers: Any,
    out: IO[bytes],
    err: Callable[[str], None],
    jobs: int,
) -> int:
    """The chunks translated by ``jobs`` forked processes. When ``out`` is a file
    (standard output), each worker writes its chunk there itself when its turn
    comes (:class:`_Turn`): the output does not pass through this process, which only
    says the messages, in input order; otherwise the workers send it back here."""
    import multiprocessing

    global _WORK
    fileno = _stdout_fileno(out)
    turn = _Turn(fileno) if fileno is not None else None
    _WORK = (data, options, partners, receivers, turn)
    rejected = 0
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            # a bounded window of chunks in flight: memory stays bounded on big files
            pending: deque[Any] = deque()
            queue = iter(enumerate(chunks))
            for index, chunk in queue:
                pending.append(pool.apply_async(_translate_chunk, (index, chunk)))
                if len(pending) >= 2 * jobs:
                    break
            while pending:
                lines, errors, count = pending.popleft().get()
                for index, chunk in queue:
                    pending.append(pool.apply_async(_translate_chunk, (index, chunk)))
                    break
                if lines is not None:
                    out.write(lines)
                for line in errors:
                    err(line)
                rejected += count
    finally:
        _WORK = None
    return rejected


def default_jobs() -> int:
    """The processors this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def stdout_bytes() -> IO[bytes]:
    """Standard output as bytes (text written before is flushed first)."""
    sys.stdout.flush()
    return sys.stdout.buffer
