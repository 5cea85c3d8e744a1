"""Who is on the other end of a widget request, by `crm_core.auth`'s contract.

`require(*roles)` answers 401/403 (and checks CSRF on cookie POSTs) and puts
the principal on the request; the socket resolves cookies or `?token=`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from crm_core.auth import (
    PRINCIPAL,
    ROLES,
    ROUTE_ROLES,
    Principal,
    principal_from_request,
    principal_from_token,
    public,
    require,
)
from kernel.errors import Unauthorized, ValidationFailed

__all__ = [
    "CALL_ROLES",
    "SUPERVISORS",
    "Principal",
    "agent_key",
    "own_extension",
    "principal_from_request",
    "principal_from_token",
    "principal_of",
    "public",
    "require",
    "signed_in_socket",
]

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])
SUPERVISORS = ("supervisor", "admin")
CALL_ROLES = ("agent", "supervisor", "admin")


def signed_in_socket(handler: H) -> H:
    """Mark a WebSocket route as open to every role: it authenticates itself before the
    upgrade (cookie or `?token=`), which `require` cannot do for widget tokens."""
    setattr(handler, ROUTE_ROLES, frozenset(ROLES))
    return handler


def principal_of(request: web.Request) -> Principal:
    """The principal `require` stored on the request."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None:
        raise Unauthorized("sign in first")
    return principal


def agent_key(principal: Principal) -> str:
    """Calls are routed by extension; a user without one gets a per-user stream."""
    return principal.extension or f"user:{principal.username}"


def own_extension(principal: Principal) -> str:
    if not principal.extension:
        raise ValidationFailed("your user has no phone extension", field="agent")
    return principal.extension
