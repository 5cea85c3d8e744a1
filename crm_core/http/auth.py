"""Signing in and out, who am I, and short-lived tokens for embedded widgets (R5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from crm_core.auth import PRINCIPAL, SESSION_COOKIE, database, public, require
from crm_core.auth.guard import AuthSettings, auth_settings, credentials
from crm_core.auth.tokens import (
    API,
    SESSION,
    WIDGET,
    WIDGET_TTL,
    csrf_for,
    issue_token,
    list_user_tokens,
    revoke_token,
    revoke_user_token,
    revoke_user_tokens,
    token_hash,
)
from crm_core.http.body import path_id, read_json
from crm_core.openapi import describe
from crm_core.users import get_user, update_user, user_json, verify_login
from kernel.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from kernel.web import error_response

routes = web.RouteTableDef()

USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "username", "name", "role", "extension", "email", "working_hours"],
    "properties": {
        "id": {"type": "integer"}, "username": {"type": "string"}, "name": {"type": "string"},
        "role": {"enum": ["agent", "supervisor", "admin"]},
        "extension": {"type": ["string", "null"]}, "email": {"type": ["string", "null"]},
        "working_hours": {"type": "object"}, "active": {"type": "boolean"},
    },
}
LOGIN_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 64},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
}
TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["token", "expires_at"],
    "properties": {
        "token": {"type": "string"}, "expires_at": {"type": "string"},
        "csrf_token": {"type": ["string", "null"]}, "user": USER_SCHEMA,
        "expires_in": {"type": "integer"},
    },
}


def _set_session_cookie(
    request: web.Request, response: web.Response, token: str, config: AuthSettings
) -> None:
    response.set_cookie(
        SESSION_COOKIE, token,
        max_age=int(config.session_ttl.total_seconds()), path="/", httponly=True,
        samesite="Lax", secure=config.secure_cookies or request.secure,
    )


@routes.post("/api/auth/login")
@describe("Sign in: sets the session cookie and returns a bearer token and the CSRF token",
          body=LOGIN_BODY, response=TOKEN_SCHEMA, tag="auth")
@public
async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LOGIN_BODY)
    username, password = body["username"], body["password"]
    config = auth_settings(request)
    address = request.remote or "unknown"
    wait = config.throttle.retry_after(username, address)
    if wait is not None:
        response = error_response(
            429, "rate-limited", f"too many failed sign-ins; try again in {wait} s"
        )
        response.headers["Retry-After"] = str(wait)
        return response
    db = database(request.config_dict)
    user = await verify_login(db, username, password)
    if user is None:
        config.throttle.failed(username, address)
        raise Unauthorized("wrong username or password")
    config.throttle.succeeded(username, address)
    issued = await issue_token(db, user.id, SESSION, config.session_ttl)
    response = web.json_response({
        "token": issued.token, "csrf_token": issued.csrf_token, "user": user_json(user),
        "expires_at": issued.expires_at.isoformat(),
    })
    _set_session_cookie(request, response, issued.token, config)
    return response


LOGOUT_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"everywhere": {"type": "boolean"}},
}


@routes.post("/api/auth/logout")
@describe("Sign out: the token used stops working; `everywhere` ends every session and token",
          body=LOGOUT_BODY, tag="auth")
@require()
async def logout(request: web.Request) -> web.Response:
    creds = await credentials(request)
    body = await read_json(request, LOGOUT_BODY) if request.can_read_body else {}
    db = database(request.config_dict)
    if body.get("everywhere"):
        await revoke_user_tokens(db, request[PRINCIPAL].user_id)
    elif creds is not None:
        await revoke_token(db, creds.token)
    response = web.json_response({"status": "signed-out"})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/me")
@describe("The signed-in user", response=USER_SCHEMA, tag="auth")
@require()
async def me(request: web.Request) -> web.Response:
    user = await get_user(database(request.config_dict), request[PRINCIPAL].user_id)
    return web.json_response(user_json(user))


ME_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "email": {"type": ["string", "null"], "maxLength": 254},
        "working_hours": {"type": "object"},
        "password": {"type": "string", "minLength": 8, "maxLength": 1024},
        "current_password": {"type": "string", "maxLength": 1024},
    },
}


@routes.patch("/api/me")
@describe("Change your name, e-mail, working hours or password (with current_password); "
          "a new password signs you out everywhere", body=ME_BODY, response=USER_SCHEMA,
          tag="auth")
@require()
async def me_update(request: web.Request) -> web.Response:
    body = await read_json(request, ME_BODY)
    db = database(request.config_dict)
    principal = request[PRINCIPAL]
    current = body.pop("current_password", None)
    if "password" in body:
        user = await verify_login(db, principal.username, current or "")
        if user is None:
            raise ValidationFailed("current_password is wrong", field="current_password")
    user = await update_user(db, principal.user_id, body)
    return web.json_response(user_json(user))


@routes.get("/api/auth/csrf")
@describe("The CSRF token of your session again (e.g. after the page lost it)",
          response={"type": "object", "required": ["csrf_token"],
                    "properties": {"csrf_token": {"type": ["string", "null"]}}},
          tag="auth")
@require()
async def csrf_token(request: web.Request) -> web.Response:
    creds = await credentials(request)
    token = csrf_for(creds.token) if creds is not None and creds.kind == SESSION else None
    return web.json_response({"csrf_token": token})


@routes.post("/api/auth/widget-token")
@describe("A 15-minute token for the embedded call widget of the signed-in user",
          response=TOKEN_SCHEMA, status=201, tag="auth")
@require()
async def widget_token(request: web.Request) -> web.Response:
    creds = await credentials(request)
    if creds is not None and creds.kind == WIDGET:
        # Otherwise a leaked widget token could renew itself for ever.
        raise Forbidden("a widget token cannot mint widget tokens; sign in")
    principal = request[PRINCIPAL]
    issued = await issue_token(database(request.config_dict), principal.user_id, WIDGET, WIDGET_TTL)
    return web.json_response(
        {"token": issued.token, "expires_at": issued.expires_at.isoformat(),
         "expires_in": int(WIDGET_TTL.total_seconds())},
        status=201,
    )


API_TOKEN_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 365}},
}


@routes.post("/api/auth/api-token")
@describe("A long-lived bearer token (default 90 days) for scripts and CRM integrations",
          body=API_TOKEN_BODY, response=TOKEN_SCHEMA, status=201, tag="auth")
@require()
async def api_token(request: web.Request) -> web.Response:
    creds = await credentials(request)
    if creds is not None and creds.kind == WIDGET:
        raise Forbidden("a widget token cannot mint API tokens; sign in")
    body = await read_json(request, API_TOKEN_BODY) if request.can_read_body else {}
    ttl = timedelta(days=body.get("days", 90))
    issued = await issue_token(database(request.config_dict), request[PRINCIPAL].user_id, API, ttl)
    return web.json_response(
        {"token": issued.token, "expires_at": issued.expires_at.isoformat(),
         "expires_in": int(ttl.total_seconds())},
        status=201,
    )


TOKEN_LIST: dict[str, Any] = {
    "type": "object", "required": ["items", "next"],
    "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["id", "kind", "created_at", "expires_at", "current"],
    }}},
}


@routes.get("/api/auth/tokens")
@describe("Your live sessions and tokens (never their values), to spot and revoke one",
          response=TOKEN_LIST, tag="auth")
@require()
async def tokens_list(request: web.Request) -> web.Response:
    creds = await credentials(request)
    current = token_hash(creds.token) if creds is not None else ""
    rows = await list_user_tokens(database(request.config_dict), request[PRINCIPAL].user_id)
    items = [{"id": row.id, "kind": row.kind, "created_at": _iso(row.created_at),
              "expires_at": _iso(row.expires_at), "current": row.token_hash == current}
             for row in rows]
    return web.json_response({"items": items, "next": None})


@routes.delete(r"/api/auth/tokens/{id:\d+}")
@describe("Revoke one of your sessions or tokens", tag="auth")
@require()
async def tokens_revoke(request: web.Request) -> web.Response:
    token_id = path_id(request)
    if not await revoke_user_token(database(request.config_dict), request[PRINCIPAL].user_id,
                                   token_id):
        raise NotFound(f"you hold no token {token_id}", field="id")
    return web.json_response({"status": "revoked"})


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone
    return aware.isoformat()
