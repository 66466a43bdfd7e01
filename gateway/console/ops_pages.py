"""Console pages for operators: an order, the dead letters and exceptions with their
actions (each asks for confirmation, needs the operator role and is written to the
audit log), the partners, the audit log, and the users (admin)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway import dashboard as figures
from gateway import operations, orders, users
from gateway.api.feed import dead_letter_filter, plausible_id
from gateway.api.keys import DATABASE, DELIVERY, OVERRIDES, PARTNERS, PIPELINE
from gateway.console.auth import USER, audit_action, page, refused, render, see_other
from gateway.domain.orders import EXCEPTION_KINDS
from gateway.domain.replay import ReplayNotAllowed, ReplayStage, parse_stage
from gateway.erp import DeadLetterFilter
from gateway.erp import dead_letters as list_dead_letters
from gateway.users import Role

PAGE = 100


@page()
async def order(request: web.Request) -> web.StreamResponse:
    partner_id, po = request.match_info["partner_id"], request.match_info["po_number"]
    policy = orders.policy_of(request.app[PARTNERS].current, partner_id)
    async with request.app[DATABASE].read() as conn:
        view = await orders.order_view(
            conn, partner_id, po, now=request.app[OVERRIDES].clock(), policy=policy
        )
    if view is None:
        return refused(request, 404, f"No order {po} of partner {partner_id}.")
    return render(request, "order.html", o=view)


@page()
async def dead_letters(request: web.Request) -> web.StreamResponse:
    after = request.query.get("after") or None
    if after is not None and not plausible_id(after):
        after = None
    now = request.app[OVERRIDES].clock()
    try:
        where = dead_letter_filter(request.query, now)
        problem = None
    except ValueError as exc:
        where, problem = DeadLetterFilter(), str(exc)
    items = await list_dead_letters(request.app[DATABASE], limit=PAGE + 1, after=after, where=where)
    more = len(items) > PAGE
    items = [{**d, "age": _age(now, datetime.fromisoformat(d["created_at"]))} for d in items[:PAGE]]
    kept = {k: v for k, v in request.query.items() if k in FILTERS and v}
    return render(
        request,
        "dead_letters.html",
        items=items,
        next_page="?" + urlencode({**kept, "after": items[-1]["id"]}) if more else None,
        filters=kept,
        problem=problem,
        partner_ids=sorted(request.app[PARTNERS].current.entries) if request.app[PARTNERS].current else [],
        kinds=DEAD_LETTER_KINDS,
        refresh=15,
        flash=request.query.get("done"),
        cancelled=request.query.get("cancelled"),
    )


FILTERS = ("type", "kind", "partner", "older_than_hours")
DEAD_LETTER_KINDS = ("850", "855", "856", "810", "997", "999", "TA1")
STAGE_TEXT = {
    ReplayStage.TRANSLATE: "Translate again from the stored raw bytes (validation, translation and "
    "documents anew, same Idempotency-Keys).",
    ReplayStage.DELIVER: "Deliver the documents already translated to the ERP again, without "
    "translating (same Idempotency-Keys: the ERP can dedupe).",
    ReplayStage.ACKNOWLEDGE: "Send the acknowledgment (TA1/997/999) built for the message to the "
    "partner again through its channel.",
}


@dataclass(frozen=True, slots=True)
class Action:
    """An operator action: a confirmation page (GET) and the form it posts (POST),
    both on ``/ui/{what}/{id}/{verb}``; ``run`` does it and answers where to go."""

    audit: str
    noun: str
    title: str
    explain: str
    button: str
    back: str
    stages: tuple[ReplayStage, ...] = ()


Run = Callable[[web.Request, str, ReplayStage, bool], Awaitable[tuple[str, str]]]


def confirm_page(action: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @page(Role.OPERATOR)
    async def confirm(request: web.Request) -> web.StreamResponse:
        item_id = request.match_info["id"]
        if not plausible_id(item_id):
            return refused(request, 404, f"No such {action.noun}.")
        release = request.query.get("release") == "1"  # a quarantined message: translate is all it has
        stages = (ReplayStage.TRANSLATE,) if release and action.stages else action.stages
        return render(
            request,
            "confirm.html",
            title=action.title.format(id=item_id, verb="Release" if release else "Replay"),
            explain=action.explain,
            action=request.path,
            button="Release" if release else action.button,
            back=action.back.format(id=item_id),
            stages=[(s.value, STAGE_TEXT[s]) for s in stages],
            redeliver=ReplayStage.DELIVER in stages and ReplayStage.ACKNOWLEDGE in stages,
        )

    return confirm


def act_page(action: Action, run: Run) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @page(Role.OPERATOR, form=True)
    async def act(request: web.Request) -> web.StreamResponse:
        item_id = request.match_info["id"]
        if not plausible_id(item_id):
            return refused(request, 404, f"No such {action.noun}.")
        data = await request.post()
        stage = ReplayStage.TRANSLATE
        if action.stages:
            try:
                stage = parse_stage(data.get("from") or None)
            except ReplayNotAllowed as exc:
                return refused(request, 422, str(exc))
            if stage not in action.stages:
                return refused(request, 422, f"A {action.noun} is not replayed from {stage}.")
        redeliver = data.get("redeliver") == "1" and stage is ReplayStage.DELIVER
        said = f"from {stage}{', redeliver' if redeliver else ''}" if action.stages else None
        try:
            outcome, location = await run(request, item_id, stage, redeliver)
        except operations.NotFound as exc:
            await audit_action(request, action.audit, item_id, "not_found", said)
            return refused(request, 404, str(exc))
        except operations.Refused as exc:
            await audit_action(
                request, action.audit, item_id, "refused", f"{said}: {exc}" if said else str(exc)
            )
            return refused(request, 409, str(exc))
        await audit_action(request, action.audit, item_id, outcome, said)
        return see_other(location)

    return act


def _requested_by(request: web.Request) -> str:
    return f"console: {request[USER].name}"


async def _replay_dead_letter(
    request: web.Request, item_id: str, stage: ReplayStage, _redeliver: bool
) -> tuple[str, str]:
    done = await operations.replay_dead_letter(
        request.app[DATABASE],
        request.app[PIPELINE],
        request.app[DELIVERY],
        item_id,
        now=request.app[OVERRIDES].clock(),
        requested_by=_requested_by(request),
        stage=stage,
    )
    if done.message_id:
        return done.status, f"/ui/messages/{done.message_id}"
    return done.status, "/ui/dead-letters?done=" + item_id


async def _cancel_dead_letter(request: web.Request, item_id: str, *_: Any) -> tuple[str, str]:
    await operations.cancel_dead_letter(
        request.app[DATABASE],
        item_id,
        now=request.app[OVERRIDES].clock(),
        requested_by=_requested_by(request),
    )
    return "cancelled", "/ui/dead-letters?cancelled=" + item_id


async def _replay_message(
    request: web.Request, message_id: str, stage: ReplayStage, redeliver: bool
) -> tuple[str, str]:
    status = await operations.replay_message(
        request.app[PIPELINE],
        request.app[DELIVERY],
        message_id,
        requested_by=_requested_by(request),
        stage=stage,
        redeliver=redeliver,
    )
    return "replaying" if stage is ReplayStage.TRANSLATE else status, f"/ui/messages/{message_id}"


REPLAY_DEAD_LETTER = Action(
    audit="replay_dead_letter",
    noun="dead letter",
    title="Replay dead letter {id}?",
    explain="The document is sent again. An ERP document's message runs again from the stage you choose "
    "(the ERP sees the same Idempotency-Key); a partner delivery is queued again (the stage does not apply).",
    button="Replay",
    back="/ui/dead-letters",
    stages=(ReplayStage.TRANSLATE, ReplayStage.DELIVER),
)
CANCEL_DEAD_LETTER = Action(
    audit="cancel_dead_letter",
    noun="dead letter",
    title="Cancel dead letter {id}?",
    explain="The gateway gives up on it for good: it leaves this list and is never sent unless "
    "its message is replayed. Do this when the document was handled another way.",
    button="Cancel it",
    back="/ui/dead-letters",
)
REPLAY_MESSAGE = Action(
    audit="replay_message",
    noun="message",
    title="{verb} message {id}?",
    explain="The message runs again from the stage you choose, through the partner's current profile. "
    "Documents the ERP has already taken keep their Idempotency-Key: nothing is posted twice unless you "
    "ask for it.",
    button="Replay",
    back="/ui/messages/{id}",
    stages=tuple(ReplayStage),
)


@page()
async def exceptions(request: web.Request) -> web.StreamResponse:
    kind = request.query.get("kind") or None
    if kind is not None and kind not in EXCEPTION_KINDS:
        kind = None
    cursor = request.query.get("cursor") or None
    if cursor is not None and not plausible_id(cursor):
        cursor = None
    async with request.app[DATABASE].read() as conn:
        found = await orders.list_exceptions(
            conn,
            partner_id=request.query.get("partner") or None,
            kind=kind,
            open_only=True,
            since=None,
            cursor=cursor,
            limit=PAGE,
        )
    now = request.app[OVERRIDES].clock()
    items = [{**e, "age": _age(now, datetime.fromisoformat(e["since"]))} for e in found["items"]]
    return render(
        request, "exceptions.html", items=items, next_cursor=found["next"], kinds=EXCEPTION_KINDS, kind=kind
    )


def _age(now: datetime, then: datetime) -> str:
    seconds = int((now - then.astimezone(UTC)).total_seconds())
    if seconds < 3600:
        return f"{max(seconds, 0) // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@page()
async def partners(request: web.Request) -> web.StreamResponse:
    import as2

    holder = request.app[PARTNERS]
    directory = holder.current
    now = request.app[OVERRIDES].clock()
    entries = sorted(directory.entries.values(), key=lambda e: e.profile.id) if directory else []
    async with request.app[DATABASE].read() as conn:
        traffic = await figures.partners_traffic(conn, (e.profile.id for e in entries), now)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        t = entry.transport
        channels = [c for c, on in (("rest", t.rest), ("as2", t.as2), ("sftp", t.sftp)) if on is not None]
        certs = t.as2.loaded_certificates() if t.as2 is not None else ()
        expiry = min((as2.days_until_expiry(c, now) for c in certs), default=None)
        rows.append(
            {
                "id": entry.profile.id,
                "inbound": channels,
                "delivery": t.delivery.channel,
                "cert_days": expiry,
                **traffic[entry.profile.id],
            }
        )
    problems = holder.error.splitlines() if holder.error else []
    return render(request, "partners.html", rows=rows, problems=problems, now=now)


@page()
async def audit_log(request: web.Request) -> web.StreamResponse:
    try:
        before = int(request.query["before"]) if request.query.get("before") else None
    except ValueError:
        before = None
    entries = await users.audit_entries(request.app[DATABASE], limit=PAGE + 1, before=before)
    more = len(entries) > PAGE
    entries = entries[:PAGE]
    return render(request, "audit.html", entries=entries, next_before=entries[-1].id if more else None)


@page(Role.ADMIN)
async def users_page(request: web.Request) -> web.StreamResponse:
    return render(
        request,
        "users.html",
        people=await users.list_users(request.app[DATABASE]),
        roles=list(Role),
        message=request.query.get("done"),
    )


@page(Role.ADMIN, form=True)
async def users_add(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    name, role, password = (str(data.get(k) or "") for k in ("name", "role", "password"))
    try:
        await users.add_user(request.app[DATABASE], name, role, password, now=request.app[OVERRIDES].clock())
    except users.UserError as exc:
        await audit_action(request, "user_add", name[:100] or "-", "refused", str(exc))
        return refused(request, 422, str(exc))
    await audit_action(request, "user_add", name, "ok", f"role {role}")
    return see_other("/ui/users?done=added")


@page(Role.ADMIN, form=True)
async def users_disable(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    name = str(data.get("name") or "")
    enable = data.get("enable") == "1"
    if name == request[USER].name and not enable:
        return refused(request, 409, "You cannot disable yourself.")
    found = await users.set_disabled(
        request.app[DATABASE], name, not enable, now=request.app[OVERRIDES].clock()
    )
    action = "user_enable" if enable else "user_disable"
    await audit_action(request, action, name[:100] or "-", "ok" if found else "not_found")
    if not found:
        return refused(request, 404, f"No user {name}.")
    return see_other("/ui/users?done=" + ("enabled" if enable else "disabled"))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ui/orders/{partner_id}/{po_number}", order)
    app.router.add_get("/ui/dead-letters", dead_letters)
    for path, action, run in (
        ("/ui/dead-letters/{id}/replay", REPLAY_DEAD_LETTER, _replay_dead_letter),
        ("/ui/dead-letters/{id}/cancel", CANCEL_DEAD_LETTER, _cancel_dead_letter),
        ("/ui/messages/{id}/replay", REPLAY_MESSAGE, _replay_message),
    ):
        app.router.add_get(path, confirm_page(action))
        app.router.add_post(path, act_page(action, run))
    app.router.add_get("/ui/exceptions", exceptions)
    app.router.add_get("/ui/partners", partners)
    app.router.add_get("/ui/audit", audit_log)
    app.router.add_get("/ui/users", users_page)
    app.router.add_post("/ui/users", users_add)
    app.router.add_post("/ui/users/disable", users_disable)
