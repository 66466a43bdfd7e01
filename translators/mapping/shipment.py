"""X12 856 ship notice ↔ canonical :class:`Shipment`, both directions.

Reading builds the HL tree from HL01/HL02 (not from segment order: a level may come
before its parent), so S-O-P-I, S-O-T-P-I, S-O-I, S-I and S-T-I-P all land in the
contract's shipment → order → (tare → pack → item) shape:

- an item belongs to its closest pack, else tare, else order level above it;
- a pack belongs to its closest tare, else order; a pack *below an item* (S-T-I-P
  sub-packaging) only splits that item's quantity and is not a carton of the order;
- levels under no order level are gathered into orders keyed by a PRF at their own
  level (po_number null when none), in the order they first appear;
- a blank or dangling HL02 is read as "the closest preceding level of a higher rank"
  (S > O > T > P > I), which is what senders that leave it blank mean;
- order-level N1/REF/TD1 are not part of the contract and are dropped.

Rendering writes S-O-T-P-I when an order has tares, S-O-P-I when it has packs, S-O-I
otherwise (per order), numbering HLs from 1 in document order.

It never does I/O and raises nothing but :class:`MappingError` while reading.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

from pydantic import ValidationError

from translators.canonical.common import Party, Reference, format_date, trusted
from translators.canonical.details import Mark
from translators.canonical.order import PURPOSE_BY_CODE
from translators.canonical.shipment import (
    Pack,
    Packaging,
    Shipment,
    ShipmentCarrier,
    ShipmentItem,
    ShipmentOrder,
    Tare,
)
from translators.mapping.common import (
    carrier_segment,
    check_required_references,
    date_name,
    date_qualifier,
    decimal_at,
    dtm_segment,
    flatten_pairs,
    frame,
    int_at,
    new_reference,
    party_segments,
    product_id_pairs,
    product_ids_at,
    r,
    read_carrier,
    read_dtm,
    read_party_at,
    read_reference,
    reference_segment,
    seg,
    text,
    value,
)
from translators.mapping.details import man_segments, mark_segment, read_mark, sscc_and_marks
from translators.mapping.errors import MappingError
from translators.mapping.rendercheck import (
    Location,
    SetLocations,
    product_id_fields,
)
from translators.mapping.rules import MappingRules, ShipmentRules
from translators.x12.errors import RenderError
from translators.x12.model import Segment, TransactionSet

__all__ = ["locate_shipment", "render_shipment", "shipment_from_x12"]

# Skip run-time validation: every call passes values of the fields' exact types
# (see translators.canonical.common.trusted).
new_shipment_order = trusted(ShipmentOrder)
new_shipment_item = trusted(ShipmentItem)
new_shipment_carrier = trusted(ShipmentCarrier)
new_packaging = trusted(Packaging)
new_pack = trusted(Pack)
new_tare = trusted(Tare)

# Our DTM qualifiers for the shipment's contract dates.
DATE_NAMES: dict[str, str] = {"011": "shipped_date", "017": "estimated_delivery"}
CODE_BY_PURPOSE: dict[str, str] = {word: code for code, word in PURPOSE_BY_CODE.items()}
# BSN04 is mandatory in 004010 but the contract has no shipment time.
MIDNIGHT = "0000"


# --------------------------------------------------------------------------- HL tree

# Rank of each level in the hierarchy; used only to guess a parent when HL02 is blank
# or names no HL of the set (some senders leave it empty on every level).
_RANK = {"S": 0, "O": 1, "T": 2, "P": 3, "I": 4}
_UNRANKED = len(_RANK)
_TRAILER_TAGS = frozenset({"CTT", "SE"})


@dataclass(eq=False, slots=True)
class _Level:
    """One HL and the segments that follow it up to the next HL."""

    hl_id: str
    parent_id: str
    code: str
    segments: list[Segment] = field(default_factory=list)
    parent: _Level | None = None

    def ancestors(self) -> Iterator[_Level]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def nearest(self, codes: str) -> _Level | None:
        """The closest ancestor whose level code is one of ``codes``."""
        node = self.parent
        while node is not None:
            if node.code in codes:
                return node
            node = node.parent
        return None

    def first(self, tag: str) -> Segment | None:
        for segment in self.segments:
            if segment[0] == tag:
                return segment
        return None


def _split_levels(segments: list[Segment]) -> tuple[list[Segment], list[_Level]]:
    """The segments before the first HL (BSN, sometimes DTM), and the HL levels in
    segment order."""
    head: list[Segment] = []
    levels: list[_Level] = []
    for segment in segments[1:]:
        tag = segment[0]
        if tag in _TRAILER_TAGS:
            continue
        if tag == "HL":
            # HL01 id, HL02 parent id, HL03 level code, stripped ("" when absent)
            ids = [v.strip() for v in segment[1:4]]
            ids += [""] * (3 - len(ids))
            levels.append(_Level(ids[0], ids[1], ids[2]))
        elif levels:
            levels[-1].segments.append(segment)
        else:
            head.append(segment)
    return head, levels


def _rank(level: _Level) -> int:
    return _RANK.get(level.code, _UNRANKED)


def _link(levels: list[_Level]) -> None:
    """Point every level at its parent: the HL that HL02 names, wherever it is in the
    set; else the closest preceding level of a higher rank. A link that closes a cycle
    is dropped (that level then hangs off the shipment)."""
    by_id: dict[str, _Level] = {}
    for level in levels:
        by_id.setdefault(level.hl_id, level)
    # The latest level seen so far of each rank, with its position: a blank parent is
    # the latest of all the higher ranks (kept per rank so big files stay linear).
    latest: dict[int, tuple[int, _Level]] = {}
    for index, level in enumerate(levels):
        rank = _rank(level)
        named = by_id.get(level.parent_id) if level.parent_id else None
        if named is not None and named is not level:
            level.parent = named
        else:
            candidates = [found for higher, found in latest.items() if higher < rank]
            level.parent = max(candidates, key=lambda found: found[0])[1] if candidates else None
        latest[rank] = (index, level)
    for level in levels:
        seen: set[int] = set()
        node = level.parent
        while node is not None and id(node) not in seen:
            if node is level:
                level.parent = None
                break
            seen.add(id(node))
            node = node.parent


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class _OrderDraft:
    po_number: str | None
    po_date: date | None
    tares: list[_TareDraft] = field(default_factory=list)
    packs: list[_PackDraft] = field(default_factory=list)
    items: list[ShipmentItem] = field(default_factory=list)

    def build(self) -> ShipmentOrder:
        return new_shipment_order(
            po_number=self.po_number,
            po_date=self.po_date,
            tares=tuple(t.build() for t in self.tares),
            packs=tuple(p.build() for p in self.packs),
            items=tuple(self.items),
        )


@dataclass(slots=True)
class _PackDraft:
    sscc: str | None
    marks: tuple[Mark, ...]
    items: list[ShipmentItem] = field(default_factory=list)

    def build(self) -> Pack:
        return new_pack(sscc=self.sscc, items=tuple(self.items), marks=self.marks)


@dataclass(slots=True)
class _TareDraft:
    sscc: str | None
    marks: tuple[Mark, ...]
    packs: list[_PackDraft] = field(default_factory=list)
    items: list[ShipmentItem] = field(default_factory=list)

    def build(self) -> Tare:
        packs, items = tuple(p.build() for p in self.packs), tuple(self.items)
        return new_tare(sscc=self.sscc, packs=packs, items=items, marks=self.marks)


def shipment_from_x12(tset: TransactionSet, rules: MappingRules) -> Shipment:
    """The canonical ship notice of one 856 transaction set."""
    try:
        return _read_shipment(tset, rules)
    except ValidationError as exc:  # a value the contract cannot hold: reject, do not crash
        raise MappingError(f"856 {tset.control_number}: {exc.errors()[0]['msg']}") from exc


def _read_shipment(tset: TransactionSet, rules: MappingRules) -> Shipment:
    doc_rules = rules.shipment
    head, levels = _split_levels(tset.segments)
    _link(levels)
    header = head + [s for level in levels if level.code == "S" for s in level.segments]
    bsn = next((s for s in head if s[0] == "BSN"), None) or ["BSN"]
    carrier, packaging, parties, references, dates = _read_header(header, doc_rules)
    check_required_references(
        [*references, *_carrier_references(carrier, doc_rules)], doc_rules, "ship notice"
    )
    return Shipment(  # validated: purpose takes the canonical word
        shipment_id=value(bsn, 2),
        shipment_date=read_dtm(["DTM", "", text(bsn, 3)])[1],
        purpose=value(bsn, 1),
        hierarchy=value(bsn, 5),
        shipped_date=dates.get("shipped_date"),
        estimated_delivery=dates.get("estimated_delivery"),
        carrier=carrier,
        packaging=packaging,
        parties=tuple(parties),
        references=tuple(references),
        orders=tuple(_read_orders(levels, doc_rules)),
        marks=tuple(read_mark(s) for s in header if s[0] == "MAN"),
    )


def _read_header(
    segments: list[Segment], rules: ShipmentRules
) -> tuple[ShipmentCarrier | None, Packaging | None, list[Party], list[Reference], dict[str, date]]:
    td5: Segment | None = None
    td1: Segment | None = None
    bill_of_lading: str | None = None
    tracking: str | None = None
    parties: list[Party] = []
    references: list[Reference] = []
    dates: dict[str, date] = {}
    index = 0
    while index < len(segments):
        segment = segments[index]
        tag = segment[0]
        if tag == "N1":
            party, loop_references, index = read_party_at(segments, index, rules)
            parties.append(party)
            references.extend(loop_references)
            continue
        if tag == "REF":
            qualifier = text(segment, 1)
            if qualifier == rules.bill_of_lading_qualifier and bill_of_lading is None:
                bill_of_lading = value(segment, 2)
            elif qualifier == rules.tracking_qualifier and tracking is None:
                tracking = value(segment, 2)
            else:
                references.append(read_reference(segment, rules))
        elif tag == "DTM":
            qualifier, when = read_dtm(segment)
            name = date_name(qualifier, DATE_NAMES, rules)
            if name is not None and when is not None:
                dates.setdefault(name, when)
        elif tag == "TD5" and td5 is None and any(segment[1:]):
            td5 = segment
        elif tag == "TD1" and td1 is None:
            td1 = segment
        index += 1
    carrier = None
    base = read_carrier(td5) if td5 is not None else None
    if base is not None or bill_of_lading is not None or tracking is not None:
        carrier = new_shipment_carrier(
            scac=base.scac if base else None,
            mode=base.mode if base else None,
            routing=base.routing if base else None,
            tracking_number=tracking,
            bill_of_lading=bill_of_lading,
        )
    packaging = None
    if td1 is not None:
        packaging = new_packaging(
            code=value(td1, 1),
            lading_quantity=int_at(td1, 2),
            weight=decimal_at(td1, 7),
            weight_uom=value(td1, 8),
        )
    return carrier, packaging, parties, references, dates


def _carrier_references(carrier: ShipmentCarrier | None, rules: ShipmentRules) -> list[Reference]:
    """The carrier's REF numbers as references, so required-reference checks see them."""
    if carrier is None:
        return []
    found = [
        (rules.bill_of_lading_qualifier, carrier.bill_of_lading),
        (rules.tracking_qualifier, carrier.tracking_number),
    ]
    return [
        new_reference(qualifier=rules.reference_qualifiers.get(q, q), value=v)
        for q, v in found
        if v is not None
    ]


