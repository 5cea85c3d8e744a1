"""Authentication and roles: argon2 passwords, hashed tokens, CSRF, login throttling.

The names here are the contract the widget hub, the pages and the dialer code
against: `Principal`, `principal_from_request`, `principal_from_token`,
`require`, `ROUTE_ROLES`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core.auth.guard import (
    AUTH,
    CSRF_HEADER,
    PRINCIPAL,
    ROUTE_ROLES,
    SESSION_COOKIE,
    AuthSettings,
    database,
    principal_from_request,
    public,
    require,
    roles_of,
    self_guarded,
)
from crm_core.auth.principal import PUBLIC, ROLES, Principal
from crm_core.auth.tokens import resolve_token

__all__ = [
    "AUTH",
    "CSRF_HEADER",
    "PRINCIPAL",
    "PUBLIC",
    "ROLES",
    "ROUTE_ROLES",
    "SESSION_COOKIE",
    "AuthSettings",
    "Principal",
    "database",
    "principal_from_request",
    "principal_from_token",
    "public",
    "require",
    "roles_of",
    "self_guarded",
]


async def principal_from_token(app: web.Application | Any, token: str) -> Principal | None:
    """The user behind any kind of token (session, api, widget), e.g. a WebSocket's `?token=`.

    `app` may be the application or a sub-application's `request.config_dict`.
    """
    found = await resolve_token(database(app), token)
    if found is None:
        return None
    user = found[0]
    return Principal(
        user_id=user.id, username=user.username, name=user.name, role=user.role,
        extension=user.extension,
    )
