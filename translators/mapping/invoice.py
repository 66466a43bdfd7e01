"""X12 810 invoice ↔ canonical :class:`Invoice`, both directions.

Areas are found by position, not by a grammar: the header runs from ST to the first
IT1 (or TDS), each line from its IT1 to the next IT1 or TDS, the summary from TDS on.
A SAC in a line goes to that line's ``allowances_charges``; SACs of the header and
the summary go to the invoice's. ``SAC*N`` (no allowance or charge: Ariba sends it
to carry references) is not an allowance or a charge and is skipped. Of several ITD
segments (tiered terms) the first is the invoice's terms. Segments the contract has
no place for (NTE, FOB, TXI, CAD, ISS, AMT, CTP, line N1 loops) are ignored.

Rendering writes BIG, CUR, REF, N1 loops, ITD, DTM*011, IT1 loops (PID*F, SAC), TDS,
summary SACs and CTT (number of IT1 lines).

It never does I/O and raises nothing but :class:`MappingError` while reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import ValidationError

from translators.canonical.common import AllowanceCharge, Party, Reference, format_date, trusted
from translators.canonical.invoice import Invoice, InvoiceLine
from translators.canonical.order import PURPOSE_BY_CODE
from translators.mapping.common import (
    allowance_charge_segment,
    check_required_references,
    date_name,
    date_qualifier,
    decimal_at,
    dtm_segment,
    flatten_pairs,
    frame,
    implied_at,
    n2,
    pairs,
    party_segments,
    product_id_pairs,
    r,
    read_allowance_charge,
    read_dtm,
    read_party_at,
    read_product_ids,
    read_reference,
    read_terms,
    reference_segment,
    seg,
    terms_segment,
    text,
    value,
)
from translators.mapping.details import (
    amount_segment,
    characteristic,
    characteristic_segments,
    note_segments,
    notes_of,
    nte_segment,
    read_totals,
    totals_segments,
)
from translators.mapping.errors import MappingError
from translators.mapping.order import allocation_segments, read_allocations
from translators.mapping.rendercheck import (
    LineLayout,
    Location,
    locate_line_document,
)
from translators.mapping.rules import InvoiceRules, MappingRules
from translators.x12.errors import RenderError
from translators.x12.model import Segment, TransactionSet

__all__ = ["invoice_from_x12", "locate_invoice", "render_invoice"]

# Skip run-time validation: every call passes values of the fields' exact types
# (see translators.canonical.common.trusted).
new_invoice_line = trusted(InvoiceLine)

CODE_BY_PURPOSE: dict[str, str] = {word: code for code, word in PURPOSE_BY_CODE.items()}
# Our DTM qualifiers for the invoice's contract dates.
DATE_NAMES: dict[str, str] = {"011": "ship_date"}
# CUR01 entity written outbound: the seller states the currency.
CURRENCY_ENTITY = "SE"
_TRAILER_TAGS = frozenset({"CTT", "SE"})
# loops of the IT1 loop after its own segments: SAC (its TXI), SLN sublines, N1
# parties, LM, V1, FA1 (810.004010/005010)
_LINE_LOOP_TAGS = frozenset({"SLN", "N1", "LM", "V1", "FA1"})


# --------------------------------------------------------------------------- reading


def invoice_from_x12(tset: TransactionSet, rules: MappingRules) -> Invoice:
    """The canonical invoice of one 810 transaction set."""
    try:
        return _read_invoice(tset, rules.invoice)
    except ValidationError as exc:  # a value the contract cannot hold: reject, do not crash
        raise MappingError(f"810 {tset.control_number}: {exc.errors()[0]['msg']}") from exc


def _split_areas(segments: Sequence[Segment]) -> tuple[list[Segment], list[list[Segment]], list[Segment]]:
    """(header, line loops, summary) of the segments between ST and SE."""
    header: list[Segment] = []
    lines: list[list[Segment]] = []
    summary: list[Segment] = []
    for segment in segments[1:]:
        tag = segment[0]
        if tag in _TRAILER_TAGS:
            continue
        if summary or tag == "TDS":
            summary.append(segment)
        elif tag == "IT1":
            lines.append([segment])
        elif lines:
            lines[-1].append(segment)
        else:
            header.append(segment)
    return header, lines, summary


def _read_invoice(tset: TransactionSet, rules: InvoiceRules) -> Invoice:
    header, line_loops, summary = _split_areas(tset.segments)
    big = next((s for s in header if s[0] == "BIG"), None) or ["BIG"]
    cur = next((s for s in header if s[0] == "CUR"), None)
    itd = next((s for s in header if s[0] == "ITD"), None)
    tds = next((s for s in summary if s[0] == "TDS"), None)
    parties, references = _read_parties_and_references(header, rules)
    check_required_references(references, rules, "invoice")
    dates: dict[str, date] = {}
    for segment in header:
        if segment[0] == "DTM":
            qualifier, when = read_dtm(segment)
            name = date_name(qualifier, DATE_NAMES, rules)
            if name is not None and when is not None:
                dates.setdefault(name, when)
    return Invoice(  # validated: purpose takes the canonical word
        invoice_number=value(big, 2),
        invoice_date=_date(big, 1),
        po_number=value(big, 4),
        po_date=_date(big, 3),
        currency=value(cur, 2) if cur else None,
        references=tuple(references),
        parties=tuple(parties),
        terms=read_terms(itd) if itd else None,
        ship_date=dates.get("ship_date"),
        lines=tuple(_read_line(loop, rules) for loop in line_loops),
        allowances_charges=tuple(_allowances_charges(header) + _allowances_charges(summary)),
        total_amount=implied_at(tds, 1, 2) if tds else None,
        purpose=value(big, 8),
        notes=tuple(notes_of(header)),
        totals=read_totals(
            next((s for s in tset.segments if s[0] == "CTT"), None),
            [s for s in summary if s[0] == "AMT"],
            len(line_loops),
        ),
    )


def _read_parties_and_references(
    header: list[Segment], rules: InvoiceRules
) -> tuple[list[Party], list[Reference]]:
    """Header N1 loops and REFs; REFs inside an N1 loop count as the invoice's too."""
    parties: list[Party] = []
    references: list[Reference] = []
    index = 0
    while index < len(header):
        segment = header[index]
        if segment[0] == "N1":
            party, loop_references, index = read_party_at(header, index, rules)
            parties.append(party)
            references.extend(loop_references)
            continue
        if segment[0] == "REF":
            references.append(read_reference(segment, rules))
        index += 1
    return parties, references


