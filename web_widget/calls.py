"""Call-control routes: click-to-call and the in-call buttons of the widget.

An agent acts only on calls that ring or are answered at their own extension
(the hub knows the live calls); supervisors and admins act on any. Everything
goes to the PBX through the `PbxPort` protocol, never to AMI or Twilio.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from crm_core import DATABASE
from crm_core.notes import add_note
from crm_core.openapi import describe
from crm_core.phones import normalise
from kernel.errors import Forbidden, NotFound, PBXUnavailable, ValidationFailed
from kernel.events import CallInfo
from kernel.web import json_body
from pbx_bridge import PBX_PORT
from pbx_bridge.port import OriginateRequest, PbxPort, TransferMode
from web_widget.hub import AgentHub
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

HUB = web.AppKey("agent_hub", AgentHub)
IDEMPOTENCY = web.AppKey("call_idempotency", IdempotencyStore)
DIAL_OPTIONS = web.AppKey("dial_options", dict[str, Any])
"""`{"region": "ES", "national": bool}`: with `national` (setting `dial_national`) agents
may type numbers without the country prefix and the home region's is added."""

MAX_EXTENSION_DIGITS = 6
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
DTMF_DIGITS = set("0123456789*#ABCD")


def dial_string(raw: object, options: dict[str, Any], field: str = "to") -> str:
    """What the PBX dials for what an agent typed: an extension as is, else E.164."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed("give the number to call", field=field)
    text = raw.strip()
    if text.isdigit() and len(text) <= MAX_EXTENSION_DIGITS:
        return text  # an internal extension: dialled as is
    region = str(options.get("region", "ES"))
    if not options.get("national") and not text.startswith(("+", "00")):
        raise ValidationFailed(
            f"dial {raw!r} with its country prefix (+34 ...): dialling without it is off "
            "(setting dial_national)", field=field)
    return normalise(text, region, field=field)


def _port(request: web.Request) -> PbxPort:
    port = request.app.get(PBX_PORT)
    if port is None or port.name == "none":
        raise PBXUnavailable("no PBX is configured: set CENTRALITA_AMI_HOST or the Twilio keys")
    if not port.online:
        raise PBXUnavailable(f"Centralita: PBX desconectada (the {port.name} link is down)")
    return port


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
        ticket = await _port(request).originate(
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


def owned_call(request: web.Request, principal: Principal) -> CallInfo:
    """The live call named in the path, if this principal may act on it."""
    call_id = request.match_info["call_id"]
    call = request.app[HUB].live_call(call_id)
    if call is None:
        raise NotFound(f"no live call {call_id!r}")
    if principal.role in SUPERVISORS:
        return call
    # Once answered, the call is the answering agent's alone; while it rings, any rung agent's.
    mine = call.agent == principal.extension if call.agent else principal.extension in call.ringing
    if not principal.extension or not mine:
        raise Forbidden("this call is not at your extension")
    return call


def _done(call: CallInfo, action: str, **extra: Any) -> web.Response:
    return web.json_response({"call_id": call.call_id, "action": action, "ok": True, **extra})


@routes.post("/api/calls/{call_id}/hangup")
@describe("Hang up (or reject) a live call at your extension", response=DONE, tag="calls")
@require(*CALL_ROLES)
async def hangup(request: web.Request) -> web.Response:
    call = owned_call(request, principal_of(request))
    await _port(request).hangup(call.call_id)
    return _done(call, "hangup")


@routes.post("/api/calls/{call_id}/hold")
@describe("Put the caller on hold", response=DONE, tag="calls")
@require(*CALL_ROLES)
async def hold(request: web.Request) -> web.Response:
    call = owned_call(request, principal_of(request))
    await _port(request).hold(call.call_id)
    return _done(call, "hold")


@routes.post("/api/calls/{call_id}/resume")
@describe("Take the caller off hold", response=DONE, tag="calls")
@require(*CALL_ROLES)
async def resume(request: web.Request) -> web.Response:
    call = owned_call(request, principal_of(request))
    await _port(request).resume(call.call_id)
    return _done(call, "resume")


@routes.post("/api/calls/{call_id}/mute")
@describe("Mute the agent's microphone leg", response=DONE, tag="calls")
@require(*CALL_ROLES)
async def mute(request: web.Request) -> web.Response:
    call = owned_call(request, principal_of(request))
    await _port(request).mute(call.call_id, True)
    return _done(call, "mute")


@routes.post("/api/calls/{call_id}/unmute")
@describe("Unmute the agent's leg", response=DONE, tag="calls")
@require(*CALL_ROLES)
async def unmute(request: web.Request) -> web.Response:
    call = owned_call(request, principal_of(request))
    await _port(request).mute(call.call_id, False)
    return _done(call, "unmute")


@routes.post("/api/calls/{call_id}/dtmf")
@describe("Send DTMF digits into the call", body=DTMF_BODY, response=DONE, tag="calls")
@require(*CALL_ROLES)
async def dtmf(request: web.Request) -> web.Response:
    call = owned_call(request, principal_of(request))
    digits = (await json_body(request)).get("digits")
    if not isinstance(digits, str) or not digits or not set(digits.upper()) <= DTMF_DIGITS:
        raise ValidationFailed("digits must be 0-9, *, # or A-D", field="digits")
    await _port(request).send_dtmf(call.call_id, digits.upper())
    return _done(call, "dtmf", digits=digits.upper())


@routes.post("/api/calls/{call_id}/transfer")
@describe("Blind or attended transfer to an extension or a number", body=TRANSFER_BODY,
          response=DONE, tag="calls")
@require(*CALL_ROLES)
async def transfer(request: web.Request) -> web.Response:
    call = owned_call(request, principal_of(request))
    body = await json_body(request)
    mode = body.get("mode", "blind")
    if mode not in ("blind", "attended"):
        raise ValidationFailed("mode must be blind or attended", field="mode")
    target = dial_string(body.get("to"), request.app[DIAL_OPTIONS])
    kind: TransferMode = "attended" if mode == "attended" else "blind"
    await _port(request).transfer(call.call_id, target, kind)
    return _done(call, "transfer", to=target, mode=mode)


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
