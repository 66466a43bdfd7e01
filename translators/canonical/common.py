"""The parts every canonical document shares: envelope, parties, references, terms,
carrier, product ids, allowances/charges, and the value helpers (exact decimals,
dates) that turn X12 text into canonical values and back.

JSON rule (the ERP relies on it): every contract field is always emitted; an absent
value is ``null``, an absent list is ``[]``, an absent object in a list is never
invented. Decimals are exact and serialized as JSON strings in plain notation
("3163.00", never "3.163E+3"); dates are "YYYY-MM-DD".

This module never reads X12 segments (that is ``translators.mapping``) and never does
I/O.
"""

# No postponed annotations here: pydantic evaluates every field annotation, and
# from strings it compiles each one first (docs/performance.md, issue 10 start-up).
import types
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Literal, ParamSpec, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

__all__ = [
    "PRODUCT_ID_FIELDS",
    "AllowanceCharge",
    "CanonicalModel",
    "Carrier",
    "DocumentWarning",
    "Envelope",
    "Kind",
    "Money",
    "Party",
    "ProductIds",
    "Reference",
    "Terms",
    "decimal_text",
    "format_date",
    "format_decimal_n",
    "format_decimal_r",
    "implied_decimal",
    "parse_date",
    "parse_decimal",
    "trusted",
]

Kind = Literal["order", "order_ack", "shipment", "invoice"]


def decimal_text(value: Decimal) -> str:
    """``value`` in plain notation, keeping its exponent's trailing zeros."""
    return format(value, "f")


# An exact decimal; JSON output is a string in plain notation. Input accepts a string
# or an integer (floats are lossy, but pydantic's lax mode converts them through str).
Money = Annotated[
    Decimal,
    PlainSerializer(decimal_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["3163.00", "12.5"]}),
]


class CanonicalModel(BaseModel):
    """Base of every canonical model: immutable, and unknown keys are an error."""

    # Every field is always emitted, so the published (serialization) schema marks
    # every field required. Validators and serializers are built on first use
    # (defer_build): translating an 850 builds the order's, never the invoice's. A
    # default that is a model instance is made with ``model_construct()`` (what
    # validating no arguments gives), so defining a model builds nothing either.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True, defer_build=True
    )


class Envelope(CanonicalModel):
    """Where a transaction set came from (or goes to): ISA/GS/ST identifiers.

    ``version`` is GS08 (e.g. "004010VICS"), or ISA12 when there was no group.
    ``test`` is true unless ISA15 is "P".
    """

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    interchange_control: str
    group_control: str | None = None
    set_control: str
    version: str
    transaction_set: str
    test: bool = False


class DocumentWarning(CanonicalModel):
    """Something validation noted but accepted (a partner's leniency switch, or a
    release validated with the nearest grammar), so the ERP can see it.

    ``segment``/``position``/``element`` locate it as the 997/999 AK3/AK4 would
    (position counts from ST = 1); ``code`` is the AK304 segment code or AK403
    element code, or ``"grammar"`` for the note saying which grammar was used.
    """

    segment: str | None = None
    position: int | None = None
    element: int | None = None
    code: str
    text: str


class Reference(CanonicalModel):
    """A REF segment: REF01 qualifier, REF02 value, REF03 description."""

    qualifier: str
    value: str | None = None
    description: str | None = None


class Party(CanonicalModel):
    """An N1 loop (N1/N2/N3/N4). ``role`` is the N101 code translated (ST → ship_to,
    others lowercased); ``name`` is N102 with any N2 names appended after a space;
    ``address_lines`` are N301/N302 of every N3 in order."""

    role: str
    name: str | None = None
    id_qualifier: str | None = None
    id: str | None = None
    address_lines: tuple[str, ...] = ()
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Terms(CanonicalModel):
    """Terms of sale (ITD): ITD03 discount percent, ITD05 discount days, ITD07 net
    days, ITD12 free-text description."""

    discount_percent: Money | None = None
    discount_days: int | None = None
    net_days: int | None = None
    description: str | None = None


class Carrier(CanonicalModel):
    """Carrier details (TD5): TD503 SCAC (when TD502 is "2"), TD504 transport method
    code, TD505 routing text. The shipment extends this with tracking numbers."""

    scac: str | None = None
    mode: str | None = None
    routing: str | None = None


