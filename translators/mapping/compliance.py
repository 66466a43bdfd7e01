"""A partner's profile rules checked on a canonical document, whichever way it
travels, and the sums an invoice we send must add up to.

- :func:`rule_breaches`: what the partner's rules require of every document of a
  kind: references (``required_references``), parties (``required_parties``),
  SSCCs on packs and tares (``[mapping.shipment] require_sscc``). Inbound, the first
  breach rejects the set (:func:`check_inbound`, AK3 on the segment that is missing
  or wrong); outbound, the gateway refuses the document with every breach named.
- :func:`invoice_total_breach`: an 810's TDS01 must be Σ IT102 * IT104 of its lines
  plus charges minus allowances (line and document SACs; a SAC given as a percent
  only counts that percent of the line, or of all lines), in cents, unless the
  partner's ``[mapping.invoice] total_check`` is ``allow``.

Pure: no I/O; nothing raised but :class:`MappingError` (inbound).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from translators.canonical import AllowanceCharge, Invoice, Reference, Shipment
from translators.mapping.errors import MappingError
from translators.mapping.rules import DocumentRules, InvoiceRules, ShipmentRules
from translators.x12.codes import SegmentSyntaxCode

__all__ = [
    "Breach",
    "breaches_for",
    "check_inbound",
    "invoice_total_breach",
    "invoice_totals",
    "rule_breaches",
    "valid_sscc",
]

CENT = Decimal("0.01")
SSCC_DIGITS = 18
SSCC_AI = "00"  # the GS1 application identifier some senders keep in front


@dataclass(frozen=True, slots=True)
class Breach:
    """One rule a document breaks: the canonical field (``loc``), what is wrong
    (``msg``), the X12 segment that carries it, and, for a total, the figures."""

    loc: str
    msg: str
    segment: str
    details: dict[str, str] = field(default_factory=dict)
    missing: bool = True  # the value is absent (AK304 3), not wrong (AK304 8)


def valid_sscc(value: str | None) -> bool:
    """An SSCC-18 with a correct GS1 mod-10 check digit (a leading "00" application
    identifier on 20 digits is allowed)."""
    if value is None:
        return False
    digits = (
        value[len(SSCC_AI) :]
        if len(value) == SSCC_DIGITS + len(SSCC_AI) and value.startswith(SSCC_AI)
        else value
    )
    if len(digits) != SSCC_DIGITS or not (digits.isascii() and digits.isdigit()):
        return False
    body = [int(d) for d in digits[:-1]]
    # weights 3,1,3,1... from the rightmost digit of the body
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(digits[-1])


def _references(document: Any, rules: DocumentRules) -> list[Reference]:
    found = list(getattr(document, "references", ()))
    if isinstance(document, Shipment) and document.carrier is not None and isinstance(rules, ShipmentRules):
        carried = (
            (rules.bill_of_lading_qualifier, document.carrier.bill_of_lading),
            (rules.tracking_qualifier, document.carrier.tracking_number),
        )
        found += [Reference(qualifier=rules.reference_qualifiers.get(q, q), value=v) for q, v in carried if v]
    return found


def _containers(shipment: Shipment) -> Iterator[tuple[str, str | None]]:
    """(canonical path, sscc) of every tare and pack."""
    for o, order in enumerate(shipment.orders):
        for t, tare in enumerate(order.tares):
            yield f"document.orders.{o}.tares.{t}.sscc", tare.sscc
            for p, pack in enumerate(tare.packs):
                yield f"document.orders.{o}.tares.{t}.packs.{p}.sscc", pack.sscc
        for p, pack in enumerate(order.packs):
            yield f"document.orders.{o}.packs.{p}.sscc", pack.sscc


def rule_breaches(document: Any, rules: DocumentRules, *, references: bool = True) -> list[Breach]:
    """Every profile rule ``document`` (a canonical document model) breaks."""
    breaches: list[Breach] = []
    if references:
        present = {r.qualifier for r in _references(document, rules) if r.value or r.description}
        for qualifier in rules.required_references:
            if qualifier not in present:
                where = "document.carrier" if isinstance(document, Shipment) else "document.references"
                breaches.append(
                    Breach(where, f"REF*{qualifier} is required by the partner (required_references)", "REF")
                )
    roles = {party.role for party in getattr(document, "parties", ())}
    for role in rules.required_parties:
        if role not in roles:
            breaches.append(
                Breach(
                    "document.parties",
                    f"a {role} party (N1) is required by the partner (required_parties)",
                    "N1",
                )
            )
    if isinstance(document, Shipment) and isinstance(rules, ShipmentRules) and rules.require_sscc:
        for loc, sscc in _containers(document):
            if sscc is None:
                breaches.append(
                    Breach(loc, "an SSCC (MAN*GM) is required on every pack and tare (require_sscc)", "MAN")
                )
            elif not valid_sscc(sscc):
                breaches.append(
                    Breach(
                        loc,
                        f"{sscc!r} is not an SSCC-18 with a valid check digit (require_sscc)",
                        "MAN",
                        missing=False,
                    )
                )
    return breaches


def check_inbound(document: Any, rules: DocumentRules, set_id: str) -> None:
    """Reject an inbound document that breaks its partner's rules (required
    references are checked by the mappers themselves, where the REFs are read)."""
    breaches = rule_breaches(document, rules, references=False)
    if breaches:
        first = breaches[0]
        raise MappingError(
            f"{set_id}: {first.msg}",
            segment=first.segment,
            segment_code=SegmentSyntaxCode.MANDATORY_MISSING
            if first.missing
            else SegmentSyntaxCode.HAS_ELEMENT_ERRORS,
        )


def _amount(item: AllowanceCharge, base: Decimal) -> Decimal:
    if item.amount is not None:
        return item.amount
    if item.percent is not None:
        return (base * item.percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return Decimal(0)


def _signed(items: Iterable[AllowanceCharge], base: Decimal) -> tuple[Decimal, Decimal]:
    """(allowances, charges) of ``items``, positive amounts."""
    allowances = charges = Decimal(0)
    for item in items:
        if item.type == "allowance":
            allowances += abs(_amount(item, base))
        else:
            charges += abs(_amount(item, base))
    return allowances, charges


def invoice_totals(invoice: Invoice) -> dict[str, Decimal] | None:
    """What an invoice's total should be, and its parts, in cents; None when a line
    lacks its quantity or unit price (nothing to multiply)."""
    lines = Decimal(0)
    allowances = charges = Decimal(0)
    for line in invoice.lines:
        if line.quantity is None or line.unit_price is None:
            return None
        extension = (line.quantity * line.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
        lines += extension
        a, c = _signed(line.allowances_charges, extension)
        allowances, charges = allowances + a, charges + c
    a, c = _signed(invoice.allowances_charges, lines)
    allowances, charges = allowances + a, charges + c
    return {
        "lines": lines,
        "allowances": allowances,
        "charges": charges,
        "expected": (lines - allowances + charges).quantize(CENT, rounding=ROUND_HALF_UP),
    }


def invoice_total_breach(invoice: Invoice, rules: InvoiceRules) -> Breach | None:
    """The breach when the invoice's total_amount is not what its lines and
    allowances/charges add up to (None when they agree, when the partner's
    ``total_check`` is ``allow``, or when the sum cannot be made)."""
    if rules.total_check == "allow" or invoice.total_amount is None:
        return None
    figures = invoice_totals(invoice)
    if figures is None:
        return None
    given = invoice.total_amount.quantize(CENT, rounding=ROUND_HALF_UP)
    expected = figures["expected"]
    if given == expected:
        return None
    text = {name: format(value.quantize(CENT), "f") for name, value in figures.items()}
    return Breach(
        "document.total_amount",
        f"total_amount {format(given, 'f')} is not the sum of the lines {text['lines']}"
        f" - allowances {text['allowances']} + charges {text['charges']} = {text['expected']}"
        ' (set [mapping.invoice] total_check = "allow" for a partner that bills otherwise)',
        "TDS",
        details={
            "expected_total": text["expected"],
            "given_total": format(given, "f"),
            "lines_total": text["lines"],
            "allowances": text["allowances"],
            "charges": text["charges"],
        },
        missing=False,
    )


def breaches_for(document: Any, rules: DocumentRules) -> Sequence[Breach]:
    """Everything an outbound ``document`` breaks: the profile rules, and for an
    invoice its total."""
    found = rule_breaches(document, rules)
    if isinstance(document, Invoice) and isinstance(rules, InvoiceRules):
        total = invoice_total_breach(document, rules)
        if total is not None:
            found.insert(0, total)
    return found
