"""The call log over HTTP (T8): every call you may see, newest first, with filters.

Live call control (`POST /api/calls...`) belongs to the widget hub; this is history.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core import calllog
from crm_core.auth import require
from crm_core.http.body import read_query
from crm_core.http.contacts import PAGING
from crm_core.http.context import db_of, region_of, viewer_of
from crm_core.openapi import describe
from kernel.errors import NotFound

routes = web.RouteTableDef()

CALL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "direction", "caller", "callee", "agent", "status", "disposition",
                 "started_at", "answered_at", "ended_at", "duration_s", "contact_id",
                 "lead_id"],
    "properties": {
        "id": {"type": "string"},
        "direction": {"enum": ["in", "out", "internal"]},
        "disposition": {"enum": [*calllog.DISPOSITIONS, None]},
    },
}
CALL_PAGE: dict[str, Any] = {
    "type": "object", "required": ["items", "next"],
    "properties": {"items": {"type": "array", "items": CALL},
                   "next": {"type": ["string", "null"]}},
}
LIST_QUERY: dict[str, dict[str, Any]] = {
    "direction": {"enum": ["in", "out", "internal"]},
    "status": {"enum": [*calllog.DISPOSITIONS, *calllog.STATES]},
    "agent": {"type": "string", "maxLength": 32},
    "since": {"type": "string", "maxLength": 40},
    "q": {"type": "string", "maxLength": 64},
    **PAGING,
}
CALL_ID_MAX = 128


@routes.get("/api/calls")
@describe("The call log, newest first; filter by direction, status, agent, since, number",
          query=LIST_QUERY, response=CALL_PAGE, tag="calls")
@require()
async def calls_list(request: web.Request) -> web.Response:
    query = read_query(request, LIST_QUERY)
    page = await calllog.list_calls(
        db_of(request), viewer_of(request), region=region_of(request),
        direction=query.get("direction"), status=query.get("status"),
        agent=query.get("agent"), since=query.get("since"), q=query.get("q"),
        cursor=query.get("cursor"), limit=query.get("limit"),
    )
    return web.json_response(page)


@routes.get("/api/calls/{call_id}")
@describe("One call of the log, by the PBX's call id", response=CALL, tag="calls")
@require()
async def calls_get(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    if len(call_id) > CALL_ID_MAX:
        raise NotFound(f"no call {call_id[:40]}...", field="id")
    call = await calllog.get_call(db_of(request), viewer_of(request), call_id)
    return web.json_response(call)
