"""The API's own description, for integrators and for schemathesis."""

from __future__ import annotations

from aiohttp import web

from crm_core.auth import require
from crm_core.openapi import build_document, describe

routes = web.RouteTableDef()


@routes.get("/api/openapi.json")
@describe("This document: every REST route, its roles and its schemas", tag="docs")
@require()
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(build_document(request.app))
