"""X12 ↔ canonical helpers shared by every document mapper.

Readers turn segments into canonical pieces: N1 loops into :class:`Party`, REF into
:class:`Reference`, DTM into dates, qualifier/id pairs into :class:`ProductIds`,
ITD into :class:`Terms`, TD5 into :class:`Carrier`, SAC into
:class:`AllowanceCharge`. Writers do the inverse and build the ST..SE frame.
Partner overrides (:class:`DocumentRules`) are applied here so that every mapper
treats them alike. :func:`check_rendered` validates a rendered set against its
grammar and names the canonical field behind every finding.

Input values are stripped of surrounding blanks; an empty element is None. Readers
never raise anything but :class:`MappingError`. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from translators.canonical.common import (
    PRODUCT_ID_FIELDS,
    AllowanceCharge,
    Carrier,
    Party,
    ProductIds,
    Reference,
    Terms,
    format_date,
    format_decimal_n,
    format_decimal_r,
    implied_decimal,
    parse_date,
    parse_decimal,
    trusted,
)
from translators.mapping.errors import FieldError, MappingError, RenderValidationError
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

# N101 entity codes with a canonical name; the others become their code lowercased.
ROLE_BY_CODE: dict[str, str] = {
    "ST": "ship_to",
    "BT": "bill_to",
    "BY": "buyer",
    "VN": "vendor",
    "SU": "supplier",
    "SF": "ship_from",
    "RI": "remit_to",
}
CODE_BY_ROLE: dict[str, str] = {role: code for code, role in ROLE_BY_CODE.items()}

# Product-id qualifiers with a canonical field; the first listed is written outbound.
FIELD_BY_QUALIFIER: dict[str, str] = {
    "UP": "upc",
    "EN": "ean",
    "UK": "gtin",
    "VP": "vendor_item",
    "VN": "vendor_item",
    "IN": "buyer_item",
    "BP": "buyer_item",
    "SK": "sku",
    "MG": "manufacturer_part",
}
_PRODUCT_ID_FIELD_SET = frozenset(PRODUCT_ID_FIELDS)
QUALIFIER_BY_FIELD: dict[str, str] = {}
for _qualifier, _field in FIELD_BY_QUALIFIER.items():
    QUALIFIER_BY_FIELD.setdefault(_field, _qualifier)

BASIC_TERMS = "01"  # ITD01 terms type code: basic
# N102, N201 and N202 are AN 1/60 in every version we ship: a longer name goes on
# in N2 segments.
NAME_WIDTH = 60

# Segments that belong to an N1 loop when they follow its N1.
PARTY_LOOP_TAGS = frozenset({"N2", "N3", "N4", "NX2", "REF", "PER", "SI"})

# Constructors that skip pydantic's run-time validation: every call below passes
# values of the exact field types (mypy checks the calls against the models'
# signatures), which is what validation would have produced. See ``trusted``.
new_reference = trusted(Reference)
new_party = trusted(Party)
new_product_ids = trusted(ProductIds)
new_terms = trusted(Terms)
new_carrier = trusted(Carrier)
new_allowance_charge = trusted(AllowanceCharge)

# --------------------------------------------------------------------------- element access


def value(segment: Segment, position: int) -> str | None:
    """Element ``position`` (1-based) stripped of blanks, None when absent or empty."""
    if position < len(segment):
        text = segment[position].strip()
        if text:
            return text
    return None


def text(segment: Segment, position: int) -> str:
    """Element ``position`` stripped, ``""`` when absent."""
    return value(segment, position) or ""


def decimal_at(segment: Segment, position: int) -> Decimal | None:
    """An R (explicit decimal) element, None when empty or not a number."""
    raw = value(segment, position)
    return parse_decimal(raw) if raw else None


def implied_at(segment: Segment, position: int, places: int) -> Decimal | None:
    """An Nn (implied decimal) element, None when empty or not a number."""
    raw = value(segment, position)
    return implied_decimal(raw, places) if raw else None


def int_at(segment: Segment, position: int) -> int | None:
    """An integer element, None when empty or not an integer."""
    number = decimal_at(segment, position)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def pairs(segment: Segment, start: int, stop: int | None = None) -> Iterator[tuple[str, str]]:
    """Qualifier/value pairs from ``start`` (e.g. PO106/PO107, PO108/PO109 ...),
    skipping pairs where either half is empty."""
    end = len(segment) if stop is None else min(stop, len(segment))
    for position in range(start, end, 2):
        qualifier, data = value(segment, position), value(segment, position + 1)
        if qualifier and data:
            yield qualifier, data


def loop_end(segments: Sequence[Segment], start: int, members: frozenset[str]) -> int:
    """Index after the loop that begins at ``start``: its head plus every following
    segment whose tag is in ``members``."""
    index = start + 1
    while index < len(segments) and segments[index][0] in members:
        index += 1
    return index


# --------------------------------------------------------------------------- readers


def read_reference(segment: Segment, rules: DocumentRules) -> Reference:
    """REF → Reference, with the partner's qualifier translated to ours."""
    qualifier = text(segment, 1)
    return new_reference(
        qualifier=rules.reference_qualifiers.get(qualifier, qualifier),
        value=value(segment, 2),
        description=value(segment, 3),
    )


