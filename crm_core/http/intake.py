"""The public web-form endpoint (C9) and the administrators' form keys.

A website's contact form posts here, as JSON or as a plain HTML form, with
its form key in `?key=` or `X-Form-Key`. Each accepted post is one unhandled
lead with source `web` and the form's name and UTM tags as source tags.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core import leads, notes
from crm_core.auth import PRINCIPAL, Principal, public, require
from crm_core.auth.forms import create_form, deactivate_form, form_by_key, form_json, list_forms
from crm_core.auth.throttle import LoginThrottle
from crm_core.http.body import MAX_JSON_BODY, path_id, read_json, reject_nul
from crm_core.http.context import db_of, region_of
from crm_core.http.schema import validate
from crm_core.openapi import describe
from kernel.errors import Forbidden, ValidationFailed
from kernel.web import error_response

routes = web.RouteTableDef()

UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_TEXT: dict[str, Any] = {"type": "string", "maxLength": 200}
INTAKE_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "name": _TEXT, "company": _TEXT,
        "phone": {"type": "string", "maxLength": 64},
        "email": {"type": "string", "maxLength": 254},
        "message": {"type": "string", "maxLength": 5000},
        **{tag: _TEXT for tag in UTM},
    },
}
FORM_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}},
}
FORM: dict[str, Any] = {
    "type": "object", "required": ["id", "name", "key", "active"],
    "properties": {"id": {"type": "integer"}, "key": {"type": "string"}},
}
INTAKE_QUERY = {"key": {"type": "string", "maxLength": 64}}
INTAKE_LIMIT = web.AppKey("intake_limit", LoginThrottle)
"""Posts per form and address: 10 in 10 minutes is a busy human, not a script."""


def intake_limit(request: web.Request) -> LoginThrottle:
    return request.config_dict[INTAKE_LIMIT]


async def _intake_body(request: web.Request) -> dict[str, Any]:
    """JSON, or the fields of a plain HTML form (which cannot send JSON cross-site)."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        if request.content_length is not None and request.content_length > MAX_JSON_BODY:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_JSON_BODY, actual_size=request.content_length
            )
        posted = await request.post()
        body = {k: v for k, v in posted.items() if isinstance(v, str) and k != "key"}
        reject_nul(body)
        validate(body, INTAKE_BODY)
        return body
    data: dict[str, Any] = await read_json(request, INTAKE_BODY)
    return data


@routes.post("/api/leads/intake")
@describe("A website form's lead: public, with the form key in `?key=` or X-Form-Key",
          body=INTAKE_BODY, query=INTAKE_QUERY, status=201,
          response={"type": "object", "required": ["status", "lead_id"]}, tag="leads")
@public
async def leads_intake(request: web.Request) -> web.StreamResponse:
    key = request.headers.get("X-Form-Key") or request.query.get("key", "")
    db = db_of(request)
    form = await form_by_key(db, key)
    if form is None:
        raise Forbidden("unknown or switched-off form key", field="key")
    limit, address = intake_limit(request), request.remote or "unknown"
    wait = limit.retry_after(form.key, address)
    if wait is not None:
        response = error_response(429, "rate-limited", f"too many posts; try in {wait} s")
        response.headers["Retry-After"] = str(wait)
        return response
    body = await _intake_body(request)
    limit.record(form.key, address)
    try:
        lead = await leads.create_lead(
            db, _lead_fields(body, form.name), region=region_of(request)
        )
    except ValidationFailed as err:
        # The form has one `phone` and one `email`; name them as the form does.
        field = {"phones": "phone", "emails": "email"}.get((err.field or "").split("[")[0])
        raise ValidationFailed(err.message, field=field or err.field) from None
    message = (body.get("message") or "").strip()
    if message:
        owner = Principal(form.owner_id, "", "", "admin", None)
        await notes.add_note(db, owner, message, lead_id=lead["id"])
    return web.json_response({"status": "received", "lead_id": lead["id"]}, status=201)


def _lead_fields(body: dict[str, Any], form_name: str) -> dict[str, Any]:
    tags = {"form": form_name, **{k: body[k] for k in UTM if body.get(k)}}
    fields: dict[str, Any] = {
        "name": body.get("name") or "", "company": body.get("company") or "",
        "source": "web", "source_tags": tags,
    }
    if body.get("phone"):
        fields["phones"] = [body["phone"]]
    if body.get("email"):
        fields["emails"] = [body["email"]]
    if not (fields["name"] or fields["company"] or "phones" in fields or "emails" in fields):
        raise ValidationFailed("the form needs a name, a phone or an e-mail", field="name")
    return fields


@routes.get("/api/lead-forms")
@describe("Web-form keys", response={"type": "object", "required": ["items", "next"]},
          tag="leads")
@require("admin")
async def forms_list(request: web.Request) -> web.Response:
    forms = await list_forms(db_of(request))
    return web.json_response({"items": [form_json(f) for f in forms], "next": None})


@routes.post("/api/lead-forms")
@describe("A new web-form key", body=FORM_BODY, response=FORM, status=201, tag="leads")
@require("admin")
async def forms_create(request: web.Request) -> web.Response:
    body = await read_json(request, FORM_BODY)
    owner: Principal = request[PRINCIPAL]
    form = await create_form(db_of(request), body["name"].strip(), owner.user_id)
    return web.json_response(form_json(form), status=201)


@routes.delete(r"/api/lead-forms/{id:\d+}")
@describe("Switch a web-form key off", response=FORM, tag="leads")
@require("admin")
async def forms_deactivate(request: web.Request) -> web.Response:
    form = await deactivate_form(db_of(request), path_id(request))
    return web.json_response(form_json(form))
