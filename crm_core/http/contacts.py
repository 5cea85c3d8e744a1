"""Contacts over HTTP: list and search, create, read, change, delete, lookup by phone (C1, C10).

Who sees what is decided inside the services' queries (`crm_core.access`):
a private contact of someone else is a 404 here, never a 403.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core import contacts
from crm_core.access import VISIBILITIES
from crm_core.auth import require
from crm_core.http.body import MAX_ID, path_id, read_json, read_query
from crm_core.http.context import db_of, phones_of, region_of, viewer_of
from crm_core.openapi import describe
from kernel.errors import ValidationFailed

routes = web.RouteTableDef()


def channel(value_key: str, limit: int) -> dict[str, Any]:
    """A phone, e-mail or link: a bare string or `{value_key, kind}`."""
    return {"anyOf": [
        {"type": "string", "maxLength": limit},
        {"type": "object", "additionalProperties": False, "required": [value_key],
         "properties": {value_key: {"type": "string", "maxLength": limit},
                        "kind": {"type": "string", "maxLength": 16}}},
    ]}


_TEXT = {"type": ["string", "null"], "maxLength": 100}
ADDRESS: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {k: {"type": ["string", "null"], "maxLength": 200}
                   for k in ("kind", "street", "city", "region", "postcode", "country")},
}
CONTACT_FIELDS: dict[str, Any] = {
    "kind": {"enum": ["person", "company"]},
    "first_name": _TEXT, "last_name": _TEXT,
    "company_name": {"type": ["string", "null"], "maxLength": 200},
    "type": {"type": ["string", "null"], "maxLength": 32},
    "currency": {"type": ["string", "null"], "maxLength": 3},
    "manager_id": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ID},
    "visibility": {"enum": list(VISIBILITIES)},
    "custom": {"type": "object"},
    "phones": {"type": "array", "maxItems": 50, "items": channel("number", 64)},
    "emails": {"type": "array", "maxItems": 50, "items": channel("address", 254)},
    "tags": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64}},
    "addresses": {"type": "array", "maxItems": 20, "items": ADDRESS},
    "links": {"type": "array", "maxItems": 50, "items": channel("url", 500)},
}
CONTACT_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "properties": CONTACT_FIELDS,
}
CONTACT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "kind", "first_name", "last_name", "company_name", "phones", "emails",
                 "tags", "type", "currency", "manager_id", "visibility", "custom"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
}
CONTACT_PAGE: dict[str, Any] = {
    "type": "object", "required": ["items", "next"],
    "properties": {"items": {"type": "array", "items": CONTACT},
                   "next": {"type": ["string", "null"]}},
}
PAGING: dict[str, dict[str, Any]] = {
    "cursor": {"type": "string", "maxLength": 200},
    "limit": {"type": "integer", "minimum": 1, "maximum": 200},
}
LIST_QUERY: dict[str, dict[str, Any]] = {
    "q": {"type": "string", "maxLength": 200},
    "tag": {"type": "string", "maxLength": 64},
    "mine": {"type": "boolean"},
    **PAGING,
}
LOOKUP_QUERY: dict[str, dict[str, Any]] = {"phone": {"type": "string", "maxLength": 64}}


@routes.get("/api/contacts")
@describe("Contacts you may see, newest first: search `q`, filter by `tag`, `mine=1`",
          query=LIST_QUERY, response=CONTACT_PAGE)
@require()
async def contacts_list(request: web.Request) -> web.Response:
    query = read_query(request, LIST_QUERY)
    page = await contacts.list_contacts(
        db_of(request), viewer_of(request), region=region_of(request), q=query.get("q"),
        tag=query.get("tag"), mine=query.get("mine", False), cursor=query.get("cursor"),
        limit=query.get("limit"),
    )
    return web.json_response(page)


@routes.post("/api/contacts")
@describe("Create a contact; you are its manager unless `manager_id` says otherwise",
          body=CONTACT_BODY, response=CONTACT, status=201)
@require()
async def contacts_create(request: web.Request) -> web.Response:
    body = await read_json(request, CONTACT_BODY)
    card = await contacts.create_contact(
        db_of(request), viewer_of(request), body, region=region_of(request)
    )
    return web.json_response(card, status=201)


@routes.get("/api/contacts/lookup")
@describe("The contact or lead owning a phone number, however it is written; 404 if none",
          query=LOOKUP_QUERY, response={"type": "object"})
@require()
async def contacts_lookup(request: web.Request) -> web.Response:
    phone = read_query(request, LOOKUP_QUERY).get("phone")
    if not phone:
        raise ValidationFailed("phone is required", field="phone")
    found = await contacts.lookup_by_phone(
        db_of(request), viewer_of(request), phone, region=region_of(request),
        directory=phones_of(request),
    )
    return web.json_response(found)


@routes.get(r"/api/contacts/{id:\d+}")
@describe("One contact", response=CONTACT)
@require()
async def contacts_get(request: web.Request) -> web.Response:
    card = await contacts.get_contact(db_of(request), viewer_of(request), path_id(request))
    return web.json_response(card)


@routes.patch(r"/api/contacts/{id:\d+}")
@describe("Change a contact: fields present change, lists present are replaced whole",
          body=CONTACT_BODY, response=CONTACT)
@require()
async def contacts_update(request: web.Request) -> web.Response:
    contact_id = path_id(request)
    body = await read_json(request, CONTACT_BODY)
    card = await contacts.update_contact(
        db_of(request), viewer_of(request), contact_id, body, region=region_of(request)
    )
    return web.json_response(card)


@routes.delete(r"/api/contacts/{id:\d+}")
@describe("Delete a contact (its manager, an admin, or anyone when shared read/write)",
          status=204)
@require()
async def contacts_delete(request: web.Request) -> web.Response:
    await contacts.delete_contact(db_of(request), viewer_of(request), path_id(request))
    return web.Response(status=204)
