"""Health, readiness and Prometheus metrics (R6)."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kernel.deps import Deps
from kernel.errors import Forbidden, Unauthorized

routes = web.RouteTableDef()
DEPS = web.AppKey("deps", Deps)


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    names = list(deps.probes)
    results = await asyncio.gather(*(deps.probes[n]() for n in names), return_exceptions=True)
    body: dict[str, object] = {}
    healthy = True
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            healthy, body[name] = False, f"probe failed: {type(result).__name__}"
        else:
            ok, detail = result
            healthy = healthy and ok
            body[name] = detail
    body["status"] = "ok" if healthy else "degraded"
    return web.json_response(body, status=200 if healthy else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    token = deps.settings.metrics_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not given:
        raise Unauthorized("a scrape token is required: Authorization: Bearer <token>")
    if token is None or not hmac.compare_digest(given.encode(), token.reveal().encode()):
        raise Forbidden("that token may not read metrics")
    data = generate_latest(deps.metrics)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})