def _read_orders(levels: list[_Level], rules: ShipmentRules) -> list[ShipmentOrder]:
    """Place every O, T, P and I level in the contract's tree (see module docstring)."""
    orders: dict[int, _OrderDraft] = {}  # by id() of the O level
    loose: dict[str | None, _OrderDraft] = {}  # orders made up for levels under no O
    ordered: list[_OrderDraft] = []
    tares: dict[int, _TareDraft] = {}
    packs: dict[int, _PackDraft] = {}

    def order_of(level: _Level) -> _OrderDraft:
        owner = level.nearest("O")
        if owner is not None:
            return order_for(owner)
        prf = level.first("PRF")
        key = value(prf, 1) if prf else None
        if key not in loose:
            loose[key] = _OrderDraft(key, _prf_date(prf))
            ordered.append(loose[key])
        return loose[key]

    def order_for(level: _Level) -> _OrderDraft:
        if id(level) not in orders:
            prf = level.first("PRF")
            orders[id(level)] = _OrderDraft(value(prf, 1) if prf else None, _prf_date(prf))
            ordered.append(orders[id(level)])
        return orders[id(level)]

    def tare_for(level: _Level) -> _TareDraft:
        if id(level) not in tares:
            tares[id(level)] = _TareDraft(*sscc_and_marks(level.segments))
            order_of(level).tares.append(tares[id(level)])
        return tares[id(level)]

    def pack_for(level: _Level) -> _PackDraft:
        if id(level) not in packs:
            packs[id(level)] = _PackDraft(*sscc_and_marks(level.segments))
            owner = level.nearest("T")
            if owner is not None:
                tare_for(owner).packs.append(packs[id(level)])
            else:
                order_of(level).packs.append(packs[id(level)])
        return packs[id(level)]

    # Containers are created in HL order so that output order follows the input even
    # when a child level comes first.
    for level in levels:
        if level.code == "O":
            order_for(level)
        elif level.code == "T":
            tare_for(level)
        elif level.code == "P" and level.nearest("I") is None:
            pack_for(level)
        elif level.code == "I":
            item = _read_item(level, rules)
            container = _container(level)
            if container is not None and container.code == "P":
                pack_for(container).items.append(item)
            elif container is not None and container.code == "T":
                tare_for(container).items.append(item)
            else:
                order_of(level).items.append(item)
    return [order.build() for order in ordered]


