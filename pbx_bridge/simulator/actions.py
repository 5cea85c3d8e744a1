"""AMI actions: what each one answers and which call events it sets off.

Responses copy the wording of Asterisk 22 seen in the traces ("Originate
successfully queued", "Channel Hungup", "Transfer succeeded", ...), because
adapters match on them and a stand-in that words them differently would hide
bugs until the first real PBX.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.simulator import control, flows, lists
from pbx_bridge.simulator.channels import Channel
from pbx_bridge.simulator.dialplan import KNOWN_CONTEXTS
from pbx_bridge.simulator.flows import ANSWER, BUSY, CONGESTION, NOANSWER

if TYPE_CHECKING:
    from pbx_bridge.simulator.server import Session, Simulator

Handler = Callable[["Simulator", "Session", Message], Awaitable[None]]
LIST_COMMANDS_HINT = "Use Action: ListCommands to show available commands."
REASONS = {ANSWER: 4, NOANSWER: 3, BUSY: 5, CONGESTION: 8}


def _tv() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _security(session: Session, name: str, severity: str, extra: list[tuple[str, str]]) -> None:
    """A security event to this session only; where AccountID goes depends on the event."""
    sock = session.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
    peer = session.writer.get_extra_info("peername") or ("127.0.0.1", 0)
    account = [("AccountID", session.username)]
    headers = [
        ("Event", name),
        ("Privilege", "security,all"),
        ("EventTV", _tv()),
        ("Severity", severity),
        ("Service", "AMI"),
        ("EventVersion", "1"),
        *(account if name == "SuccessfulAuth" else []),
        ("SessionID", f"0x{id(session):x}"),
        ("LocalAddress", f"IPV4/TCP/{sock[0]}/{sock[1]}"),
        ("RemoteAddress", f"IPV4/TCP/{peer[0]}/{peer[1]}"),
        *extra,
        ("SessionTV", _tv()),
        *(account if name != "SuccessfulAuth" else []),
    ]
    session.send(Message(headers))


async def handle(sim: Simulator, session: Session, request: Message) -> None:
    name = request.get("Action").lower()
    if not name:
        session.respond(request, "Error", Message="Missing action in request")
        return
    if name == "login":
        await _login(sim, session, request)
        return
    if name == "challenge":
        _challenge(session, request)
        return
    if not session.logged_in and name != "logoff":
        session.respond(request, "Error", Message="Permission denied")
        return
    handler = HANDLERS.get(name) or lists.LISTS.get(name)
    if handler is None:
        action = request.get("Action")
        session.respond(
            request,
            "Error",
            Message=f"Invalid/unknown command: {action}. {LIST_COMMANDS_HINT}",
        )
        _security(session, "RequestBadFormat", "Error", [("RequestType", f"Action: {action}")])
        return
    await handler(sim, session, request)


def _challenge(session: Session, request: Message) -> None:
    """MD5 login, step one: a random challenge the client hashes with its secret."""
    if request.get("AuthType", "").lower() != "md5":
        session.respond(request, "Error", Message="Must specify AuthType")
        return
    session.challenge = secrets.token_hex(8)
    session.respond(request, Challenge=session.challenge)


def _credentials_ok(sim: Simulator, session: Session, request: Message) -> bool:
    if request.get("Username") != sim.username:
        return False
    if request.get("AuthType", "").lower() == "md5" and session.challenge:
        expected = hashlib.md5((session.challenge + sim.secret).encode()).hexdigest()
        return hmac.compare_digest(request.get("Key"), expected)
    return hmac.compare_digest(request.get("Secret"), sim.secret)


async def _login(sim: Simulator, session: Session, request: Message) -> None:
    if not _credentials_ok(sim, session, request):
        session.respond(request, "Error", Message="Authentication failed")
        return
    session.logged_in, session.username = True, sim.username
    session.events = request.get("Events", "on").lower() not in ("off", "no", "false")
    session.respond(request, Message="Authentication accepted")
    uptime = str(int(time.time() - sim.pbx.started))
    session.send(
        Message.of(
            Event="FullyBooted",
            Privilege="system,all",
            Uptime=uptime,
            LastReload=uptime,
            Status="Fully Booted",
        )
    )
    if session.events:  # a security event: filtered like the others; FullyBooted is not
        _security(session, "SuccessfulAuth", "Informational", [("UsingPassword", "0")])


async def _ping(sim: Simulator, session: Session, request: Message) -> None:
    session.respond(request, Ping="Pong", Timestamp=f"{time.time():.6f}")


async def _events(sim: Simulator, session: Session, request: Message) -> None:
    session.events = request.get("EventMask", "on").lower() not in ("off", "no", "false")
    session.respond(request, Events="On" if session.events else "Off")


async def _logoff(sim: Simulator, session: Session, request: Message) -> None:
    session.respond(request, "Goodbye", Message="Thanks for all the fish.")
    session.closed.set()


async def _setvar(sim: Simulator, session: Session, request: Message) -> None:
    chan = sim.pbx.channels.get(request.get("Channel"))
    if chan is None:
        sim.pbx.global_var(request.get("Variable"), request.get("Value"))
    else:
        sim.pbx.varset(chan, request.get("Variable"), request.get("Value"))
    session.respond(request, Message="Variable Set")


async def _getvar(sim: Simulator, session: Session, request: Message) -> None:
    """A channel variable, or a global one when no Channel is given."""
    name, wanted = request.get("Variable"), request.get("Channel")
    if not name:
        session.respond(request, "Error", Message="No variable specified")
        return
    if wanted:
        chan = sim.pbx.channels.get(wanted)
        if chan is None:
            session.respond(request, "Error", Message="No such channel")
            return
        value = chan.variables.get(name, "")
    else:
        value = sim.pbx.globals.get(name, "")
    session.respond(request, Variable=name, Value=value)


# -- Originate ---------------------------------------------------------------------


def _variables(request: Message) -> list[tuple[str, str]]:
    pairs = []
    for raw in request.getall("Variable"):
        for item in raw.split(","):
            key, _, value = item.partition("=")
            pairs.append((key.strip(), value))
    return pairs


def _caller_id(raw: str) -> tuple[str, str] | None:
    if not raw:
        return None
    if "<" in raw:
        name, _, rest = raw.partition("<")
        num = rest.rstrip(">").strip()
        return num, (name.strip().strip('"') or num)
    return raw, raw


async def start_originate(
    sim: Simulator, request: Message, session: Session | None
) -> tuple[Channel, asyncio.Task[int] | None]:
    """Create the Local pair now; run the rest (dial, answer, app) as a task."""
    pbx = sim.pbx
    target = request.get("Channel")
    tech, _, dest = target.partition("/")
    exten, _, context = dest.partition("@")
    if tech.lower() != "local":
        # Only Local channels exist here: a SIP peer (PJSIP/1001) is an agent phone,
        # a number through a trunk (PJSIP/346...@trunk) a PSTN customer.
        context = "pstn-out" if context else "agent-answer"
    variables = _variables(request)
    if context not in KNOWN_CONTEXTS:
        one, two = pbx.local_pair(exten, context)
        pbx.hangup(two, 0)
        pbx.hangup(one, 0)
        _originate_response(sim, request, None, 0)
        return two, None
    caller_id = _caller_id(request.get("CallerID"))
    leg = flows.new_leg(pbx, None, exten, context, caller_id, variables=variables)
    leg.one.dialplan = True
    sim.dialplan.start_far_end(leg)
    quiet = request.get("Async", "false").lower() not in ("true", "yes", "1")
    task = sim.dialplan.spawn(_run_originate(sim, request, leg, dict(variables), quiet))
    return leg.two, task


async def _run_originate(
    sim: Simulator, request: Message, leg: flows.Leg, variables: dict[str, str], quiet: bool = False
) -> int:
    """Wait for the answer; a sync Originate reports through its response only."""
    pbx = sim.pbx
    timeout = float(request.get("Timeout") or 30000) / 1000
    outcome = await flows.wait_outcome(pbx, leg, timeout)
    if outcome == ANSWER:
        pbx.dial_end(None, leg.one, ANSWER)
        if not quiet:
            _originate_response(sim, request, leg.one, 4)
        settings = {**variables, **request.as_dict()}
        sim.dialplan.spawn(sim.dialplan.after_answer(leg.one, settings))
        return 4
    if outcome == NOANSWER:
        pbx.hangup_request(leg.two, 19)
        for dialled in list(leg.two.dialing):
            flows.end_leg(pbx, dialled, flows.CANCEL, 0)
        pbx.hangup_request(leg.two, 16, soft=True)
        pbx.hangup(leg.two, 19)
        pbx.hangup(leg.one, 19)
    else:
        flows.end_leg(pbx, leg, outcome, 17 if outcome == BUSY else 34)
    reason = REASONS.get(outcome, 0)
    if not quiet:
        _originate_response(sim, request, None, reason)
    return reason


def _originate_response(sim: Simulator, request: Message, one: Channel | None, reason: int) -> None:
    caller_id = _caller_id(request.get("CallerID")) or ("<unknown>", "<unknown>")
    if request.get("Application"):
        target = [("Application", request.get("Application")), ("Data", request.get("Data"))]
    else:
        target = [("Context", request.get("Context")), ("Exten", request.get("Exten"))]
    sim.pbx.event(
        "OriginateResponse",
        "call,all",
        [
            ("ActionID", request.action_id),
            ("Response", "Success" if one is not None else "Failure"),
            ("Channel", one.name if one is not None else request.get("Channel")),
            *target,
            ("Reason", str(reason)),
            ("Uniqueid", one.uniqueid if one is not None else "<unknown>"),
            ("CallerIDNum", caller_id[0]),
            ("CallerIDName", caller_id[1]),
        ],
    )


async def _originate(sim: Simulator, session: Session, request: Message) -> None:
    if request.get("Async", "false").lower() in ("true", "yes", "1"):
        session.respond(request, Message="Originate successfully queued")
        await start_originate(sim, request, session)
        return
    _, task = await start_originate(sim, request, session)
    reason = 0 if task is None else await task
    if reason == 4:
        session.respond(request, Message="Originate successfully queued")
    else:
        session.respond(request, "Error", Message="Originate failed")


VERSION = "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-24 18:49:06 UTC"


def _command_output(sim: Simulator, command: str) -> list[str]:
    words = command.split()
    if words[:3] == ["core", "show", "version"]:
        return [VERSION]
    if words[:3] == ["core", "show", "channels"]:
        lines = [f"{'Channel':<64} {'Location':<32} {'State':<7} {'Application(Data)':<30}"]
        for chan in sim.live_channels():
            where = f"{chan.exten}@{chan.context}:{chan.priority}"
            app = f"{chan.application}({chan.app_data})"
            lines.append(f"{chan.name:<64} {where:<32} {chan.state:<7} {app:<30}")
        calls = len({c.linkedid for c in sim.live_channels()})
        count = len(sim.live_channels())
        lines += [f"{count} active channels", f"{calls} active calls"]
        return [*lines, f"{sim.pbx.calls_processed} calls processed"]
    return [
        f"No such command '{command}' (type 'core show help {command}' for other possible commands)"
    ]


async def _command(sim: Simulator, session: Session, request: Message) -> None:
    """CLI commands over AMI: one `Output:` header per line, as Asterisk 22 sends."""
    headers = [("Response", "Success"), ("ActionID", request.action_id)]
    headers.append(("Message", "Command output follows"))
    headers += [("Output", line) for line in _command_output(sim, request.get("Command"))]
    session.send(Message(headers))


async def _core_settings(sim: Simulator, session: Session, request: Message) -> None:
    session.respond(
        request,
        AMIversion="11.0.0",
        AsteriskVersion="22.10.1",
        SystemName="",
        CoreMaxCalls="0",
        CoreMaxLoadAvg="0.000000",
        CoreRunUser="",
        CoreRunGroup="",
        CoreMaxFilehandles="0",
        CoreRealTimeEnabled="No",
        CoreCDRenabled="Yes",
        CoreHTTPenabled="No",
        SoundsSearchCustomDir="No",
    )


async def _core_status(sim: Simulator, session: Session, request: Message) -> None:
    started = datetime.fromtimestamp(sim.pbx.started, UTC)
    session.respond(
        request,
        CoreStartupDate=started.strftime("%Y-%m-%d"),
        CoreStartupTime=started.strftime("%H:%M:%S"),
        CoreReloadDate=started.strftime("%Y-%m-%d"),
        CoreReloadTime=started.strftime("%H:%M:%S"),
        CoreCurrentCalls=str(len({c.linkedid for c in sim.live_channels()})),
        CoreProcessedCalls=str(sim.pbx.calls_processed),
    )


HANDLERS: dict[str, Handler] = {
    "command": _command,
    "coresettings": _core_settings,
    "corestatus": _core_status,
    "ping": _ping,
    "events": _events,
    "logoff": _logoff,
    "setvar": _setvar,
    "getvar": _getvar,
    "originate": _originate,
    **control.CONTROL,
}
