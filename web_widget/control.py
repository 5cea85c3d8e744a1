"""In-call commands (hang up, hold, transfer ...), one implementation for REST and the socket.

An agent acts only on calls at their own extension (the hub knows the live
calls): while a call rings, any rung agent's; once answered, the answering
agent's alone. Supervisors and admins act on any. Everything reaches the PBX
through the `PbxPort` protocol, never AMI or Twilio directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from crm_core.phones import normalise
from kernel.errors import Forbidden, NotFound, PBXUnavailable, ValidationFailed
from kernel.events import CallInfo
from pbx_bridge import PBX_PORT
from pbx_bridge.port import PbxPort, TransferMode
from web_widget.hub import AgentHub
from web_widget.identity import SUPERVISORS, Principal

HUB = web.AppKey("agent_hub", AgentHub)
DIAL_OPTIONS = web.AppKey("dial_options", dict[str, Any])
"""`{"region": "ES", "national": bool}`: with `national` (setting `dial_national`) agents
may type numbers without the country prefix and the home region's is added."""

VERBS = ("hangup", "hold", "resume", "mute", "unmute", "dtmf", "transfer")
MAX_EXTENSION_DIGITS = 6
DTMF_DIGITS = set("0123456789*#ABCD")


def dial_string(raw: object, options: Mapping[str, Any], field: str = "to") -> str:
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


def pbx_port(app: Mapping[Any, Any]) -> PbxPort:
    port: PbxPort | None = app.get(PBX_PORT)
    if port is None or port.name == "none":
        raise PBXUnavailable("no PBX is configured: set CENTRALITA_AMI_HOST or the Twilio keys")
    if not port.online:
        raise PBXUnavailable(f"Centralita: PBX desconectada (the {port.name} link is down)")
    return port


def owned_call(hub: AgentHub, principal: Principal, call_id: str) -> CallInfo:
    """The live call `call_id`, if this principal may act on it."""
    call = hub.live_call(call_id)
    if call is None:
        raise NotFound(f"no live call {call_id!r}", field="call_id")
    if principal.role in SUPERVISORS:
        return call
    mine = call.agent == principal.extension if call.agent else principal.extension in call.ringing
    if not principal.extension or not mine:
        raise Forbidden("this call is not at your extension")
    return call


async def perform(
    app: Mapping[Any, Any], principal: Principal, call_id: str, verb: str,
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """Check, then ask the PBX; the answer both the REST route and the socket give."""
    if verb not in VERBS:
        raise NotFound(f"no call command {verb!r}")
    call = owned_call(app[HUB], principal, call_id)
    extra: dict[str, Any] = {}
    if verb == "dtmf":
        digits = body.get("digits")
        if not isinstance(digits, str) or not digits or not set(digits.upper()) <= DTMF_DIGITS:
            raise ValidationFailed("digits must be 0-9, *, # or A-D", field="digits")
        extra["digits"] = digits.upper()
    elif verb == "transfer":
        mode = body.get("mode", "blind")
        if mode not in ("blind", "attended"):
            raise ValidationFailed("mode must be blind or attended", field="mode")
        extra.update(to=dial_string(body.get("to"), app[DIAL_OPTIONS]), mode=mode)
    await _ask(pbx_port(app), call.call_id, verb, extra)
    return {"call_id": call.call_id, "action": verb, "ok": True, **extra}


async def _ask(port: PbxPort, call_id: str, verb: str, extra: dict[str, Any]) -> None:
    if verb == "hangup":
        await port.hangup(call_id)
    elif verb == "hold":
        await port.hold(call_id)
    elif verb == "resume":
        await port.resume(call_id)
    elif verb in ("mute", "unmute"):
        await port.mute(call_id, verb == "mute")
    elif verb == "dtmf":
        await port.send_dtmf(call_id, extra["digits"])
    else:
        mode: TransferMode = "attended" if extra["mode"] == "attended" else "blind"
        await port.transfer(call_id, extra["to"], mode)
