"""Canonical documents as JSON bytes, fast: exactly the bytes of pydantic's
``model_dump_json()``, written by orjson.

Why: on the translation path encoding was a quarter of the CPU time, most of it
pydantic calling a Python function per decimal (``decimal_text``, the ``Money``
serializer) from Rust. Here orjson walks the document: a model instance is handed
over as its ``__dict__`` (pydantic keeps the field values there, in field order)
and a decimal as its plain-notation text, one small callback each, and orjson
writes everything else in C. The pydantic models stay the contract: their JSON
Schema, their validation of what the ERP and partners send, and
``model_dump_json()``, whose output this module must equal byte for byte (the tests
hold every golden and generated document to it).

Each model class is checked once, when first met: a model this module cannot
promise to write as pydantic does (a float or datetime field, a decimal without the
``Money`` serializer, a field or model serializer, a computed field, an alias,
extra keys) is written by pydantic itself and embedded as an ``orjson.Fragment``,
so a new model or field can only cost speed, never change the output. Nothing here
does I/O.
"""

from __future__ import annotations

import enum
import functools
import types
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, PlainSerializer

from translators.canonical.common import decimal_text

__all__ = ["encode_document", "plain_model"]

_SCALARS = (str, int, bool, type(None))
_PLAIN: set[type] = set()  # model classes orjson may take as their __dict__


def encode_document(document: BaseModel) -> bytes:
    """``document.model_dump_json().encode()``, faster (see the module docstring)."""
    try:
        return orjson.dumps(document, default=_default)
    except orjson.JSONEncodeError:
        # e.g. a lone surrogate a hook put in a string: let pydantic say what it says
        return document.model_dump_json().encode()


def _default(value: Any) -> Any:
    cls = type(value)
    if cls is Decimal:
        # decimal_text, inlined: only Money fields hold decimals (plain_model checks)
        return format(value, "f")
    if cls in _PLAIN:
        return value.__dict__
    if isinstance(value, BaseModel):
        model = type(value)
        if plain_model(model):
            _PLAIN.add(model)
            return value.__dict__
        return orjson.Fragment(value.model_dump_json())
    raise TypeError(f"not part of a canonical model: {cls.__name__}")


class _Unsupported(Exception):
    """A field type whose JSON this module cannot promise to write as pydantic does."""


@functools.cache
def plain_model(model: type[BaseModel]) -> bool:
    """True when orjson writes ``model``'s ``__dict__`` exactly as
    ``model_dump_json`` writes the model (see the module docstring)."""
    decorators = model.__pydantic_decorators__
    if (
        decorators.field_serializers
        or decorators.model_serializers
        or decorators.computed_fields
        or model.model_config.get("extra") == "allow"
        or any(isinstance(v, functools.cached_property) for c in model.__mro__ for v in vars(c).values())
    ):
        return False
    for name, info in model.model_fields.items():
        if info.exclude or info.serialization_alias not in (None, name) or info.alias not in (None, name):
            return False
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        try:
            _check(annotation)
        except _Unsupported:
            return False
    return True


def _check(annotation: Any) -> None:
    """Raise _Unsupported unless orjson (with :func:`_default`) writes a value of
    ``annotation`` exactly as pydantic does."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        serializers = [m for m in metadata if isinstance(m, PlainSerializer)]
        if serializers:
            if len(serializers) != 1 or serializers[0].func is not decimal_text or base is not Decimal:
                raise _Unsupported("a serializer other than the decimal one")
            return
        # other metadata (constraints, validators, JSON Schema) never changes the output
        _check(base)
        return
    if annotation is Decimal:
        raise _Unsupported("a decimal without the Money serializer")
    if origin in (Union, types.UnionType, tuple, list):
        args = get_args(annotation)
        if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            raise _Unsupported("a fixed-length tuple")
        for arg in args:
            if arg is not Ellipsis:
                _check(arg)
        return
    if origin is dict:
        key_type, value_type = get_args(annotation)
        if key_type is not str:
            raise _Unsupported("a dict with other than string keys")
        _check(value_type)
        return
    if origin is Literal:
        if not all(isinstance(a, str | bool | int | type(None)) for a in get_args(annotation)):
            raise _Unsupported("a literal of other than plain values")
        return
    if origin is not None or not isinstance(annotation, type):
        raise _Unsupported(f"type {annotation!r}")
    if annotation is datetime or issubclass(annotation, float):
        raise _Unsupported(f"type {annotation.__name__}")
    if annotation in _SCALARS or annotation is date:
        return
    if issubclass(annotation, enum.Enum) and issubclass(annotation, str | int):
        return
    if issubclass(annotation, BaseModel):
        return  # checked on its own when met
    raise _Unsupported(f"type {annotation!r}")
