"""850 purchase order ↔ canonical :class:`Order`, both directions.

``order_from_x12`` reads a transaction set the envelope reader produced;
``render_order`` writes ST..SE for the envelope writer. Partner overrides come from
``MappingRules.order``. Reading never raises anything but :class:`MappingError`;
rendering raises :class:`RenderError` when a value X12 requires is missing.

Layout read (850.004010/005010): the heading level (BEG, CUR, REF, ITD, DTM, TD5:
the heading segments before its N9, N1, LM, SPI and ADV loops, without the SAC, LDT
and AMT loops among them) and the heading N1 loops, up to the first PO1 (or CTT/SE
when there are no lines); then one PO1 loop per line (PO1, PID, SDQ, DTM; other
segments, line-level N9 and N1 loops and SLN sublines are not part of the contract) up
to the next PO1 or the summary (CTT/SE). A segment belongs to the loop it sits in:
only heading-level REFs (pos 040) and the REFs of heading N1 loops (pos 340) are order
references, only heading N1 loops are parties (an N1 in the SPI loop names a party to
the specification), only heading-level DTMs (pos 160) are order dates, and only a DTM
of the PO1 loop itself (pos 250) a line date: the DTMs of N9, SPI, CB1 and ADV loops
date a note, a specification or an advertisement, not the order. The CUR of a heading
SAC loop is the charge's, not the order's currency; a TD5 inside an N1 loop routes to
that party, it is not the order's carrier. AMT is not a boundary: the 850 grammar
has an AMT loop in the heading (pos 320, before the N1 loops), one in each PO1 loop
(pos 460) and an AMT in the CTT loop; amounts are not part of the contract, and the
heading AMT loop's REF/DTM are the amount's, not the order's. CTT01, when present,
must equal the number of PO1 loops read (see :func:`check_line_count`) unless the
partner's ``line_count`` rule is ``ignore``.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from translators.canonical.common import Carrier, Party, Reference, Terms, format_date, parse_decimal, trusted
from translators.canonical.details import Note, PackDetails
from translators.canonical.order import PURPOSE_BY_CODE, Allocation, Order, OrderDates, OrderLine
from translators.mapping.common import (
    allowance_charge_segment,
    carrier_segment,
    check_required_references,
    date_name,
    date_qualifier,
    dtm_segment,
    frame,
    inverse,
    loop_end,
    party_segments,
    po1_segments,
    product_ids_at,
    r,
    read_allowance_charge,
    read_carrier,
    read_dtm,
    read_party,
    read_reference,
    read_terms,
    reference_segment,
    seg,
    terms_segment,
    text,
    value,
)
from translators.mapping.details import (
    N9_MEMBERS,
    amount_segment,
    characteristic,
    characteristic_segments,
    message_pieces,
    n9_note,
    note_segments,
    notes_of,
    pack_segment,
    read_note,
    read_pack,
    read_totals,
    totals_segments,
)
from translators.mapping.errors import MappingError
from translators.mapping.rules import DocumentRules, LineCountPolicy, MappingRules
from translators.x12.codes import ElementSyntaxCode, SegmentSyntaxCode
from translators.x12.errors import RenderError
from translators.x12.model import Segment, TransactionSet

__all__ = [
    "ORDER_DATE_NAMES",
    "allocation_segments",
    "check_line_count",
    "order_from_x12",
    "read_allocations",
    "render_order",
    "split_heading",
]

# Our DTM01 qualifiers for the contract's order dates.
ORDER_DATE_NAMES: dict[str, str] = {
    "002": "requested_delivery",
    "010": "requested_ship",
    "037": "ship_not_before",
    "038": "ship_no_later",
    "001": "cancel_after",
    "063": "delivery_not_after",
    "064": "delivery_not_before",
    "106": "required_by",
}
CODE_BY_PURPOSE: dict[str, str] = {word: code for code, word in PURPOSE_BY_CODE.items()}
# The summary area starts at CTT (its AMT, CTT loop pos 020, comes after it). An AMT
# before CTT is a heading or line amount (850.004010/005010 heading AMT loop pos 320,
# PO1/AMT loop pos 460) and ends neither the header nor a line.
SUMMARY_TAGS = frozenset({"CTT", "SE"})
# Loops among the heading-level segments (850.004010/005010), each with the segments
# that follow its first one inside it: SAC (pos 120: SAC CUR), LDT (005010 pos 310:
# LDT QTY MTX REF; in 004010 LDT is a heading segment, pos 170, and none of QTY, MTX
# or REF may follow it there) and AMT (pos 320: AMT REF DTM PCT, FA1 loop FA1 FA2).
# Their CUR, REF and DTM are the charge's, the lead time's and the amount's.
HEADING_INNER_LOOPS: dict[str, frozenset[str]] = {
    "SAC": frozenset({"CUR"}),
    "LDT": frozenset({"QTY", "MTX", "REF"}),
    "AMT": frozenset({"REF", "DTM", "PCT", "FA1", "FA2"}),
}
# The heading loops after the heading level, in grammar order: N9 (330), N1 (340),
# LM (350), SPI (360), ADV (370). The heading level ends at the first of them; the
# heading N1 loops (the parties) sit before any LM, SPI or ADV: an N1 after an SPI
# is the SPI loop's (pos 360/050), not a heading party.
HEADING_LOOP_TAGS = frozenset({"N9", "N1", "LM", "SPI", "ADV"})
AFTER_PARTY_LOOP_TAGS = frozenset({"LM", "SPI", "ADV"})
# The heading N1 loop's segments after its N1 (004010: N2 N3 N4 NX2 REF PER SI FOB
# TD1 TD5 TD3 TD4 PKG; 005010 adds IN2 after N2).
PARTY_MEMBER_TAGS = frozenset(
    {"N2", "IN2", "N3", "N4", "NX2", "REF", "PER", "SI", "FOB", "TD1", "TD5", "TD3", "TD4", "PKG"}
)
# Loops of the PO1 loop after the line DTM (004010 pos 250) whose segments are not
# the line's: N9 (430, with its own DTM), N1 (440, DTM), SLN (450, DTM).
LINE_LOOP_TAGS = frozenset({"N9", "N1", "SLN"})
SDQ_PAIRS = 10  # SDQ03..SDQ22
AC = frozenset({"A", "C"})  # SAC01 of an allowance or a charge (N: neither)
SDQ_END = 3 + 2 * SDQ_PAIRS
# Skip run-time validation: the values below already have the fields' exact types
# (see translators.canonical.common.trusted). A line without dates shares one
# empty (frozen) OrderDates.
new_order_line = trusted(OrderLine)
new_allocation = trusted(Allocation)
new_order_dates = trusted(OrderDates)
NO_DATES = new_order_dates()
DEFAULT_ORDER_TYPE = "SA"  # stand-alone order, written when the document has none


# --------------------------------------------------------------------------- X12 → canonical


def order_from_x12(tset: TransactionSet, rules: MappingRules) -> Order:
    """Map one 850 transaction set to an :class:`Order`."""
    doc_rules = rules.order
    segments = _body(tset.segments)
    first_line = next(
        (i for i, s in enumerate(segments) if s[0] == "PO1" or s[0] in SUMMARY_TAGS), len(segments)
    )
    header = segments[:first_line]
    heading, party_loops = split_heading(
        header, HEADING_INNER_LOOPS, HEADING_LOOP_TAGS, AFTER_PARTY_LOOP_TAGS, PARTY_MEMBER_TAGS
    )

    beg = next((s for s in header if s[0] == "BEG"), None)
    if beg is None:
        raise MappingError(
            "850 has no BEG segment", segment="BEG", segment_code=SegmentSyntaxCode.MANDATORY_MISSING
        )
    po_number = value(beg, 3)
    if po_number is None:
        raise MappingError(
            "850 BEG03 (purchase order number) is empty",
            segment="BEG",
            segment_code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
            element=3,
            element_code=ElementSyntaxCode.MANDATORY_MISSING,
        )

    references: list[Reference] = []
    currency: str | None = None
    terms: Terms | None = None
    carrier: Carrier | None = None
    for segment in heading:
        tag = segment[0]
        if tag == "REF":
            references.append(read_reference(segment, doc_rules))
        elif tag == "CUR" and currency is None:
            currency = value(segment, 2)
        elif tag == "ITD" and terms is None:
            terms = read_terms(segment)
        elif tag == "TD5" and carrier is None:
            carrier = read_carrier(segment)
    parties: list[Party] = []
    for loop in party_loops:
        party, party_refs = read_party(loop, doc_rules)
        parties.append(party)
        references.extend(party_refs)
    check_required_references(references, doc_rules, "850")

    lines, end = _lines(segments, first_line, doc_rules)
    check_line_count(segments, end, len(lines), "850", policy=doc_rules.line_count)
    purpose_code = text(beg, 1)
    summary = segments[end:]
    ctt = summary[0] if summary and summary[0][0] == "CTT" else None
    amounts = [s for s in header if s[0] == "AMT"] + [s for s in summary if s[0] == "AMT"]
    return Order(
        po_number=po_number,
        po_date=read_dtm(["DTM", "", text(beg, 5)])[1],
        purpose=PURPOSE_BY_CODE.get(purpose_code, purpose_code),
        order_type=value(beg, 2),
        release_number=value(beg, 4),
        currency=currency,
        references=tuple(references),
        dates=_dates(heading, doc_rules),
        parties=tuple(parties),
        terms=terms,
        carrier=carrier,
        lines=lines,
        contract_number=value(beg, 6),
        allowances_charges=tuple(
            read_allowance_charge(s) for s in header if s[0] == "SAC" and text(s, 1) in AC
        ),
        notes=tuple(notes_of(_before(header, AFTER_PARTY_LOOP_TAGS))),
        totals=read_totals(ctt, amounts, len(lines)),
    )


def _body(segments: Sequence[Segment]) -> list[Segment]:
    """The segments between ST and SE, each with at least its tag."""
    body = [s for s in segments if s and s[0]]
    if body and body[0][0] == "ST":
        body = body[1:]
    if body and body[-1][0] == "SE":
        body = body[:-1]
    return body


def split_heading(
    header: Sequence[Segment],
    inner_loops: Mapping[str, frozenset[str]],
    loop_tags: frozenset[str],
    after_party_tags: frozenset[str],
    party_members: frozenset[str],
) -> tuple[list[Segment], list[Sequence[Segment]]]:
    """The heading level of ``header`` (the segments before its first loop in
    ``loop_tags``, without the ``inner_loops`` among them: a loop's first tag → the
    tags of the rest of it) and its N1 loops (each N1 with the ``party_members`` after
    it) from there up to the first loop in ``after_party_tags``. Everything else (N9
    loops, the loops after the N1 loops and whatever sits inside them) is neither."""
    level: list[Segment] = []
    count = len(header)
    index = 0
    while index < count:
        tag = header[index][0]
        if tag in loop_tags:
            break
        members = inner_loops.get(tag)
        if members is not None:
            index = loop_end(header, index, members)
            continue
        level.append(header[index])
        index += 1
    party_loops: list[Sequence[Segment]] = []
    while index < count:
        tag = header[index][0]
        if tag in after_party_tags:
            break
        if tag == "N1":
            end = loop_end(header, index, party_members)
            party_loops.append(header[index:end])
            index = end
            continue
        index += 1
    return level, party_loops


def check_line_count(
    segments: Sequence[Segment], end: int, lines: int, set_id: str, *, policy: LineCountPolicy = "reject"
) -> None:
    """Reject the set when the CTT at ``segments[end]`` (where the PO1 loops stopped)
    gives a CTT01 other than ``lines``, the number of PO1 loops read: a count that
    disagrees means lines were lost or added on the way. No CTT, an empty CTT01 or a
    non-numeric one (grammar validation reports that) is not checked here, nor is
    anything when ``policy`` (the partner's ``line_count`` rule) is ``ignore``.

    Reported as AK3 ``CTT`` with AK304 8 (segment has data element errors) and AK4 on
    CTT01 with AK403 7. X12 has no code for "value inconsistent with the content";
    7 (invalid code value) is the only AK403/IK403 code that says the value itself is
    unacceptable (the others are about presence, length, characters or date/time
    format). The set code stays AK502 5 (one or more segments in error): AK502 4 is
    about SE01's segment count, not CTT.
    """
    if policy == "ignore" or end >= len(segments) or segments[end][0] != "CTT":
        return
    declared = text(segments[end], 1)
    if not (declared.isascii() and declared.isdigit()) or int(declared) == lines:
        return
    raise MappingError(
        f"{set_id} CTT01 says {int(declared)} line items but the set has {lines} PO1 segments",
        segment="CTT",
        segment_code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
        element=1,
        element_code=ElementSyntaxCode.INVALID_CODE,
        switch="line_count",
    )


def _dates(segments: Sequence[Segment], rules: DocumentRules) -> OrderDates:
    found: dict[str, date] = {}
    for segment in segments:
        if segment[0] != "DTM":
            continue
        qualifier, when = read_dtm(segment)
        name = date_name(qualifier, ORDER_DATE_NAMES, rules)
        if name is not None and when is not None:
            found.setdefault(name, when)
    return new_order_dates(**found) if found else NO_DATES


def _lines(
    segments: Sequence[Segment], start: int, rules: DocumentRules
) -> tuple[tuple[OrderLine, ...], int]:
    """One OrderLine per PO1 loop from ``start``, and the index where the loops end;
    a loop runs to the next PO1 or the summary (CTT/SE): a line's own AMT loop does
    not end it. One pass, no slices: this is the hot part of an 850."""
    lines: list[OrderLine] = []
    count = len(segments)
    index = start
    while index < count and segments[index][0] == "PO1":
        po1 = segments[index]
        descriptions: list[str] = []
        allocations: list[Allocation] = []
        dtms: list[Segment] = []
        color: str | None = None
        size: str | None = None
        pack: PackDetails | None = None
        charges: list[Segment] = []
        notes: list[Note] = []
        note: tuple[Segment, list[Segment]] | None = None  # the open line N9 loop
        # Segments after a line-level N9 or N1 or an SLN belong to that note, party
        # or subline (their DTMs are not the line's dates): ``own`` turns off there.
        own = True
        index += 1
        while index < count:
            segment = segments[index]
            tag = segment[0]
            if tag == "PO1" or tag in SUMMARY_TAGS:
                break
            index += 1
            if note is not None:
                if tag in N9_MEMBERS:
                    note[1].append(segment)
                    continue
                notes.append(n9_note(*note))
                note = None
            if tag == "N9" and own:  # a line note: its MSGs (and DTMs) follow
                note = (segment, [])
                continue
            if not own:
                continue
            if tag == "PID":
                if len(segment) > 5 and segment[1].strip() == "F":
                    which, description = characteristic(segment)
                    if which == "color":
                        color = color or description
                    elif which == "size":
                        size = size or description
                    elif description:
                        descriptions.append(description)
            elif tag == "MSG" or tag == "MTX":
                notes.append(read_note(segment))
            elif tag == "PO4":
                pack = pack or read_pack(segment)
            elif tag == "SAC":
                if text(segment, 1) in AC:
                    charges.append(segment)
            elif tag == "SDQ":
                allocations.extend(read_allocations(segment, rules))
            elif tag == "DTM":
                dtms.append(segment)
            elif tag in LINE_LOOP_TAGS:
                own = False
        if note is not None:
            notes.append(n9_note(*note))
        # PO101..PO105 stripped, None when empty
        head = [v.strip() or None for v in po1[1:6]]
        head += [None] * (5 - len(head))
        quantity, price = head[1], head[3]
        lines.append(
            new_order_line(
                line_number=head[0],
                quantity=parse_decimal(quantity) if quantity else None,
                uom=head[2],
                unit_price=parse_decimal(price) if price else None,
                price_basis=head[4],
                product_ids=product_ids_at(po1, 6, rules),
                description=" ".join(descriptions) or None,
                allocations=tuple(allocations),
                dates=_dates(dtms, rules) if dtms else NO_DATES,
                color=color,
                size=size,
                pack=pack,
                allowances_charges=tuple(read_allowance_charge(s) for s in charges),
                notes=tuple(notes),
            )
        )
    return tuple(lines), index


def read_allocations(sdq: Segment, rules: DocumentRules) -> list[Allocation]:
    """The location/quantity pairs of an SDQ (SDQ03..SDQ22), locations translated
    by the partner's ``locations``."""
    found: list[Allocation] = []
    locations = rules.locations
    for position in range(3, min(SDQ_END, len(sdq) - 1), 2):
        location, quantity = sdq[position].strip(), sdq[position + 1].strip()
        if location and quantity:
            number = parse_decimal(quantity)
            if number is not None:
                found.append(new_allocation(location_id=locations.get(location, location), quantity=number))
    return found


# --------------------------------------------------------------------------- canonical → X12


def render_order(doc: Order, rules: MappingRules, control_number: str) -> list[Segment]:
    """Write an :class:`Order` as an 850 (ST..SE, SE01 counted). Composite elements,
    if any, use ">" (the envelope writer swaps in the partner's separator)."""
    doc_rules = rules.order
    if doc.po_date is None:
        raise RenderError(f"order {doc.po_number}: BEG05 (purchase order date) is required")
    body: list[Segment] = [
        seg(
            "BEG",
            CODE_BY_PURPOSE.get(doc.purpose, doc.purpose),
            doc.order_type or DEFAULT_ORDER_TYPE,
            doc.po_number,
            doc.release_number,
            format_date(doc.po_date),
            doc.contract_number,
        )
    ]
    if doc.currency:
        body.append(seg("CUR", "BY", doc.currency))
    body.extend(reference_segment(ref, doc_rules) for ref in doc.references)
    body.extend(allowance_charge_segment(item) for item in doc.allowances_charges)
    if doc.terms is not None:
        body.append(terms_segment(doc.terms))
    body.extend(_date_segments(doc.dates, doc_rules))
    if doc.carrier is not None:
        body.append(carrier_segment(doc.carrier))
    # the CTT loop holds one AMT: the others go in the heading AMT loops (read back
    # in the same order: heading first)
    amounts = doc.totals.amounts if doc.totals is not None else ()
    body.extend(amount_segment(a) for a in amounts[:-1])
    for note in doc.notes:
        body.extend(note_segments(note))
    for party in doc.parties:
        body.extend(party_segments(party, doc_rules))
    for line in doc.lines:
        body.extend(_line_segments(line, doc_rules))
    body.extend(totals_segments(doc.totals, len(doc.lines), amounts[-1:]))
    return frame("850", control_number, body)


def _date_segments(dates: OrderDates, rules: DocumentRules) -> list[Segment]:
    return [
        dtm_segment(date_qualifier(name, ORDER_DATE_NAMES, rules), when)
        for name in ORDER_DATE_NAMES.values()
        if (when := getattr(dates, name)) is not None
    ]


def _line_segments(line: OrderLine, rules: DocumentRules) -> list[Segment]:
    segments = po1_segments(line, rules)
    segments.extend(characteristic_segments(line.color, line.size))
    if line.pack is not None and (po4 := pack_segment(line.pack)) is not None:
        segments.append(po4)
    segments.extend(allowance_charge_segment(item) for item in line.allowances_charges)
    segments.extend(allocation_segments(line.allocations, line.uom, rules))
    segments.extend(_date_segments(line.dates, rules))
    # a note without qualifier or reference was a loose MSG of the line; the others
    # are N9 loops, which follow it in the PO1 loop
    loose = [n for n in line.notes if n.qualifier is None and n.reference is None and n.text]
    segments.extend(["MSG", piece] for n in loose for piece in message_pieces(n.text or ""))
    for note in line.notes:
        if note not in loose:
            segments.extend(note_segments(note))
    return segments


def _before(segments: Sequence[Segment], tags: frozenset[str]) -> Sequence[Segment]:
    """``segments`` up to the first whose tag is in ``tags``."""
    end = next((i for i, s in enumerate(segments) if s[0] in tags), len(segments))
    return segments[:end]


def allocation_segments(
    allocations: Sequence[Allocation], uom: str | None, rules: DocumentRules
) -> list[Segment]:
    """Allocations → SDQ segments (ten location/quantity pairs each, SDQ02 92:
    locations are the buyer's codes)."""
    outbound = inverse(rules.locations)
    segments: list[Segment] = []
    for start in range(0, len(allocations), SDQ_PAIRS):
        elements: list[str | None] = [uom or "EA", "92"]
        for allocation in allocations[start : start + SDQ_PAIRS]:
            elements.extend(
                (outbound.get(allocation.location_id, allocation.location_id), r(allocation.quantity))
            )
        segments.append(seg("SDQ", *elements))
    return segments
