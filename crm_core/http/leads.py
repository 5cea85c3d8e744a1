"""Leads over HTTP: the team's queue, my leads, claim and convert (C4)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core import leads
from crm_core.auth import require
from crm_core.http.body import path_id, read_json, read_query
from crm_core.http.contacts import CONTACT, PAGING, channel
from crm_core.http.context import db_of, region_of, viewer_of
from crm_core.openapi import describe

routes = web.RouteTableDef()

LEAD_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "name": {"type": ["string", "null"], "maxLength": 200},
        "company": {"type": ["string", "null"], "maxLength": 200},
        "source": {"enum": list(leads.SOURCES)},
        "source_tags": {"type": "object",
                        "additionalProperties": {"type": "string", "maxLength": 200}},
        "phones": {"type": "array", "maxItems": 20, "items": channel("number", 64)},
        "emails": {"type": "array", "maxItems": 20, "items": channel("address", 254)},
    },
}
LEAD: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "company", "status", "responsible_id", "source", "phones"],
    "properties": {"id": {"type": "integer"}, "status": {"enum": list(leads.STATUSES)}},
}
LEAD_PAGE: dict[str, Any] = {
    "type": "object", "required": ["items", "next"],
    "properties": {"items": {"type": "array", "items": LEAD},
                   "next": {"type": ["string", "null"]}},
}
LIST_QUERY: dict[str, dict[str, Any]] = {
    "status": {"enum": ["unhandled", "mine", "handled", "converted"]}, **PAGING,
}


@routes.get("/api/leads")
@describe("Leads, newest first: `status=unhandled` is the queue, `mine` the ones you claimed",
          query=LIST_QUERY, response=LEAD_PAGE, tag="leads")
@require()
async def leads_list(request: web.Request) -> web.Response:
    query = read_query(request, LIST_QUERY)
    page = await leads.list_leads(
        db_of(request), viewer_of(request), status=query.get("status"),
        cursor=query.get("cursor"), limit=query.get("limit"),
    )
    return web.json_response(page)


@routes.post("/api/leads")
@describe("Create an unhandled lead", body=LEAD_BODY, response=LEAD, status=201, tag="leads")
@require()
async def leads_create(request: web.Request) -> web.Response:
    body = await read_json(request, LEAD_BODY)
    card = await leads.create_lead(db_of(request), body, region=region_of(request))
    return web.json_response(card, status=201)


@routes.get(r"/api/leads/{id:\d+}")
@describe("One lead", response=LEAD, tag="leads")
@require()
async def leads_get(request: web.Request) -> web.Response:
    return web.json_response(await leads.get_lead(db_of(request), path_id(request)))


@routes.post(r"/api/leads/{id:\d+}/claim")
@describe("Take an unhandled lead; a lead someone else took is a 409", response=LEAD,
          tag="leads")
@require()
async def leads_claim(request: web.Request) -> web.Response:
    card = await leads.claim_lead(db_of(request), viewer_of(request), path_id(request))
    return web.json_response(card)


@routes.post(r"/api/leads/{id:\d+}/convert")
@describe("Turn a lead into a contact of yours: `{lead, contact}`",
          response={"type": "object", "required": ["lead", "contact"],
                    "properties": {"lead": LEAD, "contact": CONTACT}},
          tag="leads")
@require()
async def leads_convert(request: web.Request) -> web.Response:
    result = await leads.convert_lead(db_of(request), viewer_of(request), path_id(request))
    return web.json_response(result)
