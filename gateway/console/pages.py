"""Console pages that read: the dashboard, the search box's results, the messages
list (filters, keyset paging) and one message (timeline, raw X12 with the segments
the 997 points at, canonical documents paged, acknowledgments, ERP answers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from aiohttp import web

from gateway import dashboard as figures
from gateway import queries
from gateway.api.feed import plausible_id
from gateway.api.keys import BLOBS, DATABASE, OVERRIDES, PARTNERS, SETTINGS
from gateway.api.messages import mdn_overdue
from gateway.console.auth import USER, current_user, login_form, page, refused, render
from gateway.console.charts import volume_svg
from gateway.console.x12view import segments

log = logging.getLogger(__name__)

PAGE = 50
DOCS_PAGE = 20
SEGMENTS_PAGE = 500
MAX_RAW_SHOWN = 8 * 1024 * 1024  # larger files: download them with the API
CHART_TTL = 60.0  # the 14-day charts are drawn again this often, in the background
CHART_CACHE = web.AppKey("console_chart_cache", dict)
FINAL = {
    "acknowledged",
    "partly_delivered",
    "failed",
    "quarantined",
    "duplicate",
    "accepted",
    "accepted_with_errors",
    "partially_accepted",
    "rejected",
}
TIMELINE_STAGES = ("received", "stored", "translated", "delivered", "acknowledged")


async def home(request: web.Request) -> web.StreamResponse:
    """``/ui/``: the login form, or the dashboard once logged in."""
    user = await current_user(request)
    if user is None:
        return login_form(request)
    request[USER] = user
    return await dashboard(request)


async def dashboard(request: web.Request) -> web.StreamResponse:
    now = request.app[OVERRIDES].clock()
    async with request.app[DATABASE].read() as conn:
        counts = await figures.today(conn, now)
        stuck = await figures.stuck(conn, now)
        feed = request.app[SETTINGS].erp.mode == "feed"
        latency = await figures.erp_latency(conn, feed=feed)
        charts = await _charts(request, conn, now)
    return render(
        request,
        "dashboard.html",
        counts=counts,
        stuck=stuck,
        latency=latency,
        feed=feed,
        charts=charts,
        now=now,
        refresh=30,
    )


async def _charts(request: web.Request, conn: Any, now: datetime) -> list[tuple[str, str]]:
    hit = request.app[CHART_CACHE].get("volume")
    if hit is not None:
        return list(hit[1])
    return await _draw_charts(request.app, conn, now)  # only before the refresher's first run


async def _draw_charts(app: web.Application, conn: Any, now: datetime) -> list[tuple[str, str]]:
    volumes = await figures.daily_volume(conn, now)
    charts = [(v.partner_id, volume_svg(v.partner_id, v.days, v.total, v.failed)) for v in volumes]
    app[CHART_CACHE]["volume"] = (time.monotonic(), charts)
    return charts


async def chart_refresher(app: web.Application) -> AsyncIterator[None]:
    """Draws the 14-day charts every CHART_TTL seconds in the background: grouping
    every message of two weeks costs more than a page may (docs/performance.md), so
    no request waits for it; the dashboard shows the last drawing."""

    async def refresh() -> None:
        while True:
            try:
                async with app[DATABASE].read() as conn:
                    await _draw_charts(app, conn, app[OVERRIDES].clock())
            except Exception as exc:  # the next round tries again; the page keeps the last charts
                log.warning("console: drawing the 14-day charts failed: %s", type(exc).__name__)
            await asyncio.sleep(CHART_TTL)

    task = asyncio.create_task(refresh())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@page()
async def search(request: web.Request) -> web.StreamResponse:
    term = request.query.get("q", "").strip()
    hits: list[queries.Hit] = []
    if term:
        async with request.app[DATABASE].read() as conn:
            hits = await queries.search(conn, term)
    return render(request, "search.html", term=term, hits=hits)


def _day(text: str | None, *, end: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    start = datetime.combine(day, dtime(0, 0), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


@page()
async def messages(request: web.Request) -> web.StreamResponse:
    q = request.query
    cursor = q.get("cursor") or None
    if cursor is not None and not plausible_id(cursor):
        cursor = None
    filters = queries.MessageFilter(
        partner=q.get("partner") or None,
        direction=q.get("direction") if q.get("direction") in ("in", "out") else None,
        status=q.get("status") or None,
        kind=q.get("kind") or None,
        since=_day(q.get("from")),
        until=_day(q.get("to"), end=True),
        q=q.get("number") or None,
        cursor=cursor,
    )
    async with request.app[DATABASE].read() as conn:
        rows, next_cursor = await queries.list_messages(conn, filters, limit=PAGE)
    directory = request.app[PARTNERS].current
    partners = sorted(p.id for p in directory) if directory is not None else []
    keep = {k: v for k, v in q.items() if k != "cursor" and v}
    return render(
        request,
        "messages.html",
        rows=rows,
        next_cursor=next_cursor,
        filters=keep,
        partners=partners,
        now=request.app[OVERRIDES].clock(),
        refresh=0 if cursor else 15,
    )


@page()
async def message(request: web.Request) -> web.StreamResponse:
    message_id = request.match_info["id"]
    if not plausible_id(message_id):
        return refused(request, 404, "No such message.")
    try:
        after = max(0, int(request.query.get("docs_after", "0")))
        first_segment = max(1, int(request.query.get("segment", "1")))
    except ValueError:
        after, first_segment = 0, 1
    async with request.app[DATABASE].read() as conn:
        row = await queries.find_message(conn, message_id)
        if row is None:
            return refused(request, 404, f"No message {message_id}.")
        detail = await queries.message_detail(
            conn,
            row,
            pages={"documents": (0, None), "events": (1000, None), "attempts": (1000, None)},
            mdn_overdue=mdn_overdue(request),
        )
        documents = await queries.document_page(conn, message_id, after_seq=after, limit=DOCS_PAGE)
        total_documents = await queries.document_count(conn, message_id)
    # Every ack interchange: a 997 may travel beside a TA1 (older rows label such an
    # interchange TA1); a TA1 alone points at no segment.
    acks = [o for o in detail["outbox"] if o["kind"] in queries.ACK_KINDS]
    raw_lines, total_segments, raw_note = await _raw(request, row, first_segment, acks)
    timeline = _timeline(detail)
    return render(
        request,
        "message.html",
        m=detail,
        row=row,
        timeline=timeline,
        documents=documents,
        total_documents=total_documents,
        docs_after=after,
        next_docs=documents[-1].seq
        if len(documents) == DOCS_PAGE and documents[-1].seq < total_documents
        else None,
        raw_lines=raw_lines,
        total_segments=total_segments,
        first_segment=first_segment,
        segments_page=SEGMENTS_PAGE,
        raw_note=raw_note,
        refresh=0 if row.status in FINAL else 5,
    )


async def _raw(
    request: web.Request, row: Any, first: int, acks: list[dict[str, Any]]
) -> tuple[list[Any], int, str]:
    blobs = request.app[BLOBS]
    if row.raw_size > MAX_RAW_SHOWN or row.kind != "x12":
        if not await blobs.exists(row.raw_sha256):
            return [], 0, "The raw payload was pruned by retention."
        if row.raw_size <= MAX_RAW_SHOWN:
            return [], 0, ""
        return (
            [],
            0,
            f"The raw payload is {row.raw_size:,} bytes: download it with GET /api/v1/messages/{row.id}/raw.",
        )
    data = await blobs.read(row.raw_sha256)
    if data is None:
        return [], 0, "The raw payload was pruned by retention."
    try:  # as the X12 reader does: UTF-8, else Latin-1 (every byte is a character)
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    ack_texts = await _ack_payloads(request, [a["id"] for a in acks])
    lines, total = await asyncio.to_thread(segments, text, ack_texts, first=first, count=SEGMENTS_PAGE)
    return lines, total, ""


async def _ack_payloads(request: web.Request, ids: list[str]) -> list[str]:
    if not ids:
        return []
    async with request.app[DATABASE].read() as conn:
        return await queries.outbox_payloads(conn, ids)


def _timeline(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The message's events, with the delivery attempts (every retry and its error)
    placed among them by time."""
    entries = [
        {"at": e["at"], "what": e["state"], "detail": _short(e["detail"]), "error": False}
        for e in detail["timeline"]
    ]
    for a in detail["delivery_attempts"]:
        what = f"{a['target']} delivery: {a['outcome']}"
        if a["outcome"] == "confirmed":
            text = f"confirmed from the feed {a['duration_ms'] / 1000:.1f} s after it was stored"
        else:
            text = f"HTTP {a['status_code']}" if a["status_code"] else "no answer"
        if a["error"]:
            text += f": {a['error']}"
        ok = a["outcome"] in ("delivered", "confirmed")
        entries.append({"at": a["at"], "what": what, "detail": text, "error": not ok})
    entries.sort(key=lambda e: e["at"])
    return entries


def _short(detail: Any) -> str:
    if not detail:
        return ""
    if isinstance(detail, dict):
        return ", ".join(f"{k}: {v}" for k, v in detail.items())[:500]
    return str(detail)[:500]


async def root(request: web.Request) -> web.StreamResponse:
    """``/``: someone typed the gateway's address into a browser; the console is there."""
    raise web.HTTPFound("/ui/")


def add_routes(app: web.Application) -> None:
    app[CHART_CACHE] = {}
    app.cleanup_ctx.append(chart_refresher)
    app.router.add_get("/", root)
    app.router.add_get("/ui/", home)
    app.router.add_get("/ui/search", search)
    app.router.add_get("/ui/messages", messages)
    app.router.add_get("/ui/messages/{id}", message)
