"""Console pages for operators: an order, the dead letters and exceptions with their
actions (each asks for confirmation, needs the operator role and is written to the
audit log), the partners, the audit log, and the users (admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway import dashboard as figures
from gateway import operations, orders, users
from gateway.api.feed import plausible_id
from gateway.api.keys import DATABASE, DELIVERY, OVERRIDES, PARTNERS, PIPELINE
from gateway.console.auth import USER, audit_action, page, refused, render, see_other
from gateway.domain.orders import EXCEPTION_KINDS
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
    items = await list_dead_letters(request.app[DATABASE], limit=PAGE + 1, after=after)
    more = len(items) > PAGE
    items = items[:PAGE]
    return render(
        request,
        "dead_letters.html",
        items=items,
        next_after=items[-1]["id"] if more else None,
        refresh=15,
        flash=request.query.get("done"),
        cancelled=request.query.get("cancelled"),
    )


@page(Role.OPERATOR)
async def confirm_replay(request: web.Request) -> web.StreamResponse:
    item_id = request.match_info["id"]
    if not plausible_id(item_id):
        return refused(request, 404, "No such dead letter.")
    return render(
        request,
        "confirm.html",
        title=f"Replay dead letter {item_id}?",
        explain="The document is sent again: an ERP document's message runs again from its stored bytes "
        "(the ERP sees the same Idempotency-Key); a partner delivery is queued again.",
        action=f"/ui/dead-letters/{item_id}/replay",
        button="Replay",
        back="/ui/dead-letters",
    )


@page(Role.OPERATOR, form=True)
async def replay(request: web.Request) -> web.StreamResponse:
    item_id = request.match_info["id"]
    if not plausible_id(item_id):
        return refused(request, 404, "No such dead letter.")
    try:
        done = await operations.replay_dead_letter(
            request.app[DATABASE],
            request.app[PIPELINE],
            request.app[DELIVERY],
            item_id,
            now=request.app[OVERRIDES].clock(),
            requested_by=f"console: {request[USER].name}",
        )
    except operations.NotFound as exc:
        await audit_action(request, "replay_dead_letter", item_id, "not_found")
        return refused(request, 404, str(exc))
    except operations.Refused as exc:
        await audit_action(request, "replay_dead_letter", item_id, "refused", str(exc))
        return refused(request, 409, str(exc))
    await audit_action(request, "replay_dead_letter", item_id, done.status)
    if done.message_id:
        return see_other(f"/ui/messages/{done.message_id}")
    return see_other("/ui/dead-letters?done=" + item_id)


@page(Role.OPERATOR)
async def confirm_cancel(request: web.Request) -> web.StreamResponse:
    item_id = request.match_info["id"]
    if not plausible_id(item_id):
        return refused(request, 404, "No such dead letter.")
    return render(
        request,
        "confirm.html",
        title=f"Cancel dead letter {item_id}?",
        explain="The gateway gives up on it for good: it leaves this list and is never sent unless "
        "its message is replayed. Do this when the document was handled another way.",
        action=f"/ui/dead-letters/{item_id}/cancel",
        button="Cancel it",
        back="/ui/dead-letters",
    )


@page(Role.OPERATOR, form=True)
async def cancel(request: web.Request) -> web.StreamResponse:
    item_id = request.match_info["id"]
    if not plausible_id(item_id):
        return refused(request, 404, "No such dead letter.")
    try:
        await operations.cancel_dead_letter(
            request.app[DATABASE],
            item_id,
            now=request.app[OVERRIDES].clock(),
            requested_by=f"console: {request[USER].name}",
        )
    except operations.NotFound as exc:
        await audit_action(request, "cancel_dead_letter", item_id, "not_found")
        return refused(request, 404, str(exc))
    except operations.Refused as exc:
        await audit_action(request, "cancel_dead_letter", item_id, "refused", str(exc))
        return refused(request, 409, str(exc))
    await audit_action(request, "cancel_dead_letter", item_id, "cancelled")
    return see_other("/ui/dead-letters?cancelled=" + item_id)


@page(Role.OPERATOR)
async def confirm_message_replay(request: web.Request) -> web.StreamResponse:
    message_id = request.match_info["id"]
    if not plausible_id(message_id):
        return refused(request, 404, "No such message.")
    release = request.query.get("release") == "1"
    return render(
        request,
        "confirm.html",
        title=f"{'Release' if release else 'Replay'} message {message_id}?",
        explain="The message runs again from its stored bytes through the partner's current profile. "
        "Documents the ERP has already taken keep their Idempotency-Key: nothing is posted twice.",
        action=f"/ui/messages/{message_id}/replay",
        button="Release" if release else "Replay",
        back=f"/ui/messages/{message_id}",
    )


@page(Role.OPERATOR, form=True)
async def message_replay(request: web.Request) -> web.StreamResponse:
    message_id = request.match_info["id"]
    if not plausible_id(message_id):
        return refused(request, 404, "No such message.")
    try:
        await operations.replay_message(
            request.app[PIPELINE], message_id, requested_by=f"console: {request[USER].name}"
        )
    except operations.Refused as exc:
        await audit_action(request, "replay_message", message_id, "refused", str(exc))
        return refused(request, 409, str(exc))
    await audit_action(request, "replay_message", message_id, "replaying")
    return see_other(f"/ui/messages/{message_id}")


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
    rows: list[dict[str, Any]] = []
    async with request.app[DATABASE].read() as conn:
        for entry in sorted(directory.entries.values(), key=lambda e: e.profile.id) if directory else []:
            t = entry.transport
            channels = [c for c, on in (("rest", t.rest), ("as2", t.as2), ("sftp", t.sftp)) if on is not None]
            certs = t.as2.loaded_certificates() if t.as2 is not None else ()
            expiry = min((as2.days_until_expiry(c, now) for c in certs), default=None)
            traffic = await figures.partner_traffic(conn, entry.profile.id, now)
            rows.append(
                {
                    "id": entry.profile.id,
                    "inbound": channels,
                    "delivery": t.delivery.channel,
                    "cert_days": expiry,
                    **traffic,
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
    app.router.add_get("/ui/dead-letters/{id}/replay", confirm_replay)
    app.router.add_post("/ui/dead-letters/{id}/replay", replay)
    app.router.add_get("/ui/dead-letters/{id}/cancel", confirm_cancel)
    app.router.add_post("/ui/dead-letters/{id}/cancel", cancel)
    app.router.add_get("/ui/messages/{id}/replay", confirm_message_replay)
    app.router.add_post("/ui/messages/{id}/replay", message_replay)
    app.router.add_get("/ui/exceptions", exceptions)
    app.router.add_get("/ui/partners", partners)
    app.router.add_get("/ui/audit", audit_log)
    app.router.add_get("/ui/users", users_page)
    app.router.add_post("/ui/users", users_add)
    app.router.add_post("/ui/users/disable", users_disable)