def role_for(code: str, rules: DocumentRules) -> str:
    """The canonical role of an N101 code, applying the partner's overrides."""
    if code in rules.party_roles:
        return rules.party_roles[code]
    if code in ROLE_BY_CODE:
        return ROLE_BY_CODE[code]
    if rules.unknown_codes == "reject":
        raise MappingError(
            f"unknown party code N101 {code!r} (this partner's rules reject unknown codes)",
            segment="N1",
            segment_code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
            element=1,
            element_code=ElementSyntaxCode.INVALID_CODE,
        )
    return code.lower()


def read_party(loop: Sequence[Segment], rules: DocumentRules) -> tuple[Party, list[Reference]]:
    """One N1 loop (``loop[0]`` is the N1) → the Party and the REFs inside the loop."""
    n1 = loop[0]
    names = [name for name in (value(n1, 2),) if name]
    lines: list[str] = []
    city = state = postal = country = None
    references: list[Reference] = []
    for segment in loop[1:]:
        tag = segment[0]
        if tag == "N2":
            names.extend(v for v in (value(segment, 1), value(segment, 2)) if v)
        elif tag == "N3":
            lines.extend(v for v in (value(segment, 1), value(segment, 2)) if v)
        elif tag == "N4":
            city, state, postal, country = (value(segment, i) for i in (1, 2, 3, 4))
        elif tag == "REF":
            references.append(read_reference(segment, rules))
    party_id = value(n1, 4)
    if party_id is not None:
        party_id = rules.locations.get(party_id, party_id)
    party = new_party(
        role=role_for(text(n1, 1), rules),
        name=" ".join(names) or None,
        id_qualifier=value(n1, 3),
        id=party_id,
        address_lines=tuple(lines),
        city=city,
        state=state,
        postal_code=postal,
        country=country,
    )
    return party, references


def read_party_at(
    segments: Sequence[Segment], start: int, rules: DocumentRules
) -> tuple[Party, list[Reference], int]:
    """The N1 loop starting at ``segments[start]``: Party, its REFs, and the index
    after the loop."""
    end = loop_end(segments, start, PARTY_LOOP_TAGS)
    party, references = read_party(segments[start:end], rules)
    return party, references, end


def read_dtm(segment: Segment) -> tuple[str, date | None]:
    """DTM → (qualifier, date); the date is None when missing or invalid. DTM05
    (century) completes a six-digit DTM02."""
    return text(segment, 1), parse_date(text(segment, 2), value(segment, 5))


def date_name(qualifier: str, names: Mapping[str, str], rules: DocumentRules) -> str | None:
    """The canonical date name of a DTM qualifier (``names`` maps our qualifiers to
    names), honouring the partner's own qualifiers; None when not a contract date."""
    for name, partner_qualifier in rules.date_qualifiers.items():
        if partner_qualifier == qualifier:
            return name
    known = names.get(qualifier)
    # Our qualifier for a date the partner sends under another one is not that date.
    if known is not None and known in rules.date_qualifiers:
        return None
    return known


def date_qualifier(name: str, names: Mapping[str, str], rules: DocumentRules) -> str:
    """The DTM qualifier to write for canonical date ``name``."""
    if name in rules.date_qualifiers:
        return rules.date_qualifiers[name]
    for qualifier, known in names.items():
        if known == name:
            return qualifier
    raise MappingError(f"no DTM qualifier for date {name!r}")


def read_product_ids(found: Iterable[tuple[str, str]], rules: DocumentRules) -> ProductIds:
    """Qualifier/id pairs → ProductIds. The first id for a field wins; later ones
    (and unknown qualifiers, when the policy keeps them) go to ``other``."""
    fields: dict[str, str] = {}
    other: dict[str, str] = {}
    inbound = rules.product_ids.inbound
    for qualifier, data in found:
        field = (inbound.get(qualifier) if inbound else None) or FIELD_BY_QUALIFIER.get(qualifier)
        if field is not None and field in _PRODUCT_ID_FIELD_SET and field not in fields:
            fields[field] = data
        elif field is None and rules.unknown_codes == "reject":
            raise MappingError(
                f"unknown product id qualifier {qualifier!r} (this partner's rules reject unknown codes)",
                segment_code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
                element_code=ElementSyntaxCode.INVALID_CODE,
            )
        else:
            other.setdefault(qualifier, data)
    return new_product_ids(**fields, other=other)


