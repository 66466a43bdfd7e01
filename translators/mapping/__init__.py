"""The mapping registry: X12 transaction set ↔ canonical document, by kind.

- :data:`KIND_BY_SET` names the sets this gateway translates.
- :func:`to_canonical` builds the :class:`CanonicalDocument` (envelope from the
  ISA/GS/ST, document from the set's mapper).
- :func:`render` writes a canonical document (or a bare document model) as ST..SE
  segments; ISA/GS/IEA are the envelope writer's job.

The mappers live in one module per kind (``order``, ``order_ack``, ``shipment``,
``invoice``), each exposing ``<kind>_from_x12`` and ``render_<kind>``; they are
imported when first used. :func:`to_canonical` never raises anything but
:class:`MappingError`. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from pydantic import ValidationError

from translators.canonical import CanonicalDocument, DocumentModel, Envelope, kind_of
from translators.canonical.common import trusted
from translators.mapping.errors import MappingError
from translators.mapping.rules import MappingRules
from translators.x12.codes import SetSyntaxCode
from translators.x12.model import Segment, TransactionSet

__all__ = ["KIND_BY_SET", "SET_BY_KIND", "MappingError", "MappingRules", "envelope_of", "render", "to_canonical"]

KIND_BY_SET: dict[str, str] = {"850": "order", "855": "order_ack", "856": "shipment", "810": "invoice"}
SET_BY_KIND: dict[str, str] = {kind: set_id for set_id, kind in KIND_BY_SET.items()}
# the envelope's values are stripped strings and a bool: no run-time validation needed
new_envelope = trusted(Envelope)


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
        return CanonicalDocument(kind=kind, partner_id=partner_id, envelope=envelope_of(tset), document=document)  # type: ignore[arg-type]
    except MappingError:
        raise
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MappingError(f"{tset.set_id} {tset.control_number}: invalid {kind} content at {where}: {first['msg']}") from exc
    except (ValueError, LookupError, ArithmeticError, TypeError) as exc:
        # A mapper bug or input shape we did not foresee: still a rejected set with a
        # reason, never a crash of the caller's batch.
        raise MappingError(f"{tset.set_id} {tset.control_number}: cannot map {kind}: {exc!r}") from exc


def render(
    doc: CanonicalDocument | DocumentModel, *, rules: MappingRules, control_number: str
) -> list[Segment]:
    """Write a canonical document as ST..SE segments with ``control_number`` in ST02/SE02."""
    document = doc.document if isinstance(doc, CanonicalDocument) else doc
    kind = kind_of(document)
    renderer = _mapper(kind, "render_", "")
    segments: list[Segment] = renderer(document, rules, control_number)
    return segments
