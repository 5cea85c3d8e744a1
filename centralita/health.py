"""Health, readiness and Prometheus metrics (R6)."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from crm_core.auth import principal_from_request, public, self_guarded
from kernel.deps import Deps
from kernel.errors import Forbidden, Unauthorized

routes = web.RouteTableDef()
DEPS = web.AppKey("deps", Deps)


@routes.get("/healthz")
@public
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@public
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
@self_guarded("admin")
async def metrics(request: web.Request) -> web.Response:
    """For a scraper holding the configured token, or for a signed-in admin."""
    deps = request.app[DEPS]
    token = deps.settings.metrics_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    scraper = token is not None and bool(given) and hmac.compare_digest(
        given.encode(), token.reveal().encode()
    )
    if not scraper:
        principal = await principal_from_request(request)
        if principal is None:
            raise Unauthorized("sign in as an admin or send the scrape token as a bearer")
        if principal.role != "admin":
            raise Forbidden("only administrators and the scrape token may read metrics")
    data = generate_latest(deps.metrics)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})
