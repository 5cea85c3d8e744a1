"""The route guard: who is asking (cookie or bearer), may they, and is the form ours (CSRF).

Configured once per application (`AuthSettings` under `AUTH`); each guarded
handler carries the roles it admits in the attribute named `ROUTE_ROLES`, so a
test can walk the router and check every route against its declaration.
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from aiohttp import web

from crm_core.auth.principal import PUBLIC, ROLES, Principal
from crm_core.auth.throttle import LoginThrottle
from crm_core.auth.tokens import SESSION, resolve_token, token_hash
from crm_core.db import Database
from kernel.errors import Forbidden, Unauthorized

SESSION_COOKIE = "centralita_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ROUTE_ROLES = "route_roles"
"""Name of the handler attribute holding the frozenset of roles a route admits."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


class CsrfRejected(Forbidden):
    error_id = "csrf-token-invalid"


@dataclass
class AuthSettings:
    """How sessions behave on this installation."""

    session_ttl: timedelta = timedelta(hours=12)
    secure_cookies: bool = False
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


@dataclass(frozen=True)
class Credentials:
    """A principal plus how it proved itself (the CSRF rule depends on it)."""

    principal: Principal
    token: str
    kind: str
    via_cookie: bool
    csrf_secret: str | None


AUTH = web.AppKey("auth", AuthSettings)
PRINCIPAL = web.RequestKey("principal", Principal)
_CREDENTIALS = web.RequestKey("credentials", object)


def database(app: Mapping[Any, Any]) -> Database:
    """The CRM database of an application or of a sub-application's `config_dict`."""
    from crm_core import DATABASE  # the package root imports us lazily, never at load

    db: Database = app[DATABASE]
    return db


def auth_settings(request: web.Request) -> AuthSettings:
    found: AuthSettings | None = request.config_dict.get(AUTH)
    return found if found is not None else AuthSettings()


def bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def credentials(request: web.Request) -> Credentials | None:
    """Who sent this request: a bearer header wins over the session cookie. Cached."""
    if _CREDENTIALS in request:
        cached: Credentials | None = request[_CREDENTIALS]  # type: ignore[assignment]
        return cached
    token = bearer_token(request)
    via_cookie = token is None
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
    found = None
    if token:
        found = await resolve_token(database(request.config_dict), token)
    creds = None
    if found is not None and not (via_cookie and found[1].kind != SESSION):
        user, row = found
        principal = Principal(
            user_id=user.id, username=user.username, name=user.name, role=user.role,
            extension=user.extension,
        )
        creds = Credentials(principal, token or "", row.kind, via_cookie, row.csrf_secret)
    request[_CREDENTIALS] = creds
    return creds


async def principal_from_request(request: web.Request) -> Principal | None:
    creds = await credentials(request)
    return creds.principal if creds else None


def check_csrf(request: web.Request, creds: Credentials) -> None:
    """Cookie-borne unsafe requests must echo the session's CSRF token in a header.

    A bearer token cannot be attached by a foreign page, so those are exempt.
    """
    if not creds.via_cookie or request.method not in UNSAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER, "")
    expected = creds.csrf_secret or ""  # the SHA-256 of the token handed out at login
    if not given or not expected or not hmac.compare_digest(
        token_hash(given).encode(), expected.encode()
    ):
        raise CsrfRejected(
            f"a cookie-authenticated {request.method} needs the {CSRF_HEADER} header"
        )


def _unauthorized() -> web.HTTPUnauthorized:
    """The API's 401, with the WWW-Authenticate challenge HTTP clients expect."""
    error = Unauthorized("sign in first: a session cookie or Authorization: Bearer <token>")
    return web.HTTPUnauthorized(
        text=json.dumps(error.to_json()), content_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="centralita"'},
    )


def require(*roles: str) -> Callable[[H], H]:
    """Admit signed-in users of `roles` (all roles when none are named).

    Answers 401 to the anonymous and 403 to other roles or a missing CSRF
    token; the principal is then in `request[PRINCIPAL]`.
    """
    allowed = frozenset(roles or ROLES)
    unknown = allowed - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; roles are {ROLES}")

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            creds = await credentials(request)
            if creds is None:
                raise _unauthorized()
            check_csrf(request, creds)
            if creds.principal.role not in allowed:
                raise Forbidden(f"this needs the role {' or '.join(sorted(allowed))}")
            request[PRINCIPAL] = creds.principal
            return await handler(request)

        setattr(guarded, ROUTE_ROLES, allowed)
        return guarded  # type: ignore[return-value]

    return decorate


def public(handler: H) -> H:
    """Mark a route as open to anyone (it guards itself: a password, a signature, a key)."""
    setattr(handler, ROUTE_ROLES, frozenset({PUBLIC}))
    return handler


def self_guarded(*roles: str) -> Callable[[H], H]:
    """Declare the roles of a handler that authenticates on its own.

    For routes `require` cannot guard, such as a WebSocket that takes its
    widget token from `?token=`: the handler must still answer 401/403 itself,
    and the access-matrix test holds it to the roles declared here.
    """
    allowed = frozenset(roles or ROLES)
    if allowed - set(ROLES):
        raise ValueError(f"unknown roles {sorted(allowed - set(ROLES))}; roles are {ROLES}")

    def decorate(handler: H) -> H:
        setattr(handler, ROUTE_ROLES, allowed)
        return handler

    return decorate


def roles_of(handler: Any) -> frozenset[str] | None:
    """The roles a route handler declared, or None when it declared nothing."""
    roles = getattr(handler, ROUTE_ROLES, None)
    return roles if isinstance(roles, frozenset) else None