class ProductIds(CanonicalModel):
    """Product identifiers from X12 qualifier/id pairs. Qualifiers map to fields
    (UP upc, EN ean, UK gtin, VN/VP vendor_item, IN/BP buyer_item, SK sku,
    MG manufacturer_part); any other qualifier, and a second qualifier that maps to
    an already filled field, is kept in ``other`` under its qualifier."""

    upc: str | None = None
    ean: str | None = None
    gtin: str | None = None
    vendor_item: str | None = None
    buyer_item: str | None = None
    sku: str | None = None
    manufacturer_part: str | None = None
    other: dict[str, str] = {}

    def is_empty(self) -> bool:
        return not self.other and all(getattr(self, name) is None for name in PRODUCT_ID_FIELDS)


PRODUCT_ID_FIELDS: tuple[str, ...] = (
    "upc",
    "ean",
    "gtin",
    "vendor_item",
    "buyer_item",
    "sku",
    "manufacturer_part",
)


class AllowanceCharge(CanonicalModel):
    """A SAC segment: SAC01 A/C, SAC02 code, SAC05 amount (N2), SAC07 percent,
    SAC15 description."""

    type: Literal["allowance", "charge"]
    code: str | None = None
    amount: Money | None = None
    percent: Money | None = None
    description: str | None = None


# --------------------------------------------------------------------------- value helpers


def parse_decimal(value: str) -> Decimal | None:
    """An explicit-decimal (R) value as written, or None when empty or not a number."""
    text = value.strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def implied_decimal(value: str, places: int) -> Decimal | None:
    """An Nn value with ``places`` implied decimals: ("316300", 2) → 3163.00.

    Trailing zeros implied by the places are kept. A value that already carries a
    decimal point (some partners send "3163.00" in an N2 element) is taken as
    written. Returns None when empty or not a number.
    """
    number = parse_decimal(value)
    if number is None:
        return None
    if "." in value:
        return number
    return number.scaleb(-places)


def format_decimal_n(value: Decimal, places: int) -> str:
    """Render ``value`` as an Nn element: (Decimal("3163.00"), 2) → "316300".

    Digits beyond ``places`` are rounded half-up (an N2 element cannot hold them).
    """
    scaled = value.scaleb(places).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return decimal_text(scaled)


def format_decimal_r(value: Decimal) -> str:
    """Render ``value`` as an R element: plain notation, as exact as the value."""
    text = decimal_text(value)
    return "0" if text in ("-0", "") else text


def parse_date(value: str, century: str | None = None) -> date | None:
    """A CCYYMMDD or YYMMDD date, or None when empty or invalid.

    For YYMMDD, ``century`` (e.g. DTM05 "19") wins; otherwise years below 50 are
    20YY and the others 19YY.
    """
    text = value.strip()
    if not text.isdigit():
        return None
    if len(text) == 6:
        if century and century.strip().isdigit() and len(century.strip()) == 2:
            text = century.strip() + text
        else:
            text = ("20" if int(text[:2]) < 50 else "19") + text
    if len(text) != 8:
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def format_date(value: date) -> str:
    """Render a date as CCYYMMDD."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


# --------------------------------------------------------------------------- trusted construction

_P = ParamSpec("_P")
_M = TypeVar("_M", bound=BaseModel)
_UNSET: Any = object()
_HARMLESS_METADATA = (PlainSerializer, WithJsonSchema)  # shape JSON output, never accept or convert input


def _annotation_is_plain(annotation: Any) -> bool:
    """True when validating ``annotation`` only checks types: no validators, no
    constraints anywhere inside (unions, tuples, dicts, Annotated)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        return all(isinstance(m, _HARMLESS_METADATA) for m in metadata) and _annotation_is_plain(base)
    if origin in (Union, types.UnionType, tuple, dict):
        return all(_annotation_is_plain(arg) for arg in get_args(annotation) if arg is not Ellipsis)
    return origin in (None, Literal)


def _guard(name: str, annotation: Any) -> str | None:
    """A run-time check for what static typing lets through but validation refuses:
    a non-finite Decimal, a bool for an int, a datetime for a date."""
    args = set(get_args(annotation)) | {annotation}
    flat = {get_args(a)[0] if get_origin(a) is Annotated else a for a in args}
    if Decimal in flat:
        return f"if {name} is not None and not {name}.is_finite(): raise ValueError('{name}: not a finite number')"
    for kind in (int, date):
        if kind in flat:
            return f"if {name} is not None and type({name}) is not {kind.__name__}: raise TypeError('{name}: not {kind.__name__}')"
    return None


def _unhashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return True
    return False


