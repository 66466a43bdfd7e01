"""Partner hooks: ``partners/<id>/hooks.py``, for what a profile's data cannot say.

Profiles are declarative first; a hooks file is the escape hatch for one partner's
oddity (a reference that must be derived from two others, a store number hidden in
a name). It may define either or both of::

    def inbound(document: dict, context: dict) -> dict | None: ...
    def outbound(document: dict, context: dict) -> dict | None: ...

``document`` is the canonical JSON object (``{"kind", "partner_id", "envelope",
"document"}``; outbound without ``envelope``: only its ``document`` is used), a
fresh copy the hook may change in place or replace; returning None keeps the
(changed) argument.
``context`` says ``partner_id``, ``direction`` and ``kind``; for an inbound hook also
``segments``, the transaction set as the partner sent it (ST..SE, each segment a
list of its tag and element values, composites unsplit), for what the canonical
document does not carry (see its ``unmapped``). Inbound hooks run after
mapping and before the document is stored; outbound hooks run before rendering. The
result is validated against the canonical models again, so a hook can never hand the
ERP or a partner something the contract does not allow.

A hook that raises, or returns something invalid, stops the step with
:class:`HookError`: the message fails with the reason and is replayed once the
file is fixed (a hook must not silently drop data). Hooks run wherever translation
runs (the translation worker processes included) and are loaded on first use and
again when the file changes.

Trust: a hooks file is code run by the gateway with its privileges. It is part of
the operator's configuration, like the profile: the partners directory must be
writable by operators only (docs/threat-model.md). Never pass partner data to a
shell from a hook.
"""

from __future__ import annotations

import copy
import importlib.util
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HOOK_NAMES = ("inbound", "outbound")

Hook = Callable[[dict[str, Any], dict[str, Any]], "dict[str, Any] | None"]


class HookError(Exception):
    """A partner hook failed, or returned a document the contract does not allow."""


_cache: dict[Path, tuple[tuple[int, int], dict[str, Hook]]] = {}
_lock = threading.Lock()


def load_hooks(path: Path) -> dict[str, Hook]:
    """The hook functions defined in ``path`` (reloaded when the file changes)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise HookError(f"{path}: cannot read: {exc.strerror or exc}") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        name = f"gateway_partner_hooks_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise HookError(f"{path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise HookError(f"{path}: cannot load: {type(exc).__name__}: {exc}") from None
        hooks: dict[str, Hook] = {}
        for hook_name in HOOK_NAMES:
            fn = getattr(module, hook_name, None)
            if fn is None:
                continue
            if not callable(fn):
                raise HookError(f"{path}: {hook_name} is not a function")
            hooks[hook_name] = fn
        _cache[path] = (stamp, hooks)
        return hooks


def run_hook(
    path: Path | None,
    name: str,
    document: dict[str, Any],
    *,
    partner_id: str,
    kind: str,
    segments: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """``document`` after the partner's ``name`` hook (unchanged when there is none).

    The caller validates the result against the canonical models."""
    if path is None:
        return document
    hook = load_hooks(path).get(name)
    if hook is None:
        return document
    working = copy.deepcopy(document)
    context: dict[str, Any] = {
        "partner_id": partner_id,
        "direction": "in" if name == "inbound" else "out",
        "kind": kind,
    }
    if segments is not None:
        context["segments"] = [list(segment) for segment in segments]
    try:
        result = hook(working, context)
    except Exception as exc:
        raise HookError(f"{path}: {name} hook raised {type(exc).__name__}: {exc}") from None
    if result is None:
        result = working
    if not isinstance(result, dict):
        raise HookError(f"{path}: {name} hook returned {type(result).__name__}, not a dict")
    return result


def inbound_document(path: Path | None, document: Any, segments: Sequence[Sequence[str]] = ()) -> Any:
    """A translated :class:`CanonicalDocument` through the partner's inbound hook,
    validated again (the same object when there is no hook). ``segments`` are the
    set's raw segments (ST..SE), handed to the hook as ``context["segments"]``."""
    if path is None or "inbound" not in load_hooks(path):
        return document
    from pydantic import ValidationError

    from translators.canonical import CanonicalDocument

    data = run_hook(
        path,
        "inbound",
        document.model_dump(mode="json"),
        partner_id=document.partner_id or "",
        kind=document.kind,
        segments=segments,
    )
    try:
        return CanonicalDocument.model_validate(data)
    except ValidationError as exc:
        raise HookError(f"{path}: inbound hook returned an invalid document: {_first_errors(exc)}") from None


def outbound_document(path: Path | None, document: Any, *, partner_id: str) -> Any:
    """A canonical document from the ERP through the partner's outbound hook,
    validated again as the same model."""
    if path is None or "outbound" not in load_hooks(path):
        return document
    from pydantic import ValidationError

    from translators.canonical import kind_of

    kind = kind_of(document)
    wrapped = {"kind": kind, "partner_id": partner_id, "document": document.model_dump(mode="json")}
    data = run_hook(path, "outbound", wrapped, partner_id=partner_id, kind=kind)
    try:
        return type(document).model_validate(data.get("document"))
    except ValidationError as exc:
        raise HookError(f"{path}: outbound hook returned an invalid document: {_first_errors(exc)}") from None


def _first_errors(exc: Any) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg')}")
    return "; ".join(parts)