def _read_line(loop: list[Segment], rules: InvoiceRules) -> InvoiceLine:
    it1 = loop[0]
    # the line's own PIDs (a PID of an SLN subline describes the subline)
    own = loop[: next((i for i, s in enumerate(loop) if s[0] in _LINE_LOOP_TAGS), len(loop))]
    traits: dict[str | None, str | None] = {}
    for segment in own:
        if segment[0] == "PID" and text(segment, 1) == "F":
            which, described = characteristic(segment)
            if which is not None and described:
                traits.setdefault(which, described)
    return new_invoice_line(
        line_number=value(it1, 1),
        quantity=decimal_at(it1, 2),
        uom=value(it1, 3),
        unit_price=decimal_at(it1, 4),
        product_ids=read_product_ids(pairs(it1, 6), rules),
        description=_description(loop),
        allowances_charges=tuple(_allowances_charges(loop)),
        color=traits.get("color"),
        size=traits.get("size"),
        allocations=tuple(a for s in own if s[0] == "SDQ" for a in read_allocations(s, rules)),
    )


def _description(loop: list[Segment]) -> str | None:
    """PID05 of the first free-form PID (PID01 F) that is not a colour or size,
    else of the first PID with text."""
    described = [s for s in loop if s[0] == "PID" and value(s, 5) and characteristic(s)[0] is None]
    free_form = [s for s in described if text(s, 1) == "F"]
    chosen = free_form or described
    return value(chosen[0], 5) if chosen else None


