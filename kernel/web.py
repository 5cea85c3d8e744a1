"""Small aiohttp pieces every package's routes share: JSON errors and bodies."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from kernel.errors import CentralitaError, ValidationFailed

log = logging.getLogger("centralita.web")


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure leaves as `{"error": {code, message, field}}` with a fitting status."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except CentralitaError as err:
        return web.json_response(err.to_json(), status=err.status)
    except web.HTTPException as err:
        if err.status < 400 or err.content_type == "application/json":
            raise
        code = err.reason.lower().replace(" ", "-")
        resp = error_response(err.status, code, err.text or err.reason)
        for key in ("Location", "Allow", "Retry-After"):
            if key in err.headers:
                resp.headers[key] = err.headers[key]
        return resp
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal-error", "internal error; see the server log")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 422 that says what is wrong with it."""
    try:
        data = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValidationFailed(f"request body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object")
    return data
