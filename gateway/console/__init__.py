"""The operations console: server-rendered pages under ``/ui/`` (docs/console.md).

- :mod:`gateway.console.auth`: login, logout, the session cookie, CSRF tokens, roles.
- :mod:`gateway.console.pages`: dashboard, search, messages, a message.
- :mod:`gateway.console.ops_pages`: orders, dead letters and exceptions with their
  actions, partners, the audit log, users.
- :mod:`gateway.console.x12view` and :mod:`gateway.console.charts`: pure helpers
  (segments and the 997's pointers; the inline SVG chart).

Templates and static files are package data beside this file: no CDN, no network
fetch at run time, no build step. Pages read the same query functions as the
internal API (gateway.queries, gateway.orders, gateway.erp); they never hold SQL.
"""

from __future__ import annotations

from aiohttp import web

from gateway.console import auth, ops_pages, pages


def add_routes(app: web.Application) -> None:
    auth.setup(app)
    auth.add_routes(app)
    pages.add_routes(app)
    ops_pages.add_routes(app)
