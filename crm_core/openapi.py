"""`/api/openapi.json`: an OpenAPI 3.1 document read off the live router.

Each handler carries its `Operation` (set by `describe`) and its roles (set by
`require`); the document is built by walking `app.router.routes()`, so a route
cannot exist without appearing here, nor appear here without existing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from crm_core.auth import PUBLIC, roles_of

OPERATION = "openapi_operation"
F = TypeVar("F", bound=Callable[..., Any])
Schema = dict[str, Any]

ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}
_ERRORS = {
    "401": "not signed in", "403": "signed in without the role, or no CSRF token",
    "404": "no such record (or not yours to see)", "413": "body too large",
    "422": "a field is wrong; `field` names it", "429": "too many attempts",
}


@dataclass(frozen=True)
class Operation:
    """What a route takes and gives, for the document and for validation."""

    summary: str
    body: Schema | None = None
    response: Schema | None = None
    query: Mapping[str, Schema] = field(default_factory=dict)
    status: int = 200
    tag: str = "crm"


def describe(
    summary: str, *, body: Schema | None = None, response: Schema | None = None,
    query: Mapping[str, Schema] | None = None, status: int = 200, tag: str = "crm",
) -> Callable[[F], F]:
    """Attach an `Operation` to a handler (apply it outside `require`)."""
    operation = Operation(summary, body, response, dict(query or {}), status, tag)

    def decorate(handler: F) -> F:
        setattr(handler, OPERATION, operation)
        return handler

    return decorate


def operation_of(handler: Any) -> Operation | None:
    found = getattr(handler, OPERATION, None)
    return found if isinstance(found, Operation) else None


def _documented(path: str, handler: Any) -> bool:
    return operation_of(handler) is not None or path.startswith("/api/")


def build_document(app: web.Application, version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document for every REST route of `app`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "*", "OPTIONS"):
            continue
        path = resource.canonical
        if not _documented(path, route.handler):
            continue
        paths.setdefault(path, {})[route.method.lower()] = _operation(path, route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Centralita", "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "centralita_session"},
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _operation(path: str, route: web.AbstractRoute) -> dict[str, Any]:
    handler = route.handler
    op = operation_of(handler) or Operation(_first_line(handler.__doc__) or path)
    roles = roles_of(handler)
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{route.method.lower()}_{_slug(path)}",
        "tags": [op.tag],
        "x-roles": sorted(roles) if roles else [],
    }
    params = [_path_param(name) for name in re.findall(r"{(\w+)}", path)]
    params += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in op.query.items()
    ]
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": op.body}},
        }
    if roles == frozenset({PUBLIC}):
        out["security"] = []
    out["responses"] = _responses(op)
    return out


def _responses(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "done"}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": op.response}}
    responses: dict[str, Any] = {str(op.status): ok}
    for status, text in _ERRORS.items():
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


def _path_param(name: str) -> dict[str, Any]:
    numeric = name == "id" or name.endswith("_id")
    schema: Schema = {"type": "integer", "minimum": 1} if numeric else {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
