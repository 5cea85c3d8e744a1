"""CORS for the embedded widget: pages on allowed origins call `/api/*` with a bearer token.

Only origins on the WebSocket allow-list get CORS headers, and credentials
(cookies) are never allowed cross-origin: a foreign page must hold a widget
token, which its own back end asked for.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kernel.errors import CentralitaError
from web_widget.guards import OriginGuard

ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-CSRF-Token"
ALLOWED_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


def cors_middleware(guard: OriginGuard) -> Any:
    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or not request.path.startswith("/api/") or not guard.permits(request):
            response: web.StreamResponse = await handler(request)
            return response
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            # Errors carry the headers too, or the page sees a CORS failure instead of a 401.
            try:
                response = await handler(request)
            except web.HTTPException as err:
                _allow(err.headers, origin)
                raise
            except CentralitaError as err:
                response = web.json_response(err.to_json(), status=err.status)
        _allow(response.headers, origin)
        return response

    return cors


def _allow(headers: Any, origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    headers["Vary"] = "Origin"