def trusted_source(model: type[BaseModel]) -> str:
    """The source :func:`trusted` compiles for ``model`` (for inspection): ``build``
    when every field is given (one dict, the full field set), ``build_partial``
    filling defaults the way validation does (unhashable ones copied) and recording
    which fields were given."""
    fields = model.model_fields
    names = list(fields)
    params = ", ".join(n if fields[n].is_required() else f"{n}=_UNSET" for n in names)
    optional = [n for n in names if not fields[n].is_required()]
    guards = [g for g in (_guard(n, fields[n].annotation) for n in names) if g]
    values = ", ".join(f"{n!r}: {n}" for n in names)
    lines = [f"def build(*, {params}):"]
    if optional:
        lines.append(f"    if {' or '.join(f'{n} is _UNSET' for n in optional)}:")
        lines.append(f"        return build_partial({', '.join(names)})")
    lines += [f"    {g}" for g in guards]
    lines += [
        "    made = new(cls)",
        f"    set_dict(made, {{{values}}})",
        "    set_fields_set(made, set(FIELDS))",
        "    set_extra(made, None)",
        "    set_private(made, None)",
        "    return made",
        "",
        "",
        f"def build_partial({', '.join(names)}):",
        # which fields were given, as a tuple of flags: the field set of each
        # pattern is worked out once
        f"    pattern = ({''.join(f'{n} is _UNSET, ' for n in optional)})",
    ]
    for n in optional:
        default = f"deepcopy(D_{n})" if _unhashable(fields[n].default) else f"D_{n}"
        lines += [f"    if {n} is _UNSET:", f"        {n} = {default}"]
    lines += [f"    {g}" for g in guards]
    lines += [
        "    given = GIVEN.get(pattern)",
        "    if given is None:",
        f"        given = GIVEN[pattern] = FIELDS.difference(n for n, unset in zip({tuple(optional)!r}, pattern) if unset)",
        "    made = new(cls)",
        f"    set_dict(made, {{{values}}})",
        "    set_fields_set(made, set(given))",
        "    set_extra(made, None)",
        "    set_private(made, None)",
        "    return made",
    ]
    return "\n".join(lines) + "\n"


def trusted(model: Callable[_P, _M], *, model_validators_checked: bool = False) -> Callable[_P, _M]:
    """A constructor for ``model`` with the model's own keyword signature that skips
    pydantic's run-time validation.

    Mappers use it where they already hold values of the exact field types: mypy
    --strict checks every call against the model's signature, and the generated code
    re-checks at run time what typing cannot (finite decimals, real ints and dates),
    so the instance equals the one validation would build (same values, same field
    order, same ``model_fields_set``) for a fraction of the cost. It is refused, when
    created, for a model with validators, constraints, aliases, private attributes or
    extra keys, where skipping validation could change the result.
    ``model_validators_checked``: the caller does what the model's model validators
    would (say so where it is used); field validators are refused all the same.
    ``trusted_source`` shows the generated code.
    """
    cls: type[BaseModel] = model  # type: ignore[assignment]
    decorators = cls.__pydantic_decorators__
    fields = cls.model_fields
    if (
        decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or (decorators.model_validators and not model_validators_checked)
        or cls.__private_attributes__
        or cls.__pydantic_post_init__
        or cls.model_config.get("extra") == "allow"
        or not all(
            _annotation_is_plain(info.annotation)
            and all(isinstance(m, _HARMLESS_METADATA) for m in info.metadata)
            and info.alias is None
            for info in fields.values()
        )
    ):
        raise TypeError(f"{cls.__name__} validates more than types: build it with validation")
    from copy import deepcopy

    slots = BaseModel.__dict__
    namespace: dict[str, Any] = {
        "_UNSET": _UNSET,
        **{f"D_{name}": info.default for name, info in fields.items()},
        "GIVEN": {},  # field set by pattern of given fields (at most 2**optional)
        "FIELDS": frozenset(fields),
        "deepcopy": deepcopy,
        "new": object.__new__,
        "cls": cls,
        "date": date,
        # BaseModel's own slots, set as model_construct sets them (bypassing the frozen
        # __setattr__) but through the slot descriptors, which costs half as much
        "set_dict": slots["__dict__"].__set__,
        "set_fields_set": slots["__pydantic_fields_set__"].__set__,
        "set_extra": slots["__pydantic_extra__"].__set__,
        "set_private": slots["__pydantic_private__"].__set__,
    }
    exec(compile(trusted_source(cls), f"<trusted {cls.__name__}>", "exec"), namespace)  # generated above
    build: Callable[_P, _M] = namespace["build"]
    return build