def _allowances_charges(segments: list[Segment]) -> list[AllowanceCharge]:
    return [read_allowance_charge(s) for s in segments if s[0] == "SAC" and text(s, 1) != "N"]


def _date(segment: Segment, position: int) -> date | None:
    return read_dtm(["DTM", "", text(segment, position)])[1]


# --------------------------------------------------------------------------- rendering


def render_invoice(doc: Invoice, rules: MappingRules, control_number: str) -> list[Segment]:
    """The 810 for ``doc``, ST..SE inclusive, in this partner's conventions.

    Raises :class:`RenderError` when a mandatory value is missing: invoice_date
    (BIG01), invoice_number (BIG02) or total_amount (TDS01).
    """
    doc_rules = rules.invoice
    if doc.invoice_date is None or doc.invoice_number is None or doc.total_amount is None:
        raise RenderError(
            "an 810 needs invoice_date (BIG01), invoice_number (BIG02) and total_amount (TDS01)"
        )
    purpose = CODE_BY_PURPOSE.get(doc.purpose, doc.purpose) if doc.purpose else None
    body: list[Segment] = [
        seg(
            "BIG",
            format_date(doc.invoice_date),
            doc.invoice_number,
            _date_text(doc.po_date),
            doc.po_number,
            None,
            None,
            None,
            purpose,
        )
    ]
    body.extend(s for note in doc.notes if note.reference is None and (s := nte_segment(note)) is not None)
    if doc.currency is not None:
        body.append(["CUR", CURRENCY_ENTITY, doc.currency])
    body.extend(reference_segment(ref, doc_rules) for ref in doc.references)
    for party in doc.parties:
        body.extend(party_segments(party, doc_rules))
    if doc.terms is not None:
        body.append(terms_segment(doc.terms))
    if doc.ship_date is not None:
        body.append(dtm_segment(date_qualifier("ship_date", DATE_NAMES, doc_rules), doc.ship_date))
    for note in doc.notes:
        if note.reference is not None:  # an N9 loop (N9, MSG); the others went out as NTEs
            body.extend(note_segments(note))
    for line in doc.lines:
        body.extend(_line_segments(line, doc_rules))
    body.append(["TDS", n2(doc.total_amount) or "0"])
    if doc.totals is not None:
        body.extend(amount_segment(a) for a in doc.totals.amounts)
    body.extend(allowance_charge_segment(item) for item in doc.allowances_charges)
    body.extend(totals_segments(doc.totals, len(doc.lines))[:1])
    return frame("810", control_number, body)


INVOICE_LAYOUT = LineLayout(
    header="BIG",
    header_fields={1: "invoice_date", 2: "invoice_number", 3: "po_date", 4: "po_number"},
    line="IT1",
    line_fields={1: "line_number", 2: "quantity", 3: "uom", 4: "unit_price"},
    ids_from=6,
    date_names=DATE_NAMES,
)


def locate_invoice(segments: Sequence[Segment], doc: Invoice, rules: MappingRules) -> list[Location]:
    """The canonical field behind each element of a rendered 810 (for error messages)."""
    return locate_line_document(segments, INVOICE_LAYOUT, rules.invoice)


def _line_segments(line: InvoiceLine, rules: InvoiceRules) -> list[Segment]:
    ids = flatten_pairs(product_id_pairs(line.product_ids, rules))
    segments = [
        seg(
            "IT1",
            line.line_number,
            r(line.quantity),
            line.uom,
            r(line.unit_price),
            None,
            *ids,
        )
    ]
    if line.description is not None:
        segments.append(["PID", "F", "", "", "", line.description])
    segments.extend(characteristic_segments(line.color, line.size))
    if line.allocations:
        segments.extend(allocation_segments(line.allocations, line.uom, rules))
    segments.extend(allowance_charge_segment(item) for item in line.allowances_charges)
    return segments


def _date_text(when: date | None) -> str | None:
    return format_date(when) if when is not None else None
