"""855 purchase order acknowledgment ↔ canonical :class:`OrderAck`, both directions.

``order_ack_from_x12`` reads a transaction set the envelope reader produced;
``render_order_ack`` writes ST..SE for the envelope writer. Partner overrides come
from ``MappingRules.order_ack``. Reading never raises anything but
:class:`MappingError`; rendering raises :class:`RenderError` when a value X12
requires is missing.

Layout read (855.004010/005010): the heading level (BAK, CUR, REF: the heading
segments before its N9, N1 and ADV loops, without the SAC loop among them, whose CUR
is the charge's currency) and the heading N1 loops (pos 310; their REFs follow the
heading ones in ``references``), up to the first PO1 (or CTT/SE when there are no
lines); then one PO1 loop per line (PO1, PID, ACK; segments after a line-level N1 or
SCH are not the line's) up to the next PO1 or the summary (CTT/SE).
AMT is not a boundary: the 855 grammar has an AMT in each PO1 loop (pos 310, after
ACK) and one in the CTT loop; amounts are not part of the contract. CTT01, when
present, must equal the number of PO1 loops read unless the partner's
``line_count`` rule is ``ignore``. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from translators.canonical.common import Party, Reference, format_date
from translators.canonical.order import PURPOSE_BY_CODE
from translators.canonical.order_ack import LineAcknowledgment, OrderAck, OrderAckLine
from translators.mapping.common import (
    check_required_references,
    decimal_at,
    flatten_pairs,
    frame,
    pairs,
    party_segments,
    po1_segments,
    product_id_pairs,
    r,
    read_dtm,
    read_party,
    read_product_ids,
    read_reference,
    reference_segment,
    seg,
    text,
    value,
)
from translators.mapping.details import (
    characteristic,
    characteristic_segments,
    note_segments,
    notes_of,
    read_totals,
    totals_segments,
)
from translators.mapping.errors import MappingError
from translators.mapping.order import check_line_count, split_heading
from translators.mapping.rules import MappingRules, OrderAckRules
from translators.x12.codes import ElementSyntaxCode, SegmentSyntaxCode
from translators.x12.errors import RenderError
from translators.x12.model import Segment, TransactionSet

__all__ = ["order_ack_from_x12", "render_order_ack"]

CODE_BY_PURPOSE: dict[str, str] = {word: code for code, word in PURPOSE_BY_CODE.items()}
# The summary area starts at CTT (its AMT, CTT loop pos 020, comes after it); an AMT
# before CTT is a line's (855.004010/005010 PO1 loop pos 310) and ends nothing.
SUMMARY_TAGS = frozenset({"CTT", "SE"})
LINE_END_TAGS = frozenset({"N1", "SCH", "SLN"})
ACK_IDS_END = 29  # ACK07/ACK08 .. ACK27/ACK28: product id pairs (ACK29 is an industry code)
# The heading SAC loop (pos 110: SAC CUR) sits among the heading-level segments; the
# N9 (300), N1 (310) and ADV (320) loops come after them, the N1 loops before ADV.
HEADING_INNER_LOOPS: dict[str, frozenset[str]] = {"SAC": frozenset({"CUR"})}
HEADING_LOOP_TAGS = frozenset({"N9", "N1", "ADV"})
AFTER_PARTY_LOOP_TAGS = frozenset({"ADV"})
# The heading N1 loop's segments after its N1 (004010: N2 N3 N4 NX2 REF PER SI FOB
# TD1 TD5 TD3 TD4 PKG MSG; 005010 adds IN2 after N2 and has MTX for MSG).
PARTY_MEMBER_TAGS = frozenset(
    {
        "N2",
        "IN2",
        "N3",
        "N4",
        "NX2",
        "REF",
        "PER",
        "SI",
        "FOB",
        "TD1",
        "TD5",
        "TD3",
        "TD4",
        "PKG",
        "MSG",
        "MTX",
    }
)


# --------------------------------------------------------------------------- X12 → canonical


def order_ack_from_x12(tset: TransactionSet, rules: MappingRules) -> OrderAck:
    """Map one 855 transaction set to an :class:`OrderAck`."""
    doc_rules = rules.order_ack
    segments = [s for s in tset.segments if s and s[0] and s[0] not in ("ST", "SE")]
    first_line = next(
        (i for i, s in enumerate(segments) if s[0] == "PO1" or s[0] in SUMMARY_TAGS), len(segments)
    )
    header = segments[:first_line]

    bak = next((s for s in header if s[0] == "BAK"), None)
    if bak is None:
        raise MappingError(
            "855 has no BAK segment", segment="BAK", segment_code=SegmentSyntaxCode.MANDATORY_MISSING
        )
    po_number = _required(bak, 3, "purchase order number")
    ack_type = _required(bak, 2, "acknowledgment type")

    heading, party_loops = split_heading(
        header, HEADING_INNER_LOOPS, HEADING_LOOP_TAGS, AFTER_PARTY_LOOP_TAGS, PARTY_MEMBER_TAGS
    )
    references: list[Reference] = []
    currency: str | None = None
    for segment in heading:
        if segment[0] == "REF":
            references.append(read_reference(segment, doc_rules))
        elif segment[0] == "CUR" and currency is None:
            currency = value(segment, 2)
    parties: list[Party] = []
    for loop in party_loops:
        party, party_refs = read_party(loop, doc_rules)
        parties.append(party)
        references.extend(party_refs)
    check_required_references(references, doc_rules, "855")

    loops, end = _line_loops(segments, first_line)
    check_line_count(segments, end, len(loops), "855", policy=doc_rules.line_count)
    purpose_code = text(bak, 1)
    summary = segments[end:]
    ctt = summary[0] if summary and summary[0][0] == "CTT" else None
    return OrderAck(
        po_number=po_number,
        ack_type=ack_type,
        purpose=PURPOSE_BY_CODE.get(purpose_code, purpose_code),
        po_date=read_dtm(["DTM", "", text(bak, 4)])[1],
        release_number=value(bak, 5),
        ack_date=read_dtm(["DTM", "", text(bak, 9)])[1],
        currency=currency,
        references=tuple(references),
        parties=tuple(parties),
        lines=tuple(_line(loop, doc_rules) for loop in loops),
        notes=tuple(
            notes_of(header[: next((i for i, s in enumerate(header) if s[0] == "ADV"), len(header))])
        ),
        totals=read_totals(ctt, [s for s in summary if s[0] == "AMT"], len(loops)),
    )


def _required(bak: Segment, position: int, what: str) -> str:
    found = value(bak, position)
    if found is None:
        raise MappingError(
            f"855 BAK{position:02d} ({what}) is empty",
            segment="BAK",
            segment_code=SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
            element=position,
            element_code=ElementSyntaxCode.MANDATORY_MISSING,
        )
    return found


def _line_loops(segments: Sequence[Segment], start: int) -> tuple[list[Sequence[Segment]], int]:
    """The PO1 loops from ``start`` (each to the next PO1 or CTT/SE), and the index
    where they end."""
    loops: list[Sequence[Segment]] = []
    index = start
    while index < len(segments) and segments[index][0] == "PO1":
        end = index + 1
        while end < len(segments) and segments[end][0] != "PO1" and segments[end][0] not in SUMMARY_TAGS:
            end += 1
        loops.append(segments[index:end])
        index = end
    return loops, index


def _line(loop: Sequence[Segment], rules: OrderAckRules) -> OrderAckLine:
    po1 = loop[0]
    descriptions: list[str] = []
    traits: dict[str, str] = {}
    acknowledgments: list[LineAcknowledgment] = []
    for segment in loop[1:]:
        tag = segment[0]
        if tag in LINE_END_TAGS:
            break
        if tag == "PID" and text(segment, 1) == "F" and value(segment, 5):
            which = characteristic(segment)[0]
            if which is None:
                descriptions.append(text(segment, 5))
            else:
                traits.setdefault(which, text(segment, 5))
        elif tag == "ACK" and value(segment, 1):
            acknowledgments.append(
                LineAcknowledgment(
                    status=text(segment, 1),
                    quantity=decimal_at(segment, 2),
                    uom=value(segment, 3),
                    date_qualifier=value(segment, 4),
                    date=read_dtm(["DTM", "", text(segment, 5)])[1],
                    product_ids=read_product_ids(pairs(segment, 7, ACK_IDS_END), rules),
                )
            )
    return OrderAckLine(
        line_number=value(po1, 1),
        quantity=decimal_at(po1, 2),
        uom=value(po1, 3),
        unit_price=decimal_at(po1, 4),
        price_basis=value(po1, 5),
        product_ids=read_product_ids(pairs(po1, 6), rules),
        description=" ".join(descriptions) or None,
        status=acknowledgments[0].status if acknowledgments else None,
        acknowledgments=tuple(acknowledgments),
        color=traits.get("color"),
        size=traits.get("size"),
    )


# --------------------------------------------------------------------------- canonical → X12


def render_order_ack(doc: OrderAck, rules: MappingRules, control_number: str) -> list[Segment]:
    """Write an :class:`OrderAck` as an 855 (ST..SE, SE01 counted)."""
    doc_rules = rules.order_ack
    if doc.po_date is None:
        raise RenderError(f"order ack for {doc.po_number}: BAK04 (purchase order date) is required")
    body: list[Segment] = [
        seg(
            "BAK",
            CODE_BY_PURPOSE.get(doc.purpose, doc.purpose),
            doc.ack_type,
            doc.po_number,
            format_date(doc.po_date),
            doc.release_number,
            None,
            None,
            None,
            format_date(doc.ack_date) if doc.ack_date else None,
        )
    ]
    if doc.currency:
        body.append(seg("CUR", "SE", doc.currency))
    body.extend(reference_segment(ref, doc_rules) for ref in doc.references)
    for note in doc.notes:
        body.extend(note_segments(note))
    for party in doc.parties:
        body.extend(party_segments(party, doc_rules))
    for line in doc.lines:
        body.extend(_line_segments(line, doc_rules))
    body.extend(totals_segments(doc.totals, len(doc.lines)))
    return frame("855", control_number, body)


def _line_segments(line: OrderAckLine, rules: OrderAckRules) -> list[Segment]:
    segments = po1_segments(line, rules)
    segments.extend(characteristic_segments(line.color, line.size))
    for ack in line.acknowledgments:
        qualifier = ack.date_qualifier or (rules.ack_date_qualifier if ack.date else None)
        segments.append(
            seg(
                "ACK",
                ack.status,
                r(ack.quantity),
                ack.uom,
                qualifier,
                format_date(ack.date) if ack.date else None,
                *(
                    [None, *flatten_pairs(product_id_pairs(ack.product_ids, rules))]
                    if not ack.product_ids.is_empty()
                    else []
                ),
            )
        )
    return segments
