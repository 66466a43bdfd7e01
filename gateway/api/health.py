"""Liveness and readiness probes.

``GET /healthz``: the process answers (no dependency is touched, so a slow
database never gets the process restarted). ``GET /readyz``: the database answers,
the partner profiles are loaded, the raw store directory takes a new file and the
disk under ``data_dir`` has at least ``[storage] min_free_mb`` free; 503 otherwise
(``reason`` says which check failed), so a load balancer stops sending partners here.
The body also carries ``partners: {"loaded": N, "reload_error": str|null}`` (a
fixed sentence, no paths or partner ids: this endpoint is unauthenticated): a
refused reload keeps the previous profiles in use, so it does not make the service
unready, but it shows here (and as ``gateway_partner_reload_failed`` in /metrics).
Neither needs authentication; neither reveals secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from pathlib import Path

from aiohttp import web

from gateway.api.keys import DATABASE, PARTNERS, SETTINGS

log = logging.getLogger(__name__)
_probes = itertools.count()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(request.app[DATABASE].ping(), timeout=5)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say what, not how
        log.warning("readiness: database check failed: %s", exc)
        checks["database"] = "unavailable"
    holder = request.app[PARTNERS]
    checks["partners"] = "ok" if holder.current is not None else "not loaded"
    settings = request.app[SETTINGS]
    try:
        problem: str | None = await asyncio.wait_for(
            asyncio.to_thread(
                storage_problem, settings.raw_dir, settings.data_dir, settings.storage.min_free_mb
            ),
            timeout=5,
        )
        checks["storage"] = problem or "ok"
    except TimeoutError:
        checks["storage"] = "the raw store did not answer within 5 s"
    if checks["storage"] != "ok":
        log.warning("readiness: storage check failed (raw store %s): %s", settings.raw_dir, checks["storage"])
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, object] = {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "partners": {
            "loaded": len(holder.current) if holder.current is not None else 0,
            # Unauthenticated: say that a reload was refused, never which profile or
            # partner (the log and POST /api/v1/partners/reload give the details).
            "reload_error": "the last partner reload was refused; the previous profiles are in use"
            if holder.error
            else None,
        },
    }
    if not ready:
        body["reason"] = "; ".join(f"{name}: {value}" for name, value in checks.items() if value != "ok")
    return web.json_response(body, status=200 if ready else 503)


def storage_problem(raw_dir: Path, data_dir: Path, min_free_mb: int) -> str | None:
    """None when a raw payload could be stored now, else what is wrong (no paths: the
    probe is public). Cheap: one empty file created and removed in ``<raw>/tmp``
    (where every body is written first; see gateway.rawstore) and two ``statvfs``."""
    tmp = raw_dir / "tmp"
    probe = tmp / f".readyz-{os.getpid()}-{next(_probes)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with contextlib.suppress(FileNotFoundError):  # another process starting on this raw dir cleared tmp/
            os.unlink(probe)
    except OSError as exc:
        return f"raw store not writable ({exc.strerror or type(exc).__name__})"
    for what, path in (("data_dir", data_dir), ("raw store", raw_dir)):  # raw/ may be a mount of its own
        try:
            st = os.statvfs(path)
        except OSError as exc:
            return f"cannot check free space of the {what} ({exc.strerror or type(exc).__name__})"
        free_mb = st.f_bavail * st.f_frsize // (1024 * 1024)
        if free_mb < min_free_mb:
            return f"{free_mb} MB free on the {what} disk, less than storage.min_free_mb = {min_free_mb}"
    return None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
