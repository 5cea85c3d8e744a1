"""The widget's files, the demo CRM page, the sign-in page and the widget's team list.

`widget.js` and `widget.css` are public (a page on any origin loads them with
one script tag; nothing secret is in them). CORS headers let a host page on
an allowed origin call the API with its bearer widget token.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from aiohttp import web

from crm_core import DATABASE
from crm_core.openapi import describe
from crm_core.users import list_users
from web_widget.control import HUB
from web_widget.identity import CALL_ROLES, principal_from_request, public, require

routes = web.RouteTableDef()
STATIC = Path(__file__).with_name("static")
TEMPLATES = Path(__file__).with_name("templates")
NO_CACHE = {"Cache-Control": "no-cache"}


@routes.get("/widget.js")
@public
async def widget_js(_request: web.Request) -> web.Response:
    body = (STATIC / "widget.js").read_text(encoding="utf-8")
    return web.Response(text=body, content_type="application/javascript", headers=NO_CACHE)


@routes.get("/widget.css")
@public
async def widget_css(_request: web.Request) -> web.Response:
    body = (STATIC / "widget.css").read_text(encoding="utf-8")
    return web.Response(text=body, content_type="text/css", headers=NO_CACHE)


def render(template: str, **values: str) -> str:
    """A tiny template fill: `{{key}}` replaced by the escaped value."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    return text


@routes.get("/")
@public
async def crm_page(request: web.Request) -> web.StreamResponse:
    """The demo CRM page; anonymous visitors go to `/login` (it checks the session itself)."""
    principal = await principal_from_request(request)
    if principal is None:
        raise web.HTTPFound("/login")
    page = render(
        "crm.html",
        name=principal.name or principal.username,
        username=principal.username,
        role=principal.role,
        extension=principal.extension or "-",
    )
    return web.Response(text=page, content_type="text/html")


@routes.get("/login")
@public
async def login_page(_request: web.Request) -> web.Response:
    return web.Response(text=render("login.html"), content_type="text/html")


@routes.get("/api/widget/team")
@describe("Teammates with extension and live presence (the widget's Equipo tab)", tag="widget")
@require(*CALL_ROLES)
async def team(request: web.Request) -> web.Response:
    """Teammates with their extension and live presence: the widget's Equipo tab."""
    hub = request.app[HUB]
    live = {entry["agent"]: entry for entry in hub.team()}
    users = sorted(await list_users(request.app[DATABASE], include_inactive=False),
                   key=lambda u: (u.name or u.username).lower())
    items: list[dict[str, Any]] = []
    for user in users:
        entry = live.get(user.extension or f"user:{user.username}", {})
        items.append({
            "user_id": user.id,
            "username": user.username,
            "name": user.name or user.username,
            "role": user.role,
            "extension": user.extension,
            "status": entry.get("status", "offline"),
            "lagged": entry.get("lagged", False),
        })
    return web.json_response({"items": items, "next": None})


@routes.get("/api/widget/agents")
@describe("Every agent's presence, lag and open widgets (supervisors)", tag="widget")
@require("supervisor", "admin")
async def agents(request: web.Request) -> web.Response:
    """Every agent's presence, lag and open widgets: what a supervisor watches (B9)."""
    return web.json_response({"items": request.app[HUB].agents(), "next": None})
