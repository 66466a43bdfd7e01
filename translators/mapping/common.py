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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Protocol

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
from translators.mapping.errors import MappingError
from translators.mapping.rules import DocumentRules
from translators.x12.codes import ElementSyntaxCode, SegmentSyntaxCode
from translators.x12.model import (
    Segment,
)

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
    if position < len(segment):  # value(), inlined: this is on every line's path
        raw = segment[position].strip()
        if raw:
            return parse_decimal(raw)
    return None


def implied_at(segment: Segment, position: int, places: int) -> Decimal | None:
    """An Nn (implied decimal) element, None when empty or not a number."""
    raw = value(segment, position)
    return implied_decimal(raw, places) if raw else None


def int_at(segment: Segment, position: int) -> int | None:
    """An integer element, None when empty or not an integer."""
    if position < len(segment):
        raw = segment[position].strip()
        if raw.isascii() and raw.isdigit():  # plain digits, the usual case: no Decimal
            return int(raw)
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
    get = fields.get
    # every field named: the constructor's fast path (a partial call fills defaults)
    return new_product_ids(
        upc=get("upc"),
        ean=get("ean"),
        gtin=get("gtin"),
        vendor_item=get("vendor_item"),
        buyer_item=get("buyer_item"),
        sku=get("sku"),
        manufacturer_part=get("manufacturer_part"),
        other=other,
    )


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


class LineItem(Protocol):
    """What a PO1 line of an 850 and of an 855 share."""

    @property
    def line_number(self) -> str | None: ...
    @property
    def quantity(self) -> Decimal | None: ...
    @property
    def uom(self) -> str | None: ...
    @property
    def unit_price(self) -> Decimal | None: ...
    @property
    def price_basis(self) -> str | None: ...
    @property
    def product_ids(self) -> ProductIds: ...
    @property
    def description(self) -> str | None: ...


def po1_segments(line: LineItem, rules: DocumentRules) -> list[Segment]:
    """PO1 (and PID when the line has a description), as 850 and 855 write them."""
    segments = [
        seg(
            "PO1",
            line.line_number,
            r(line.quantity),
            line.uom,
            r(line.unit_price),
            line.price_basis,
            *flatten_pairs(product_id_pairs(line.product_ids, rules)),
        )
    ]
    if line.description:
        segments.append(seg("PID", "F", None, None, None, line.description))
    return segments


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