def _container(level: _Level) -> _Level | None:
    """The closest order, tare or (carton) pack level above an item."""
    node = level.parent
    while node is not None:
        code = node.code
        if code == "O" or code == "T" or (code == "P" and node.nearest("I") is None):
            return node
        node = node.parent
    return None


def _read_item(level: _Level, rules: ShipmentRules) -> ShipmentItem:
    lin = level.first("LIN") or ["LIN"]
    sn1 = level.first("SN1") or ["SN1"]
    return new_shipment_item(
        line_number=value(lin, 1) or value(sn1, 1),
        product_ids=product_ids_at(lin, 2, rules),
        quantity_shipped=decimal_at(sn1, 2),
        uom=value(sn1, 3),
        marks=tuple(read_mark(s) for s in level.segments if s[0] == "MAN"),
    )


def _prf_date(prf: Segment | None) -> date | None:
    return read_dtm(["DTM", "", text(prf, 4)])[1] if prf else None


# --------------------------------------------------------------------------- rendering


def render_shipment(doc: Shipment, rules: MappingRules, control_number: str) -> list[Segment]:
    """The 856 for ``doc``, ST..SE inclusive, in this partner's conventions.

    Raises :class:`RenderError` when BSN's mandatory values (purpose, shipment id,
    shipment date) are missing. BSN05 is written as the document says.
    """
    doc_rules = rules.shipment
    if doc.purpose is None or doc.shipment_id is None or doc.shipment_date is None:
        raise RenderError("an 856 needs purpose (BSN01), shipment_id (BSN02) and shipment_date (BSN03)")
    body: list[Segment] = [
        seg(
            "BSN",
            CODE_BY_PURPOSE.get(doc.purpose, doc.purpose),
            doc.shipment_id,
            format_date(doc.shipment_date),
            MIDNIGHT,
            doc.hierarchy,
        )
    ]
    hls = _HLWriter(body)
    shipment_hl = hls.open("", "S")
    body.extend(_header_segments(doc, doc_rules))
    body.extend(mark_segment(mark) for mark in doc.marks)
    for order in doc.orders:
        order_hl = hls.open(shipment_hl, "O")
        if order.po_number is not None or order.po_date is not None:
            body.append(seg("PRF", order.po_number, None, None, _date_text(order.po_date)))
        for tare in order.tares:
            tare_hl = hls.open(order_hl, "T")
            body.extend(man_segments(tare.sscc, tare.marks))
            for pack in tare.packs:
                _write_pack(hls, tare_hl, pack, doc_rules)
            for item in tare.items:
                _write_item(hls, tare_hl, item, doc_rules)
        for pack in order.packs:
            _write_pack(hls, order_hl, pack, doc_rules)
        for item in order.items:
            _write_item(hls, order_hl, item, doc_rules)
    body.append(["CTT", str(hls.count)])
    return frame("856", control_number, body)


