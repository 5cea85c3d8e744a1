"""The CRM's REST routes, one module per resource, and their wiring."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from config import Settings
from crm_core.auth import AUTH, AuthSettings
from crm_core.auth.throttle import LoginThrottle
from crm_core.http import auth, calls, contacts, docs, intake, leads, timeline, users
from crm_core.http.context import SETTINGS


def route_tables() -> list[web.RouteTableDef]:
    return [
        auth.routes, users.routes, contacts.routes, intake.routes, leads.routes,
        timeline.routes, calls.routes, docs.routes,
    ]


def setup_routes(app: web.Application, settings: Settings) -> None:
    """Install the auth configuration and every CRM route on `app`."""
    app[SETTINGS] = settings
    app[AUTH] = AuthSettings(
        session_ttl=timedelta(hours=settings.auth_session_hours),
        secure_cookies=settings.auth_secure_cookies,
    )
    app[intake.INTAKE_LIMIT] = LoginThrottle(limit=10, window_s=600)
    for table in route_tables():
        app.add_routes(table)
