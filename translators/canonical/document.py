"""The wrapper every translated transaction set becomes:
``{"kind", "partner_id", "envelope", "document", "warnings", "unmapped"}``.

``kind`` decides which model ``document`` is (order → Order, order_ack → OrderAck,
shipment → Shipment, invoice → Invoice); validating a JSON object picks the
document model from ``kind``, never by guessing from the fields. ``envelope`` is
null on documents the ERP hands us to send (the gateway assigns the envelope).

It lives apart from :mod:`translators.canonical.common` because it needs every
document model, and they all import ``common``. Nothing here does I/O.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
from typing import Any

from pydantic import ValidationError, model_validator

from translators.canonical.common import CanonicalModel, DocumentWarning, Envelope, Kind
from translators.canonical.details import UnmappedSegment
from translators.canonical.invoice import Invoice
from translators.canonical.order import Order
from translators.canonical.order_ack import OrderAck
from translators.canonical.shipment import Shipment

__all__ = ["MODEL_BY_KIND", "CanonicalDocument", "DocumentModel", "kind_of"]

DocumentModel = Order | OrderAck | Shipment | Invoice

MODEL_BY_KIND: dict[str, type[DocumentModel]] = {
    "order": Order,
    "order_ack": OrderAck,
    "shipment": Shipment,
    "invoice": Invoice,
}


def kind_of(document: DocumentModel) -> Kind:
    """The ``kind`` of a document model instance."""
    for kind, model in MODEL_BY_KIND.items():
        if type(document) is model:
            return kind  # type: ignore[return-value]
    raise TypeError(f"not a canonical document model: {type(document).__name__}")


class CanonicalDocument(CanonicalModel):
    """One translated transaction set (or one document to send)."""

    kind: Kind
    partner_id: str | None = None
    envelope: Envelope | None = None
    document: DocumentModel
    # what validation noted but accepted (decision 0004); [] for a clean set
    warnings: tuple[DocumentWarning, ...] = ()
    # the segments of the set the contract has no field for; [] for documents the
    # gateway did not read from X12
    unmapped: tuple[UnmappedSegment, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _document_model_from_kind(cls, data: Any) -> Any:
        # Validate the document against the model its kind names, so an all-optional
        # model (Shipment) never captures another kind's object.
        if isinstance(data, dict):
            kind = data.get("kind")
            model = MODEL_BY_KIND.get(kind) if isinstance(kind, str) else None
            raw = data.get("document")
            if model is not None and isinstance(raw, dict):
                try:
                    return {**data, "document": model.model_validate(raw)}
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    raise ValueError(
                        f"document is not a valid {data['kind']}: {where}: {first['msg']}"
                        f" ({exc.error_count()} error(s))"
                    ) from None
        return data

    @model_validator(mode="after")
    def _kind_matches_document(self) -> "CanonicalDocument":
        if type(self.document) is not MODEL_BY_KIND[self.kind]:
            raise ValueError(f"kind {self.kind!r} does not match a {type(self.document).__name__} document")
        return self

    @classmethod
    def wrap(
        cls, document: DocumentModel, *, partner_id: str | None = None, envelope: Envelope | None = None
    ) -> "CanonicalDocument":
        """Wrap a document model, deriving ``kind`` from its type."""
        return cls(kind=kind_of(document), partner_id=partner_id, envelope=envelope, document=document)