class _HLWriter:
    """Numbers HL segments from 1 in the order they are written."""

    def __init__(self, body: list[Segment]) -> None:
        self.body = body
        self.count = 0

    def open(self, parent: str, code: str) -> str:
        self.count += 1
        hl_id = str(self.count)
        self.body.append(["HL", hl_id, parent, code])
        return hl_id


def _header_segments(doc: Shipment, rules: ShipmentRules) -> list[Segment]:
    segments: list[Segment] = []
    if doc.packaging is not None:
        p = doc.packaging
        quantity = str(p.lading_quantity) if p.lading_quantity is not None else None
        weight_qualifier = "G" if p.weight is not None else None
        segments.append(
            seg("TD1", p.code, quantity, None, None, None, weight_qualifier, r(p.weight), p.weight_uom)
        )
    carrier = doc.carrier
    if carrier is not None:
        scac = carrier.scac if rules.carrier_scac_in_td5 else None
        if scac is not None or carrier.mode is not None or carrier.routing is not None:
            segments.append(carrier_segment(carrier.model_copy(update={"scac": scac})))
        if carrier.bill_of_lading is not None:
            segments.append(["REF", rules.bill_of_lading_qualifier, carrier.bill_of_lading])
        if carrier.tracking_number is not None:
            segments.append(["REF", rules.tracking_qualifier, carrier.tracking_number])
    segments.extend(reference_segment(ref, rules) for ref in doc.references)
    for name in ("shipped_date", "estimated_delivery"):
        when: date | None = getattr(doc, name)
        if when is not None:
            segments.append(dtm_segment(date_qualifier(name, DATE_NAMES, rules), when))
    for party in doc.parties:
        segments.extend(party_segments(party, rules))
    return segments


