"""Checking rendered transaction sets: every set the renderers write is validated
against its grammar, and each finding is tied back to the canonical field that
caused it (:class:`~translators.mapping.errors.FieldError`), so a refusal says
what to fix in the document, not only which X12 element broke.

Pure: segments in, errors out. Split from ``common`` (reading and writing the
shared segments) to keep each module small enough to hold in one's head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from translators.canonical.common import (
    PRODUCT_ID_FIELDS,
)
from translators.mapping.common import (
    QUALIFIER_BY_FIELD,
    date_name,
    text,
)
from translators.mapping.errors import FieldError, RenderValidationError
from translators.mapping.rules import DocumentRules
from translators.x12.codes import ElementSyntaxCode, SegmentSyntaxCode
from translators.x12.grammar import CompositeRule, ElementRule, Grammar, SegmentRule, load_grammar
from translators.x12.model import (
    Delimiters,
    ElementError,
    GroupHeader,
    InterchangeHeader,
    Segment,
    SegmentError,
    TransactionSet,
    element,
)
from translators.x12.validation import validate_set

#
# A renderer writes what the document holds; whether that is valid X12 is the
# grammar's call. ``check_rendered`` validates every rendered set with the same
# validator inbound sets go through and turns each finding into a FieldError naming
# the canonical field. Locators say which field each element came from: a
# ``Location`` per segment, the owner's path (``document.lines.0``) and the field of
# each element position relative to it (``{4: "unit_price"}``); an element with no
# entry is blamed on the owner. Locators only run when a set fails, so they favour
# clarity over speed.

DEFAULT_VERSION = "004010"  # the grammar used when none is shipped for the target version
# Segments whose bare form (no element) stands for an optional object with no value.
# Others stay: a bare PO1 or HL still stands for a line or a level of the document.
EMPTY_MEANS_NOTHING = frozenset({"TD5"})
Location = tuple[str, Mapping[int, str]]
Locator = Callable[[Sequence[Segment]], list[Location]]

REF_FIELDS: Mapping[int, str] = {1: "qualifier", 2: "value", 3: "description"}
N1_FIELDS: Mapping[int, str] = {1: "role", 2: "name", 3: "id_qualifier", 4: "id"}
N2_FIELDS: Mapping[int, str] = {1: "name", 2: "name"}
N4_FIELDS: Mapping[int, str] = {1: "city", 2: "state", 3: "postal_code", 4: "country"}
CUR_FIELDS: Mapping[int, str] = {1: "currency", 2: "currency"}
ITD_FIELDS: Mapping[int, str] = {3: "discount_percent", 5: "discount_days", 7: "net_days", 12: "description"}
TD5_FIELDS: Mapping[int, str] = {2: "scac", 3: "scac", 4: "mode", 5: "routing"}
PID_FIELDS: Mapping[int, str] = {1: "description", 5: "description"}
SAC_FIELDS: Mapping[int, str] = {
    1: "type",
    2: "code",
    5: "amount",
    6: "percent",
    7: "percent",
    15: "description",
}
ACK_FIELDS: Mapping[int, str] = {1: "status", 2: "quantity", 3: "uom", 4: "date_qualifier", 5: "date"}
# Where a mandatory segment the set lacks comes from.
MISSING_SEGMENT_FIELDS: Mapping[str, str] = {
    "PO1": "document.lines",
    "IT1": "document.lines",
    "HL": "document.orders",
}
_NO_FIELDS: Mapping[int, str] = {}


class SetLocations:
    """Builds the locations of one rendered set: the owner and fields of each
    segment, in order. ``common`` knows the segments every kind writes alike."""

    def __init__(self) -> None:
        self.out: list[Location] = []
        self.party = "document"
        self.parties = 0
        self.address_segments = 0
        self.references = 0

    def add(self, owner: str, fields: Mapping[int, str] = _NO_FIELDS) -> None:
        self.out.append((owner, fields))

    def common(self, segment: Segment) -> bool:
        """Locate a header segment the mappers share (N1 loop, REF, CUR, ITD, TD5,
        ST, SE); False when ``segment`` is none of them."""
        tag = segment[0]
        if tag == "N1":
            self.party = f"document.parties.{self.parties}"
            self.parties += 1
            self.address_segments = 0
            self.add(self.party, N1_FIELDS)
        elif tag == "N2":
            self.add(self.party, N2_FIELDS)
        elif tag == "N3":
            first = 2 * self.address_segments
            self.address_segments += 1
            self.add(self.party, {1: f"address_lines.{first}", 2: f"address_lines.{first + 1}"})
        elif tag == "N4":
            self.add(self.party, N4_FIELDS)
        elif tag == "REF":
            self.add(f"document.references.{self.references}", REF_FIELDS)
            self.references += 1
        elif tag == "CUR":
            self.add("document", CUR_FIELDS)
        elif tag == "ITD":
            self.add("document.terms", ITD_FIELDS)
        elif tag == "TD5":
            self.add("document.carrier", TD5_FIELDS)
        elif tag in ("ST", "SE"):
            self.add("document")
        else:
            return False
        return True


def product_id_fields(
    segment: Segment, start: int, rules: DocumentRules, fields: Mapping[int, str] = _NO_FIELDS
) -> dict[int, str]:
    """``fields`` plus the qualifier/id pairs from ``start`` on, each named after the
    ProductIds field its qualifier is written for (``product_ids.upc``, or
    ``product_ids.other.<qualifier>``)."""
    by_qualifier: dict[str, str] = {}
    for name in reversed(PRODUCT_ID_FIELDS):  # the first field listed wins a qualifier
        by_qualifier[rules.product_ids.outbound.get(name) or QUALIFIER_BY_FIELD[name]] = name
    found = dict(fields)
    for position in range(start, len(segment), 2):
        qualifier = segment[position]
        known = by_qualifier.get(qualifier)
        path = f"product_ids.{known}" if known is not None else f"product_ids.other.{qualifier}"
        found[position] = found[position + 1] = path
    return found


@dataclass(frozen=True, slots=True)
class LineLayout:
    """What a header + line-loop set (850, 855, 810) looks like as rendered: the
    beginning segment and its fields, the line segment (PO1/IT1) and its fields up
    to the product-id pairs at ``ids_from``, and the DTM qualifiers of the kind's
    contract dates (``dates_prefix`` is where the names sit: ``dates.`` in an order)."""

    header: str
    header_fields: Mapping[int, str]
    line: str
    line_fields: Mapping[int, str]
    ids_from: int
    date_names: Mapping[str, str]
    dates_prefix: str = ""


def locate_line_document(
    segments: Sequence[Segment], layout: LineLayout, rules: DocumentRules
) -> list[Location]:
    """The locations of a rendered 850, 855 or 810 (see :class:`LineLayout`)."""
    where = SetLocations()
    line: str | None = None
    lines = allocations = acknowledgments = line_sacs = document_sacs = 0
    for segment in segments:
        tag = segment[0]
        if tag == layout.header:
            where.add("document", layout.header_fields)
        elif tag == layout.line:
            line = f"document.lines.{lines}"
            lines += 1
            allocations = acknowledgments = line_sacs = 0
            where.add(line, product_id_fields(segment, layout.ids_from, rules, layout.line_fields))
        elif tag == "DTM":
            name = date_name(text(segment, 1), layout.date_names, rules)
            field = f"{layout.dates_prefix}{name}" if name is not None else ""
            where.add(line or "document", {1: field, 2: field} if field else _NO_FIELDS)
        elif tag == "PID" and line is not None:
            where.add(line, PID_FIELDS)
        elif tag == "SDQ" and line is not None:
            fields = {1: "uom"}
            for number, position in enumerate(range(3, len(segment), 2), start=allocations):
                at = f"allocations.{number}"
                fields[position], fields[position + 1] = f"{at}.location_id", f"{at}.quantity"
            allocations += len(range(3, len(segment), 2))
            where.add(line, fields)
        elif tag == "ACK" and line is not None:
            where.add(f"{line}.acknowledgments.{acknowledgments}", ACK_FIELDS)
            acknowledgments += 1
        elif tag == "SAC":
            if line is not None:
                where.add(f"{line}.allowances_charges.{line_sacs}", SAC_FIELDS)
                line_sacs += 1
            else:
                where.add(f"document.allowances_charges.{document_sacs}", SAC_FIELDS)
                document_sacs += 1
        elif tag == "TDS":
            line = None  # the summary: its SACs are the document's
            where.add("document", {1: "total_amount"})
        elif tag == "CTT":
            line = None
            where.add("document.lines")
        elif not where.common(segment):
            where.add(line or "document")
    return where.out


def compact_decimal(written: str, max_digits: int) -> str | None:
    """The shortest exact form of an R value (trailing fractional zeros and a leading
    ``0`` before the point dropped: ``12.500`` → ``12.5``, ``0.25`` → ``.25``), or
    None when even that has more than ``max_digits`` digits. Never rounds."""
    sign = "-" if written.startswith("-") else ""
    body = written[len(sign) :]
    if "." in body:
        body = body.rstrip("0").rstrip(".")
        if body.startswith("0."):
            body = body[1:]
    if body in ("", "0"):
        sign, body = "", "0"
    return sign + body if sum(c.isdigit() for c in body) <= max_digits else None


def check_rendered(
    segments: list[Segment],
    *,
    version: str,
    locate: Locator,
    delimiters: Delimiters | None = None,
) -> list[Segment]:
    """Validate one rendered ST..SE set and return it ready to write, or raise
    :class:`RenderValidationError` with a :class:`FieldError` per finding.

    Before judging: a TD5 with no element at all (an all-null carrier) carries
    nothing and is left out (SE01 recounted), and an R element longer than its
    grammar allows is written in its shortest exact form when that fits. Nothing is
    ever rounded or cut.
    ``version`` is the GS08 the set will be sent under; the 004010 grammar judges a
    version no grammar is shipped for. ``delimiters`` are the ones it will be written
    with (they decide what a repetition is); default: the writer's.
    """
    body = [s for s in segments if s[0] not in EMPTY_MEANS_NOTHING or any(s[1:])]
    if len(body) != len(segments) and body[-1][0] == "SE":
        body[-1] = ["SE", str(len(body)), *body[-1][2:]]
    set_id = body[0][1]
    grammar = load_grammar(set_id, version) or load_grammar(set_id, DEFAULT_VERSION)
    if grammar is None:
        return body
    tset = _rendered_set(body, grammar.version, delimiters or Delimiters())
    outcome = validate_set(tset, grammar)
    if outcome.accepted:
        return body
    placed = _placed_rules(body, grammar)
    if _compact_decimals(body, outcome.segment_errors, placed):
        outcome = validate_set(tset, grammar)
        if outcome.accepted:
            return body
    locations = locate(body)
    found = (
        error
        for segment_error in outcome.segment_errors
        for error in _field_errors(segment_error, body, placed, locations, tset.interchange.delimiters)
    )
    errors = list(dict.fromkeys(found))  # once each (the third and fourth N2 of a name say the same)
    if not errors:
        codes = ", ".join(code.value for code in outcome.set_errors)
        errors = [FieldError("document", "SE", f"the set is rejected with AK5 code(s) {codes}", codes)]
    raise RenderValidationError(f"the rendered {set_id} ({grammar.version} grammar)", errors)


def _rendered_set(segments: list[Segment], version: str, delimiters: Delimiters) -> TransactionSet:
    """The set as the envelope reader would hand it to validation."""
    interchange = InterchangeHeader(
        sender_qualifier="ZZ",
        sender_id="",
        receiver_qualifier="ZZ",
        receiver_id="",
        date="",
        time="",
        standards_id=delimiters.repetition or "U",
        version=version[:5],
        control_number="",
        ack_requested=False,
        usage="P",
        delimiters=delimiters,
        segment=["ISA"],
    )
    group = GroupHeader(
        functional_id="",
        sender_id="",
        receiver_id="",
        date="",
        time="",
        control_number="",
        agency="X",
        version=version,
        segment=["GS"],
    )
    st = segments[0]
    return TransactionSet(
        set_id=st[1],
        control_number=st[2] if len(st) > 2 else "",
        implementation_reference=(st[3] or None) if len(st) > 3 else None,
        segments=segments,
        interchange=interchange,
        group=group,
    )


def _placed_rules(segments: list[Segment], grammar: Grammar) -> list[SegmentRule | None]:
    """The grammar rule each segment was validated against (None: it had no place)."""
    first = grammar.root.children[0]
    placed: list[SegmentRule | None] = [first if isinstance(first, SegmentRule) else None]
    cursor = grammar.cursor()
    placed.extend(cursor.place(segment[0])[0] for segment in segments[1:])
    return placed


def _element_rule(rule: SegmentRule | None, error: ElementError) -> ElementRule | None:
    if rule is None or rule.elements is None or not 0 < error.position <= len(rule.elements):
        return None
    part = rule.elements[error.position - 1]
    if isinstance(part, CompositeRule):
        if error.component is None or not 0 < error.component <= len(part.components):
            return None
        return part.components[error.component - 1]
    return part


def _compact_decimals(
    segments: list[Segment], errors: Sequence[SegmentError], placed: list[SegmentRule | None]
) -> bool:
    """Rewrite each too-long R element in its shortest exact form when that fits;
    True when anything changed."""
    changed = False
    for segment_error in errors:
        segment = segments[segment_error.position - 1] if segment_error.position <= len(segments) else None
        for error in segment_error.elements:
            if segment is None or error.code is not ElementSyntaxCode.TOO_LONG or error.component is not None:
                continue
            part = _element_rule(placed[segment_error.position - 1], error)
            if part is None or part.data_type != "R" or error.position >= len(segment):
                continue
            shorter = compact_decimal(segment[error.position], part.max_length)
            if shorter is not None:
                segment[error.position] = shorter
                changed = True
    return changed


def _field_errors(
    error: SegmentError,
    segments: list[Segment],
    placed: list[SegmentRule | None],
    locations: list[Location],
    delimiters: Delimiters,
) -> list[FieldError]:
    index = error.position - 1
    owner, fields = locations[index] if 0 <= index < len(locations) else ("document", _NO_FIELDS)
    if not error.elements:
        loc = owner
        if len(set(fields.values())) == 1:  # a segment that carries one field (N2: the name)
            loc = f"{owner}.{next(iter(fields.values()))}"
        if error.code is SegmentSyntaxCode.MANDATORY_MISSING:
            loc = MISSING_SEGMENT_FIELDS.get(error.tag, "document")
        rule = placed[index] if 0 <= index < len(placed) else None
        return [FieldError(loc, error.tag, _segment_message(error, rule), error.code.value)]
    segment = segments[index]
    rule = placed[index]
    found: list[FieldError] = []
    for found_error in error.elements:
        field = fields.get(found_error.position)
        loc = f"{owner}.{field}" if field else owner
        if error.tag in ("ST", "SE"):
            loc = "control_number"  # ST02/SE02: the caller's, not the document's
        name = f"{error.tag}{found_error.position:02d}"
        if found_error.component is not None:
            name += f"-{found_error.component:02d}"
        message = _element_message(name, error.tag, found_error, rule, segment, delimiters)
        found.append(FieldError(loc, name, message, found_error.code.value))
    return found


def _segment_message(error: SegmentError, rule: SegmentRule | None) -> str:
    tag, code = error.tag, error.code
    if code is SegmentSyntaxCode.MANDATORY_MISSING:
        inside = f" in the {error.loop_id} loop" if error.loop_id and error.loop_id != tag else ""
        return f"segment {tag} is required{inside}"
    if code is SegmentSyntaxCode.SEGMENT_OVER_MAX_USE:
        limit = f"at most {rule.max_use} time(s)" if rule is not None else "fewer times"
        return f"segment {tag} may be used {limit} here"
    if code is SegmentSyntaxCode.LOOP_OVER_MAX:
        return f"the {error.loop_id or tag} loop is repeated more often than the grammar allows"
    return f"segment {tag} is not allowed here (AK304 {code.value}, {code.name.lower().replace('_', ' ')})"


def _digits(written: str) -> int:
    return sum(c.isdigit() for c in written)


def _element_message(
    name: str,
    tag: str,
    error: ElementError,
    rule: SegmentRule | None,
    segment: Segment,
    delimiters: Delimiters,
) -> str:
    code = error.code
    part = _element_rule(rule, error)
    written = error.value if error.value is not None else element(segment, error.position)
    numeric = part is not None and (part.data_type.startswith("N") or part.data_type == "R")
    if code is ElementSyntaxCode.MANDATORY_MISSING:
        return f"{name} is required"
    if code in (ElementSyntaxCode.CONDITIONAL_MISSING, ElementSyntaxCode.EXCLUSION_VIOLATED):
        return _syntax_message(name, tag, error.position, rule, segment)
    if code in (ElementSyntaxCode.TOO_LONG, ElementSyntaxCode.TOO_SHORT) and part is not None:
        size, unit = (_digits(written), "digits") if numeric else (len(written), "characters")
        if code is ElementSyntaxCode.TOO_LONG:
            return f"{name} is at most {part.max_length} {unit}, got {size}"
        return f"{name} is at least {part.min_length} {unit}, got {size}"
    if code is ElementSyntaxCode.INVALID_CHARACTER:
        if part is not None and part.data_type.startswith("N") and "." in written:
            places = part.data_type[1:] or "0"
            return f"{name} has {places} implied decimal places: {written} cannot be written without rounding"
        if numeric:
            return f"{name} must be a number, got {written!r}"
        return f"{name} holds a character X12 does not allow: {written!r}"
    if code is ElementSyntaxCode.INVALID_CODE:
        return f"{name} {written!r} is not a code this element allows"
    if code is ElementSyntaxCode.INVALID_DATE:
        return f"{name} {written!r} is not a valid date"
    if code is ElementSyntaxCode.INVALID_TIME:
        return f"{name} {written!r} is not a valid time"
    if code is ElementSyntaxCode.TOO_MANY_ELEMENTS:
        return f"{tag} has no element {error.position}"
    if code is ElementSyntaxCode.TOO_MANY_REPETITIONS:
        return f"{name} {written!r} holds the repetition separator {delimiters.repetition!r}"
    if code is ElementSyntaxCode.TOO_MANY_COMPONENTS:
        return f"{name} {written!r} holds the component separator {delimiters.component!r}"
    return f"{name} {written!r} is invalid (AK403 {code.value}, {code.name.lower().replace('_', ' ')})"


def _syntax_message(name: str, tag: str, position: int, rule: SegmentRule | None, segment: Segment) -> str:
    """Which syntax note ``position`` breaks, in words."""

    def present(p: int) -> bool:
        return p < len(segment) and bool(segment[p])

    def names(positions: Iterable[int]) -> str:
        return ", ".join(f"{tag}{p:02d}" for p in positions)

    for note in rule.syntax if rule is not None else ():
        positions = note.positions
        if position not in positions:
            continue
        label = f"syntax note {note.kind}{''.join(f'{p:02d}' for p in positions)}"
        given = [p for p in positions if present(p)]
        if note.kind == "P" and given and len(given) < len(positions):
            verb = "is" if len(given) == 1 else "are"
            return f"{name} is required when {names(given)} {verb} present ({label}: all or none)"
        if note.kind == "R" and not given:
            return f"one of {names(positions)} is required ({label})"
        if note.kind == "C" and present(positions[0]) and position != positions[0]:
            return f"{name} is required when {tag}{positions[0]:02d} is present ({label})"
        if note.kind == "L" and present(positions[0]) and len(given) == 1:
            return (
                f"one of {names(positions[1:])} is required when {tag}{positions[0]:02d} is present ({label})"
            )
        if note.kind == "E" and len(given) > 1:
            return f"only one of {names(given)} may be present ({label})"
    return f"{name} breaks a syntax note of {tag}"
