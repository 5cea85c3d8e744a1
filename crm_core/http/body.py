"""Reading request bodies: a size ceiling (413), JSON (422), then the route's schema (422)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from crm_core.http.schema import Schema, validate, validate_query
from kernel.errors import NotFound, ValidationFailed

MAX_JSON_BODY = 256 * 1024
"""CRM records are small; a bigger body is a mistake or an attack, refused before parsing."""


async def read_json(request: web.Request, schema: Schema, limit: int = MAX_JSON_BODY) -> Any:
    """The body as JSON, checked against `schema`.

    The body must say it is JSON: an HTML form on another site can POST
    `text/plain` that happens to parse as JSON, but cannot send
    `application/json` without a CORS preflight we never grant.
    """
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    kind = request.content_type
    if kind != "application/json" and not kind.endswith("+json"):
        raise web.HTTPUnsupportedMediaType(text="send the body as Content-Type: application/json")
    raw = await _read_at_most(request, limit)
    if not raw.strip():
        raise ValidationFailed("a JSON body is required", field="body")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ValidationFailed("the body is not valid JSON", field="body") from None
    reject_nul(data)
    validate(data, schema)
    return data


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The whole body, or a 413 as soon as it passes `limit` (chunked bodies have no length)."""
    raw = bytearray()
    while True:
        chunk = await request.content.read(limit + 1 - len(raw))
        if not chunk:
            return bytes(raw)
        raw += chunk
        if len(raw) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))


def reject_nul(value: Any, path: str = "") -> None:
    """422 for a NUL character anywhere: PostgreSQL text cannot hold one (found by schemathesis)."""
    if isinstance(value, str):
        if "\x00" in value:
            where = path or "body"
            raise ValidationFailed(f"{where} contains a NUL character", field=where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_nul(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            reject_nul(key, where)
            reject_nul(item, where)


def read_query(request: web.Request, params: dict[str, Schema]) -> dict[str, Any]:
    found = validate_query(request.query, params)
    for name, value in found.items():
        reject_nul(value, name)
    return found


MAX_ID = 2**31 - 1
"""Ids are 32-bit in PostgreSQL: a bigger one cannot exist and must not reach the driver."""


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric path parameter; the router pattern already admits only digits."""
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= MAX_ID:
        raise NotFound(f"no such {name} {raw!r}")
    return int(raw)