def product_ids_at(segment: Segment, start: int, rules: DocumentRules) -> ProductIds:
    """The qualifier/id pairs of ``segment`` from ``start`` on → ProductIds; the same
    as ``read_product_ids(pairs(segment, start), rules)`` without the generator."""
    found: list[tuple[str, str]] = []
    for position in range(start, len(segment) - 1, 2):
        qualifier, data = segment[position].strip(), segment[position + 1].strip()
        if qualifier and data:
            found.append((qualifier, data))
    return read_product_ids(found, rules)


def check_required_references(references: Iterable[Reference], rules: DocumentRules, kind: str) -> None:
    """Raise MappingError when a reference the partner must send is missing."""
    present = {ref.qualifier for ref in references if ref.value or ref.description}
    missing = [q for q in rules.required_references if q not in present]
    if missing:
        raise MappingError(
            f"{kind} lacks required reference(s) REF*{', REF*'.join(missing)}",
            segment="REF",
            segment_code=SegmentSyntaxCode.MANDATORY_MISSING,
        )


def read_terms(segment: Segment) -> Terms:
    """ITD → Terms."""
    return new_terms(
        discount_percent=decimal_at(segment, 3),
        discount_days=int_at(segment, 5),
        net_days=int_at(segment, 7),
        description=value(segment, 12),
    )


def read_carrier(segment: Segment) -> Carrier | None:
    """TD5 → Carrier. TD503 is the SCAC when TD502 is "2" (or left empty). None when
    the TD5 holds none of the contract's values (``TD5*B*92*X``: an id the buyer
    assigned, no SCAC, mode or routing): an all-null carrier says nothing, and it
    could not be written back (a TD5 needs one of TD502/04/05/06/12)."""
    scac = value(segment, 3) if text(segment, 2) in ("2", "") else None
    mode, routing = value(segment, 4), value(segment, 5)
    if scac is None and mode is None and routing is None:
        return None
    return new_carrier(scac=scac, mode=mode, routing=routing)


def read_allowance_charge(segment: Segment) -> AllowanceCharge:
    """SAC → AllowanceCharge (SAC05 amount has two implied decimals)."""
    indicator = text(segment, 1)
    if indicator not in ("A", "C"):
        raise MappingError(
            f"SAC01 must be A or C, not {indicator!r}",
            segment="SAC",
            segment_code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
            element=1,
            element_code=ElementSyntaxCode.INVALID_CODE,
        )
    return new_allowance_charge(
        type="allowance" if indicator == "A" else "charge",
        code=value(segment, 2),
        amount=implied_at(segment, 5, 2),
        percent=decimal_at(segment, 7),
        description=value(segment, 15),
    )


# --------------------------------------------------------------------------- writers


def trim(segment: Segment) -> Segment:
    """Drop trailing empty elements (X12 forbids them)."""
    end = len(segment)
    while end > 1 and segment[end - 1] == "":
        end -= 1
    return segment[:end]


def seg(tag: str, *elements: str | None) -> Segment:
    """A trimmed segment from optional element values (None → empty)."""
    return trim([tag, *(e if e is not None else "" for e in elements)])


def r(number: Decimal | None) -> str | None:
    """An R element, or None."""
    return format_decimal_r(number) if number is not None else None


def n2(number: Decimal | None) -> str | None:
    """An N2 element (two implied decimals), or None. Money is never rounded: a value
    with significant digits beyond the second decimal is written as its exact
    decimal text, which no N2 element accepts, so validating the rendered set
    (:func:`check_rendered`) refuses it and names the field."""
    if number is None:
        return None
    scaled = number.scaleb(2)
    if scaled != scaled.to_integral_value():
        return format_decimal_r(number)
    return format_decimal_n(number, 2)


def frame(set_id: str, control_number: str, body: Iterable[Segment]) -> list[Segment]:
    """ST + body + SE, with SE01 counting ST through SE."""
    segments: list[Segment] = [["ST", set_id, control_number], *body]
    segments.append(["SE", str(len(segments) + 1), control_number])
    return segments


def reference_segment(reference: Reference, rules: DocumentRules) -> Segment:
    """Reference → REF, with our qualifier translated to the partner's."""
    qualifier = inverse(rules.reference_qualifiers).get(reference.qualifier, reference.qualifier)
    return seg("REF", qualifier, reference.value, reference.description)


def dtm_segment(qualifier: str, when: date) -> Segment:
    return ["DTM", qualifier, format_date(when)]


