"""A client's history over HTTP: the timeline of a contact or a lead, notes on them (C7, T13)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core import notes, timeline
from crm_core.auth import require
from crm_core.http.body import path_id, read_json, read_query
from crm_core.http.context import db_of, viewer_of
from crm_core.openapi import describe

routes = web.RouteTableDef()

TIMELINE: dict[str, Any] = {
    "type": "object", "required": ["items", "next"],
    "properties": {
        "items": {"type": "array", "items": {
            "type": "object", "required": ["type"],
            "properties": {"type": {"type": "string"}},
        }},
        "next": {"type": ["string", "null"]},
    },
}
QUERY: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": timeline.MAX_ITEMS},
}
NOTE_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["text"],
    "properties": {"text": {"type": "string", "minLength": 1, "maxLength": notes.MAX_TEXT}},
}
NOTE: dict[str, Any] = {
    "type": "object", "required": ["id", "text", "author_id"],
    "properties": {"id": {"type": "integer"}, "text": {"type": "string"}},
}


@routes.get(r"/api/contacts/{id:\d+}/timeline")
@describe("A contact's calls, notes and lead history, newest first",
          query=QUERY, response=TIMELINE)
@require()
async def contact_timeline(request: web.Request) -> web.Response:
    limit = read_query(request, QUERY).get("limit", 100)
    found = await timeline.timeline(
        db_of(request), viewer_of(request), contact_id=path_id(request), limit=limit
    )
    return web.json_response(found)


@routes.get(r"/api/leads/{id:\d+}/timeline")
@describe("A lead's calls, notes and events, newest first", query=QUERY, response=TIMELINE,
          tag="leads")
@require()
async def lead_timeline(request: web.Request) -> web.Response:
    limit = read_query(request, QUERY).get("limit", 100)
    found = await timeline.timeline(
        db_of(request), viewer_of(request), lead_id=path_id(request), limit=limit
    )
    return web.json_response(found)


@routes.post(r"/api/contacts/{id:\d+}/notes")
@describe("Write a note on a contact's timeline", body=NOTE_BODY, response=NOTE, status=201)
@require()
async def contact_note(request: web.Request) -> web.Response:
    contact_id = path_id(request)
    body = await read_json(request, NOTE_BODY)
    note = await notes.add_note(
        db_of(request), viewer_of(request), body["text"], contact_id=contact_id
    )
    return web.json_response(note, status=201)


@routes.post(r"/api/leads/{id:\d+}/notes")
@describe("Write a note on a lead's timeline", body=NOTE_BODY, response=NOTE, status=201,
          tag="leads")
@require()
async def lead_note(request: web.Request) -> web.Response:
    lead_id = path_id(request)
    body = await read_json(request, NOTE_BODY)
    note = await notes.add_note(db_of(request), viewer_of(request), body["text"], lead_id=lead_id)
    return web.json_response(note, status=201)
