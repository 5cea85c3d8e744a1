"""The team, for administrators: create, read, change and deactivate users (C11)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core.auth import PRINCIPAL, ROLES, database, require
from crm_core.http.auth import USER_SCHEMA
from crm_core.http.body import path_id, read_json
from crm_core.openapi import describe
from crm_core.users import (
    create_user,
    deactivate_user,
    get_user,
    list_users,
    update_user,
    user_json,
)
from kernel.errors import Conflict

routes = web.RouteTableDef()

_FIELDS: dict[str, Any] = {
    "username": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$", "maxLength": 64},
    "name": {"type": "string", "maxLength": 200},
    "role": {"enum": list(ROLES)},
    "extension": {"type": ["string", "null"], "pattern": "^[0-9]{2,16}$"},
    "email": {"type": ["string", "null"], "maxLength": 254, "pattern": "^[^@\\s]+@[^@\\s]+$"},
    "working_hours": {"type": "object"},
    "password": {"type": "string", "minLength": 8, "maxLength": 1024},
}
CREATE_USER: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["username", "role", "password"], "properties": _FIELDS,
}
UPDATE_USER: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "properties": _FIELDS,
}
USER_LIST: dict[str, Any] = {
    "type": "object", "required": ["items", "next"],
    "properties": {"items": {"type": "array", "items": USER_SCHEMA}, "next": {"type": "null"}},
}


@routes.get("/api/users")
@describe("Every user, active or not", response=USER_LIST, tag="users")
@require("admin")
async def users_list(request: web.Request) -> web.Response:
    users = await list_users(database(request.config_dict))
    return web.json_response({"items": [user_json(u) for u in users], "next": None})


@routes.post("/api/users")
@describe("Create a user", body=CREATE_USER, response=USER_SCHEMA, status=201, tag="users")
@require("admin")
async def users_create(request: web.Request) -> web.Response:
    body = await read_json(request, CREATE_USER)
    user = await create_user(database(request.config_dict), body)
    return web.json_response(user_json(user), status=201)


@routes.get(r"/api/users/{id:\d+}")
@describe("One user", response=USER_SCHEMA, tag="users")
@require("admin")
async def users_get(request: web.Request) -> web.Response:
    user = await get_user(database(request.config_dict), path_id(request))
    return web.json_response(user_json(user))


@routes.patch(r"/api/users/{id:\d+}")
@describe("Change a user; a new role or password ends their sessions",
          body=UPDATE_USER, response=USER_SCHEMA, tag="users")
@require("admin")
async def users_update(request: web.Request) -> web.Response:
    user_id = path_id(request)
    body = await read_json(request, UPDATE_USER)
    if user_id == request[PRINCIPAL].user_id and body.get("role", "admin") != "admin":
        raise Conflict("an administrator cannot take away their own role", field="role")
    user = await update_user(database(request.config_dict), user_id, body)
    return web.json_response(user_json(user))


@routes.delete(r"/api/users/{id:\d+}")
@describe("Deactivate a user: history keeps their name, every session ends",
          response=USER_SCHEMA, tag="users")
@require("admin")
async def users_deactivate(request: web.Request) -> web.Response:
    user_id = path_id(request)
    if user_id == request[PRINCIPAL].user_id:
        raise Conflict("an administrator cannot deactivate themselves", field="id")
    user = await deactivate_user(database(request.config_dict), user_id)
    return web.json_response(user_json(user))