def party_code(role: str, rules: DocumentRules) -> str:
    """The N101 code to write for a canonical role."""
    for code, known in rules.party_roles.items():
        if known == role:
            return code
    return CODE_BY_ROLE.get(role, role.upper())


def split_name(name: str, width: int = NAME_WIDTH) -> list[str]:
    """``name`` in pieces of at most ``width`` characters for N102, N201, N202...

    Pieces break at a single space (dropped), so joining them with one space, as
    :func:`read_party` does, gives the name back; a word longer than ``width`` is
    cut where it must (the only case where reading it back adds a space).
    """
    pieces: list[str] = []
    rest = name
    while len(rest) > width:
        cut = next(
            (
                i
                for i in range(width, 0, -1)
                if rest[i] == " " and rest[i - 1] != " " and i + 1 < len(rest) and rest[i + 1] != " "
            ),
            None,
        )
        if cut is None:
            pieces.append(rest[:width])
            rest = rest[width:]
        else:
            pieces.append(rest[:cut])
            rest = rest[cut + 1 :]
    pieces.append(rest)
    return pieces


def party_segments(party: Party, rules: DocumentRules) -> list[Segment]:
    """Party → N1 (+ N2 for a name longer than N102 holds, + N3 per two address
    lines, + N4 when any place field is set).

    N103/N104 are a pair (syntax note P0304): a qualifier without an id says nothing
    and is left out. An id without its qualifier is written as it is, so validation
    refuses the set and names ``id_qualifier``: dropping a party's id would lose it.
    """
    party_id = party.id
    if party_id is not None:
        party_id = inverse(rules.locations).get(party_id, party_id)
    qualifier = party.id_qualifier if party_id is not None else None
    names = split_name(party.name) if party.name is not None else [None]
    segments = [seg("N1", party_code(party.role, rules), names[0], qualifier, party_id)]
    for index in range(1, len(names), 2):
        segments.append(seg("N2", *names[index : index + 2]))
    lines = list(party.address_lines)
    for index in range(0, len(lines), 2):
        segments.append(seg("N3", *lines[index : index + 2]))
    if any(v is not None for v in (party.city, party.state, party.postal_code, party.country)):
        segments.append(seg("N4", party.city, party.state, party.postal_code, party.country))
    return segments


def product_id_pairs(ids: ProductIds, rules: DocumentRules) -> list[tuple[str, str]]:
    """ProductIds → qualifier/id pairs: named fields first (in contract order) with
    the partner's qualifiers, then ``other`` in its order."""
    found: list[tuple[str, str]] = []
    for field in PRODUCT_ID_FIELDS:
        data = getattr(ids, field)
        if data is not None:
            qualifier = rules.product_ids.outbound.get(field) or QUALIFIER_BY_FIELD[field]
            found.append((qualifier, data))
    found.extend(ids.other.items())
    return found


def flatten_pairs(found: Iterable[tuple[str, str]]) -> list[str]:
    return [item for pair in found for item in pair]


def terms_segment(terms: Terms) -> Segment:
    """Terms → ITD. Terms with none of the contract's values are written ``ITD*01``
    (01: basic terms, "the usual terms"): an ITD with no element at all is not X12."""
    segment = seg(
        "ITD",
        None,
        None,
        r(terms.discount_percent),
        None,
        str(terms.discount_days) if terms.discount_days is not None else None,
        None,
        str(terms.net_days) if terms.net_days is not None else None,
        None,
        None,
        None,
        None,
        terms.description,
    )
    return segment if len(segment) > 1 else ["ITD", BASIC_TERMS]


def carrier_segment(carrier: Carrier) -> Segment:
    """Carrier → TD5 (TD502 "2" when a SCAC is given)."""
    return seg("TD5", None, "2" if carrier.scac else None, carrier.scac, carrier.mode, carrier.routing)


def allowance_charge_segment(item: AllowanceCharge) -> Segment:
    """AllowanceCharge → SAC (SAC06 percent qualifier 3, discount/gross, when a
    percent is given)."""
    return seg(
        "SAC",
        "A" if item.type == "allowance" else "C",
        item.code,
        None,
        None,
        n2(item.amount),
        "3" if item.percent is not None else None,
        r(item.percent),
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        item.description,
    )


def inverse(mapping: Mapping[str, str]) -> dict[str, str]:
    return {ours: theirs for theirs, ours in mapping.items()}


# --------------------------------------------------------------------------- checking rendered sets
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


def locate_line_document(segments: Sequence[Segment], layout: LineLayout, rules: DocumentRules) -> list[Location]:
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
            return f"one of {names(positions[1:])} is required when {tag}{positions[0]:02d} is present ({label})"
        if note.kind == "E" and len(given) > 1:
            return f"only one of {names(given)} may be present ({label})"
    return f"{name} breaks a syntax note of {tag}"
