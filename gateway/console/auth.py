"""Who is using the console, and may they do this.

- The session cookie ``gw_session`` is HttpOnly, SameSite=Strict, Path=/ui, and
  Secure when the request came over TLS or ``[console] public_url`` is https.
- Every form carries ``csrf_token``: the session's token once logged in; before that
  (the login form) a double-submit value also set as the ``gw_login_csrf`` cookie.
  A POST without the right one is refused with 403 before anything else is read.
- Failed logins are limited per (user name, client address): ``[console]
  login_attempts`` within ``login_window_seconds``, then 429 until the window passes;
  counted in the database (gateway.users.LoginLimit), so every process shares it.
- Roles: ``viewer`` looks, ``operator`` also replays/releases, ``admin`` also
  manages users (gateway.users.Role). The internal API token is not accepted here,
  and a session is not accepted by the API: machines and people stay apart.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from gateway import users
from gateway.api.keys import DATABASE, OVERRIDES, SETTINGS
from gateway.console.charts import duration
from gateway.users import LoginLimit, Role, SessionUser

log = logging.getLogger(__name__)

COOKIE = "gw_session"
LOGIN_CSRF_COOKIE = "gw_login_csrf"
HERE = Path(__file__).parent
TEMPLATES = web.AppKey("console_templates", jinja2.Environment)
LIMITER = web.AppKey("console_login_limit", LoginLimit)
# The SessionUser of this request: a typed RequestKey where aiohttp has them (3.14+,
# which warns about plain string keys), a string key before.
USER: Any = web.RequestKey("console_user", SessionUser) if hasattr(web, "RequestKey") else "console_user"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def setup(app: web.Application) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = duration
    app[TEMPLATES] = env
    console = app[SETTINGS].console
    app[LIMITER] = LoginLimit(console.login_attempts, timedelta(seconds=console.login_window_seconds))


def client_of(request: web.Request) -> str:
    return request.remote or "-"


def secure(request: web.Request) -> bool:
    public = request.app[SETTINGS].console.public_url
    return request.secure or bool(public and public.lower().startswith("https://"))


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    user: SessionUser | None = request.get(USER)
    body = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            user=user,
            csrf_token=user.csrf_token if user is not None else "",
            can_act=user is not None and user.role.may(Role.OPERATOR),
            is_admin=user is not None and user.role.may(Role.ADMIN),
            path=request.path,
            query=request.query.get("q", ""),
            **context,
        )
    )
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
    )


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **SECURITY_HEADERS})


def refused(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", status=status, status_code=status, message=message)


async def current_user(request: web.Request) -> SessionUser | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return await users.session_user(request.app[DATABASE], token, now=request.app[OVERRIDES].clock())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(needed: Role = Role.VIEWER, *, form: bool = False) -> Callable[[Handler], Handler]:
    """A console handler: a session is required (GET without one: to the login page),
    ``needed`` is the least role, and a form (POST) must carry the session's CSRF token
    (checked first: 403 without it, whatever the role)."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = await current_user(request)
            if user is None:
                if request.method == "GET":
                    return see_other("/ui/?next=" + _quote(request.path_qs))
                return refused(request, 403, "Your session has ended: log in again.")
            request[USER] = user
            if form:
                data = await request.post()
                presented = data.get("csrf_token")
                if not isinstance(presented, str) or not hmac.compare_digest(
                    presented.encode(), user.csrf_token.encode()
                ):
                    return refused(request, 403, "This form is missing its security token: reload the page.")
            if not user.role.may(needed):
                if form:  # an attempt to act without the role is worth knowing about
                    await audit_action(request, "forbidden", request.path, f"needs {needed}")
                return refused(request, 403, f"This needs the {needed} role; you are {user.role}.")
            return await handler(request)

        return guarded

    return wrap


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="")


def _safe_next(value: str | None) -> str:
    # Only our own pages: never an absolute URL or //host (an open redirect).
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"


def login_form(request: web.Request, *, status: int = 200, message: str | None = None) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status=status,
        login_csrf=token,
        next=_safe_next(request.query.get("next")),
        message=message,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/ui", secure=secure(request)
    )
    return response


async def login(request: web.Request) -> web.StreamResponse:
    data = await request.post()
    presented, expected = data.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)
    if (
        not isinstance(presented, str)
        or not expected
        or not hmac.compare_digest(presented.encode(), expected.encode())
    ):
        return refused(request, 403, "This form is missing its security token: reload the page.")
    name = str(data.get("username") or "").strip()
    password = str(data.get("password") or "")
    client = client_of(request)
    db, now, limiter = request.app[DATABASE], request.app[OVERRIDES].clock(), request.app[LIMITER]
    if not await limiter.admit(db, name, client, now=now):
        await users.audit(
            db,
            actor=name[:100] or "-",
            action="login",
            target="console",
            outcome="rate_limited",
            now=now,
            client=client,
        )
        return login_form(
            request, status=429, message="Too many failed logins: wait a few minutes and try again."
        )
    found = await users.authenticate(db, name, password)
    if found is None:  # counted as failed by admit()
        await users.audit(
            db,
            actor=name[:100] or "-",
            action="login",
            target="console",
            outcome="refused",
            now=now,
            client=client,
        )
        return login_form(request, status=401, message="Wrong user name or password.")
    await limiter.succeeded(db, name, client)
    user_id, _role = found
    hours = request.app[SETTINGS].console.session_hours
    token = await users.open_session(db, user_id, now=now, lifetime=timedelta(hours=hours))
    await users.audit(db, actor=name, action="login", target="console", outcome="ok", now=now, client=client)
    response = see_other(_safe_next(str(data.get("next") or "")))
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        path="/ui",
        secure=secure(request),
        max_age=int(hours * 3600),
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/ui")
    return response


@page(form=True)
async def logout(request: web.Request) -> web.StreamResponse:
    user: SessionUser = request[USER]
    db = request.app[DATABASE]
    await users.close_session(db, user.token_hash)
    await users.audit(
        db,
        actor=user.name,
        action="logout",
        target="console",
        outcome="ok",
        now=request.app[OVERRIDES].clock(),
        client=client_of(request),
    )
    response = see_other("/ui/")
    response.del_cookie(COOKIE, path="/ui")
    return response


async def audit_action(
    request: web.Request, action: str, target: str, outcome: str, detail: str | None = None
) -> None:
    user: SessionUser = request[USER]
    await users.audit(
        request.app[DATABASE],
        actor=user.name,
        action=action,
        target=target,
        outcome=outcome,
        now=request.app[OVERRIDES].clock(),
        detail=detail,
        client=client_of(request),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ui", _redirect_home)
    app.router.add_post("/ui/login", login)
    app.router.add_post("/ui/logout", logout)
    app.router.add_static("/ui/static", HERE / "static", append_version=False)


async def _redirect_home(_request: web.Request) -> web.Response:
    return see_other("/ui/")