def _write_pack(hls: _HLWriter, parent: str, pack: Pack, rules: ShipmentRules) -> None:
    pack_hl = hls.open(parent, "P")
    hls.body.extend(man_segments(pack.sscc, pack.marks))
    for item in pack.items:
        _write_item(hls, pack_hl, item, rules)


def _write_item(hls: _HLWriter, parent: str, item: ShipmentItem, rules: ShipmentRules) -> None:
    hls.open(parent, "I")
    ids = flatten_pairs(product_id_pairs(item.product_ids, rules))
    shipped = item.quantity_shipped is not None or item.uom is not None
    # A LIN needs a product id (LIN02/LIN03 are mandatory): without one, the line
    # number goes in SN101, which reading falls back to.
    in_sn1 = not ids and shipped
    if ids or (item.line_number is not None and not in_sn1):
        hls.body.append(seg("LIN", item.line_number, *ids))
    if shipped:
        hls.body.append(seg("SN1", item.line_number if in_sn1 else None, r(item.quantity_shipped), item.uom))
    hls.body.extend(man_segments(None, item.marks))


def _date_text(when: date | None) -> str | None:
    return format_date(when) if when is not None else None


_LEVELS = {"O": "orders", "T": "tares", "P": "packs", "I": "items"}


def locate_shipment(segments: Sequence[Segment], doc: Shipment, rules: MappingRules) -> list[Location]:
    """The canonical field behind each element of a rendered 856 (for error
    messages): HL levels become ``document.orders.0.tares.1.packs.0.items.2``."""
    doc_rules = rules.shipment
    where = SetLocations()
    carrier = doc.carrier
    carrier_refs = [
        name
        for name in ("bill_of_lading", "tracking_number")
        if carrier is not None and getattr(carrier, name) is not None
    ]
    header_refs = 0
    paths: dict[str, str] = {}  # HL01 → the level's path
    counts: Counter[tuple[str, str]] = Counter()  # (parent path, collection) → levels so far
    owner = "document"
    for segment in segments:
        tag = segment[0]
        if tag == "BSN":
            where.add("document", {1: "purpose", 2: "shipment_id", 3: "shipment_date", 5: "hierarchy"})
        elif tag == "HL":
            collection = _LEVELS.get(text(segment, 3))
            owner = "document"
            if collection is not None:
                parent = paths.get(text(segment, 2), "document")
                owner = f"{parent}.{collection}.{counts[parent, collection]}"
                counts[parent, collection] += 1
            paths[text(segment, 1)] = owner
            where.add(owner)
        elif tag == "PRF":
            where.add(owner, {1: "po_number", 4: "po_date"})
        elif tag == "MAN":
            where.add(owner, {1: "sscc", 2: "sscc"})
        elif tag == "LIN":
            where.add(owner, product_id_fields(segment, 2, doc_rules, {1: "line_number"}))
        elif tag == "SN1":
            where.add(owner, {2: "quantity_shipped", 3: "uom"})
        elif tag == "TD1":
            where.add(
                "document.packaging",
                {1: "code", 2: "lading_quantity", 6: "weight", 7: "weight", 8: "weight_uom"},
            )
        elif tag == "REF" and header_refs < len(carrier_refs):
            name = carrier_refs[header_refs]
            header_refs += 1
            where.add("document.carrier", {1: name, 2: name})
        elif tag == "DTM":
            found = date_name(text(segment, 1), DATE_NAMES, doc_rules)
            where.add("document", {1: found, 2: found} if found is not None else {})
        elif tag == "CTT":
            where.add("document.orders")
        elif not where.common(segment):
            where.add(owner)
    return where.out
