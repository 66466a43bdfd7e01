"""The mapping registry: X12 transaction set ↔ canonical document, by kind.

- :data:`KIND_BY_SET` names the sets this gateway translates.
- :func:`to_canonical` builds the :class:`CanonicalDocument` (envelope from the
  ISA/GS/ST, document from the set's mapper).
- :func:`render` writes a canonical document (or a bare document model) as ST..SE
  segments and validates them against the set's grammar, exactly as an inbound set
  is validated: it returns valid X12 or raises :class:`RenderError` (a
  :class:`RenderValidationError` with one :class:`FieldError` per problem, naming
  the canonical field, the X12 element and the rule). ISA/GS/IEA are the envelope
  writer's job.

The mappers live in one module per kind (``order``, ``order_ack``, ``shipment``,
``invoice``), each exposing ``<kind>_from_x12`` and ``render_<kind>``; they are
imported when first used; a module may also expose ``locate_<kind>`` (see
:func:`translators.mapping.rendercheck.check_rendered`), else the layout below is used.
:func:`to_canonical` never raises anything but :class:`MappingError`. Nothing here
does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

from pydantic import ValidationError

from translators.canonical import MODEL_BY_KIND, CanonicalDocument, DocumentModel, Envelope, kind_of
from translators.canonical.common import trusted
from translators.mapping.compliance import check_inbound
from translators.mapping.errors import FieldError, MappingError, RenderValidationError
from translators.mapping.rendercheck import (
    DEFAULT_VERSION,
    LineLayout,
    Location,
    Locator,
    check_rendered,
    locate_line_document,
)
from translators.mapping.rules import MappingRules
from translators.x12.codes import SetSyntaxCode
from translators.x12.errors import RenderError
from translators.x12.grammar import load_nearest_grammar
from translators.x12.model import Delimiters, Segment, TransactionSet

__all__ = [
    "KIND_BY_SET",
    "SET_BY_KIND",
    "FieldError",
    "MappingError",
    "MappingRules",
    "RenderError",
    "RenderValidationError",
    "envelope_of",
    "render",
    "to_canonical",
]

KIND_BY_SET: dict[str, str] = {"850": "order", "855": "order_ack", "856": "shipment", "810": "invoice"}
SET_BY_KIND: dict[str, str] = {kind: set_id for set_id, kind in KIND_BY_SET.items()}
ST02_MIN = 4  # ST02/SE02 are AN 4/9
# the envelope's values are stripped strings and a bool: no run-time validation needed
new_envelope = trusted(Envelope)
# CanonicalDocument's model validators pick the document model from ``kind`` for a
# dict and check that ``kind`` matches the document's model: to_canonical hands a
# model and checks the match itself. Validating the wrapper would build every kind's
# validator (``document`` is the union of all kinds; models are built on first use).
new_canonical_document = trusted(CanonicalDocument, model_validators_checked=True)


def _mapper(kind: str, prefix: str, suffix: str) -> Callable[..., Any]:
    module = import_module(f"translators.mapping.{kind}")
    function: Callable[..., Any] = getattr(module, f"{prefix}{kind}{suffix}")
    return function


def envelope_of(tset: TransactionSet) -> Envelope:
    """The canonical envelope of a transaction set (ISA/GS/ST identifiers)."""
    isa, gs = tset.interchange, tset.group
    group_version = gs.version.strip() if gs is not None else ""
    return new_envelope(
        sender_qualifier=isa.sender_qualifier.strip(),
        sender_id=isa.sender_id.strip(),
        receiver_qualifier=isa.receiver_qualifier.strip(),
        receiver_id=isa.receiver_id.strip(),
        interchange_control=isa.control_number.strip(),
        group_control=gs.control_number.strip() if gs is not None else None,
        set_control=tset.control_number.strip(),
        version=group_version or isa.version.strip(),
        transaction_set=tset.set_id.strip(),
        test=isa.test,
    )


def to_canonical(tset: TransactionSet, *, partner_id: str | None, rules: MappingRules) -> CanonicalDocument:
    """Map one transaction set to a :class:`CanonicalDocument`.

    Raises :class:`MappingError` when the set is not one we translate, when the
    partner's rules reject it, or when its content cannot form a valid document.
    """
    kind = KIND_BY_SET.get(tset.set_id.strip())
    if kind is None:
        raise MappingError(
            f"transaction set {tset.set_id} is not translated by this gateway",
            set_code=SetSyntaxCode.NOT_SUPPORTED,
        )
    mapper = _mapper(kind, "", "_from_x12")
    try:
        document = mapper(tset, rules)
        check_inbound(document, rules.for_kind(kind), tset.set_id)
        if type(document) is not MODEL_BY_KIND[kind]:
            raise TypeError(f"the {kind} mapper returned a {type(document).__name__}")
        return new_canonical_document(
            kind=kind,  # type: ignore[arg-type]
            partner_id=partner_id,
            envelope=envelope_of(tset),
            document=document,
        )
    except MappingError:
        raise
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MappingError(
            f"{tset.set_id} {tset.control_number}: invalid {kind} content at {where}: {first['msg']}"
        ) from exc
    except (ValueError, LookupError, ArithmeticError, TypeError) as exc:
        # A mapper bug or input shape we did not foresee: still a rejected set with a
        # reason, never a crash of the caller's batch.
        raise MappingError(f"{tset.set_id} {tset.control_number}: cannot map {kind}: {exc!r}") from exc


def render(
    doc: CanonicalDocument | DocumentModel,
    *,
    rules: MappingRules,
    control_number: str,
    version: str | None = None,
    delimiters: Delimiters | None = None,
) -> list[Segment]:
    """Write a canonical document as ST..SE segments with ``control_number`` in
    ST02/SE02, validated against the grammar of ``version``.

    ``version`` is the GS08 the set will be sent under (the partner's); None means
    the envelope version of a :class:`CanonicalDocument` that has one, else 004010.
    ``delimiters`` are the ones the set will be written with (default: the writer's).
    A numeric ``control_number`` shorter than ST02 allows is zero-padded ("1" →
    "0001"; control numbers compare as numbers).
    Raises :class:`RenderError` when the document lacks a value X12 requires, and
    :class:`RenderValidationError` (a RenderError) when the set would not validate:
    ``errors`` names each canonical field, X12 element and rule.
    """
    document = doc.document if isinstance(doc, CanonicalDocument) else doc
    if version is None:
        envelope = doc.envelope if isinstance(doc, CanonicalDocument) else None
        version = envelope.version if envelope is not None else DEFAULT_VERSION
    if control_number.isdigit() and len(control_number) < ST02_MIN:
        control_number = control_number.zfill(ST02_MIN)
    kind = kind_of(document)
    renderer = _mapper(kind, "render_", "")
    segments: list[Segment] = renderer(document, rules, control_number)
    if any(s[0] == "MSG" for s in segments) and not _has_msg(kind, version):
        # 005010 850/855 have MTX (MTX02 the text) where 004010 has MSG
        segments = [["MTX", "", *s[1:]] if s[0] == "MSG" else s for s in segments]
    locate = _locator(kind, document, rules)
    return check_rendered(segments, version=version, locate=locate, delimiters=delimiters)


def _has_msg(kind: str, version: str) -> bool:
    """Whether the grammar a set of ``kind`` is written with knows MSG."""
    found = load_nearest_grammar(SET_BY_KIND[kind], version)
    return found is None or "MSG" in found[0].tags


def _locator(kind: str, document: DocumentModel, rules: MappingRules) -> Locator:
    """Names the canonical field behind each rendered element (called only when a
    set fails validation): the kind module's ``locate_<kind>`` when it has one, else
    the header + line-loop layout of the kind."""

    def locate(segments: Sequence[Segment]) -> list[Location]:
        module = import_module(f"translators.mapping.{kind}")
        own: Callable[[Sequence[Segment], Any, MappingRules], list[Location]] | None = getattr(
            module, f"locate_{kind}", None
        )
        if own is not None:
            return own(segments, document, rules)
        return locate_line_document(segments, _line_layout(kind), rules.for_kind(kind))

    return locate


_PO1_FIELDS = {1: "line_number", 2: "quantity", 3: "uom", 4: "unit_price", 5: "price_basis"}


def _line_layout(kind: str) -> LineLayout:
    if kind == "order":
        from translators.mapping.order import ORDER_DATE_NAMES

        return LineLayout(
            header="BEG",
            header_fields={1: "purpose", 2: "order_type", 3: "po_number", 4: "release_number", 5: "po_date"},
            line="PO1",
            line_fields=_PO1_FIELDS,
            ids_from=6,
            date_names=ORDER_DATE_NAMES,
            dates_prefix="dates.",
        )
    if kind == "order_ack":
        return LineLayout(
            header="BAK",
            header_fields={
                1: "purpose",
                2: "ack_type",
                3: "po_number",
                4: "po_date",
                5: "release_number",
                9: "ack_date",
            },
            line="PO1",
            line_fields=_PO1_FIELDS,
            ids_from=6,
            date_names={},
        )
    raise LookupError(f"no rendered-set layout for {kind}")
