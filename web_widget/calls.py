"""Call-control routes: click-to-call (with Idempotency-Key) and the widget's in-call buttons.

The checks and the PBX requests live in `web_widget.control`, shared with the
socket's `call.*` commands.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from crm_core import DATABASE
from crm_core.notes import add_note
from crm_core.openapi import describe
from kernel.errors import Forbidden, ValidationFailed
from kernel.web import json_body
from pbx_bridge.port import OriginateRequest
from web_widget.control import DIAL_OPTIONS, dial_string, pbx_port, perform
from web_widget.idempotency import Answer, IdempotencyStore
from web_widget.identity import (
    CALL_ROLES,
    SUPERVISORS,
    Principal,
    own_extension,
    principal_of,
    require,
)

routes = web.RouteTableDef()

IDEMPOTENCY = web.AppKey("call_idempotency", IdempotencyStore)

_TO = {"type": "string", "minLength": 1, "maxLength": 64,
       "description": "an extension, or a number (E.164, or national with dial_national)"}
DIAL_BODY = {"type": "object", "required": ["to"], "properties": {
    "to": _TO, "agent": {"type": "string", "description": "extension (supervisors, admins)"}}}
DIALING = {"type": "object", "properties": {
    "status": {"const": "dialing"}, "to": {"type": "string"}, "agent": {"type": "string"},
    "action_id": {"type": "string"}}}
DONE = {"type": "object", "properties": {
    "call_id": {"type": "string"}, "action": {"type": "string"}, "ok": {"const": True}}}
TRANSFER_BODY = {"type": "object", "required": ["to"], "properties": {
    "to": _TO, "mode": {"enum": ["blind", "attended"]}}}
DTMF_BODY = {"type": "object", "required": ["digits"], "properties": {
    "digits": {"type": "string", "pattern": "^[0-9*#A-Da-d]{1,32}$"}}}
NOTE_BODY = {"type": "object", "required": ["text"], "properties": {
    "text": {"type": "string", "minLength": 1, "maxLength": 20000}}}


@routes.post("/api/calls")
@describe("Click-to-call: the agent's phone rings first, then the PBX dials `to`; send an "
          "Idempotency-Key so a double click dials once", body=DIAL_BODY, response=DIALING,
          status=202, tag="calls")
@require(*CALL_ROLES)
async def click_to_call(request: web.Request) -> web.Response:
    """Ring the agent's phone first; when it answers, the PBX dials `to` (T6, B5)."""
    principal = principal_of(request)
    body = await json_body(request)
    options = request.app[DIAL_OPTIONS]
    number = dial_string(body.get("to"), options)
    agent = _originating_agent(principal, body.get("agent"))
    key = request.headers.get("Idempotency-Key")

    async def originate() -> Answer:
        variables = {"CENTRALITA_USER": principal.username}
        ticket = await pbx_port(request.app).originate(
            OriginateRequest(number, agent_extension=agent, variables=variables)
        )
        body = {"status": "dialing", "to": number, "agent": agent, "action_id": ticket.action_id}
        return Answer(202, body)

    if key is None:
        answer = await originate()
        return web.json_response(answer.body, status=answer.status)
    fingerprint = hashlib.sha256(json.dumps([number, agent], sort_keys=True).encode()).hexdigest()
    store = request.app[IDEMPOTENCY]
    answer, replayed = await store.run(principal.user_id, key, fingerprint, originate)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return web.json_response(answer.body, status=answer.status, headers=headers)


def _originating_agent(principal: Principal, wanted: object) -> str:
    if wanted is None or wanted == "":
        return own_extension(principal)
    if not isinstance(wanted, str) or not wanted.isdigit():
        raise ValidationFailed("agent must be an extension", field="agent")
    if wanted != principal.extension and principal.role not in SUPERVISORS:
        raise Forbidden("agents place calls from their own extension only", field="agent")
    return wanted


VERB_DOCS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "hangup": ("Hang up (or reject) a live call at your extension", None),
    "hold": ("Put the caller on hold", None),
    "resume": ("Take the caller off hold", None),
    "mute": ("Mute the agent's leg", None),
    "unmute": ("Unmute the agent's leg", None),
    "dtmf": ("Send DTMF digits into the call", DTMF_BODY),
    "transfer": ("Blind or attended transfer to an extension or a number", TRANSFER_BODY),
}


def _command_route(verb: str, summary: str, body_schema: dict[str, Any] | None) -> None:
    """`POST /api/calls/{call_id}/<verb>`: the same `perform` the socket's `call.<verb>` uses."""

    @routes.post(f"/api/calls/{{call_id}}/{verb}")
    @describe(summary, body=body_schema, response=DONE, tag="calls")
    @require(*CALL_ROLES)
    async def command(request: web.Request) -> web.Response:
        body = await json_body(request) if body_schema is not None else {}
        answer = await perform(request.app, principal_of(request),
                               request.match_info["call_id"], verb, body)
        return web.json_response(answer)

    command.__name__ = command.__qualname__ = f"call_{verb}"


for _verb, (_summary, _schema) in VERB_DOCS.items():
    _command_route(_verb, _summary, _schema)


@routes.post("/api/calls/{call_id}/notes")
@describe("A note on the call, shown on the client's timeline", body=NOTE_BODY, status=201,
          tag="calls")
@require(*CALL_ROLES)
async def notes(request: web.Request) -> web.Response:
    """A note typed during (or just after) a call, onto the client's timeline (T13).

    Not limited to live calls: agents finish their notes after hanging up; the
    notes service admits any call the author may see.
    """
    principal = principal_of(request)
    text = (await json_body(request)).get("text")
    if not isinstance(text, str):
        raise ValidationFailed("text is the note's text", field="text")
    note = await add_note(request.app[DATABASE], principal, text,
                          call_id=request.match_info["call_id"])
    return web.json_response(note, status=201)
