"""Actions on live calls and queue members: Hangup, transfers, DTMF, recording, pauses."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.simulator import flows, transfer
from pbx_bridge.simulator.channels import Channel
from pbx_bridge.simulator.queues import Member

if TYPE_CHECKING:
    from pbx_bridge.simulator.server import Session, Simulator


def _find(
    sim: Simulator, session: Session, request: Message, key: str = "Channel"
) -> Channel | None:
    chan = sim.pbx.channels.get(request.get(key))
    if chan is None:
        session.respond(request, "Error", Message="No such channel")
    return chan


async def hangup(sim: Simulator, session: Session, request: Message) -> None:
    chan = _find(sim, session, request)
    if chan is None:
        return
    session.respond(request, Message="Channel Hungup")
    consultation = chan.consultation
    if consultation is not None and chan.bridge is consultation.consult:
        chan.consultation = None
        transfer.complete(sim.pbx, consultation)
    else:
        flows.teardown(sim.pbx, chan, 16, how="ami")


async def blind_transfer(sim: Simulator, session: Session, request: Message) -> None:
    transferer = _find(sim, session, request)
    if transferer is None:
        return
    bridge = transferer.bridge
    transferee = next((c for c in bridge.members if c is not transferer), None) if bridge else None
    if bridge is None or transferee is None:
        session.respond(request, "Error", Message="Transfer failed")
        return
    session.respond(request, Message="Transfer succeeded")
    context, exten = request.get("Context"), request.get("Exten")
    sim.pbx.event("Unhold", "call,all", transferer.fields())
    sim.pbx.varset(transferer, "BLINDTRANSFER", transferee.name)
    sim.pbx.varset(transferee, "BLINDTRANSFER", transferer.name)
    sim.pbx.event(
        "BlindTransfer",
        "call,all",
        [
            ("Result", "Success"),
            *transferer.fields("Transferer"),
            *transferee.fields("Transferee"),
            *bridge.fields(),
            ("IsExternal", "Yes"),
            ("Context", context),
            ("Extension", exten),
        ],
    )  # fmt: skip
    transfer.move(sim.pbx, sim.dialplan, [(transferee, context, exten)])


async def redirect(sim: Simulator, session: Session, request: Message) -> None:
    chan = _find(sim, session, request)
    if chan is None:
        return
    targets = [(chan, request.get("Context"), request.get("Exten"))]
    extra = sim.pbx.channels.get(request.get("ExtraChannel"))
    if request.get("ExtraChannel") and extra is None:
        session.respond(request, "Error", Message="ExtraChannel does not exist")
        return
    if extra is not None:
        context = request.get("ExtraContext") or request.get("Context")
        targets.append((extra, context, request.get("ExtraExten") or request.get("Exten")))
    session.respond(request, Message="Redirect successful")
    transfer.move(sim.pbx, sim.dialplan, targets)


async def play_dtmf(sim: Simulator, session: Session, request: Message) -> None:
    chan = _find(sim, session, request)
    if chan is None:
        return
    session.respond(request, Message="DTMF successfully queued")
    sim.spawn(_play_digit(sim, chan.partner or chan, request.get("Digit"), request.get("Duration")))


async def _play_digit(sim: Simulator, target: Channel, digit: str, duration: str) -> None:
    """PlayDTMF on a Local ;1 shows only on its ;2: two DTMFBegin, one DTMFEnd (trace)."""
    millis = int(duration or 250)
    sim.pbx.dtmf(target, digit, "Received", None)
    sim.pbx.dtmf(target, digit, "Received", None)
    await sim.pbx.sleep(millis / 1000)
    if not target.gone:
        sim.pbx.dtmf(target, digit, "Received", millis)


async def mix_monitor(sim: Simulator, session: Session, request: Message) -> None:
    chan = _find(sim, session, request)
    if chan is not None:
        session.respond(request)
        if request.get("File"):  # the only place the file name shows: a VarSet
            sim.pbx.varset(chan, "MIXMONITOR_FILENAME", request.get("File"))
        sim.pbx.event("MixMonitorStart", "call,all", chan.fields())


async def stop_mix_monitor(sim: Simulator, session: Session, request: Message) -> None:
    chan = _find(sim, session, request)
    if chan is not None:
        session.respond(request)
        sim.pbx.event("MixMonitorStop", "call,all", chan.fields())


async def mute_audio(sim: Simulator, session: Session, request: Message) -> None:
    """res_mutestream: checks its three headers, answers a bare Success, sends no event."""
    for header in ("Channel", "State", "Direction"):
        if not request.get(header):
            session.respond(request, "Error", Message=f"{header} not specified")
            return
    chan = _find(sim, session, request)
    if chan is not None:
        muted = request.get("State").lower() in ("on", "yes", "true", "1")
        chan.muted = request.get("Direction").lower() if muted else ""
        session.respond(request)


async def bridge(sim: Simulator, session: Session, request: Message) -> None:
    """Bridge two live channels: each leaves its bridge (its old peer hangs up)."""
    pbx = sim.pbx
    pair = []
    for key in ("Channel1", "Channel2"):
        chan = pbx.channels.get(request.get(key))
        if chan is None:
            session.respond(request, "Error", Message=f"{key} does not exist: {request.get(key)}")
            return
        pair.append(chan)
    for chan in pair:
        if chan.music_stop is not None:  # leaving hold: its music stops first
            chan.before_end.remove(chan.music_stop)
            chan.music_stop()
            chan.music_stop = None
        old = chan.bridge
        if old is not None:
            pbx.bridge_leave(old, chan)
            for peer in [c for c in old.members if c not in pair]:
                flows.teardown(pbx, peer, 16, how="peer")
            pbx.bridge_destroy(old)
    joined = pbx.bridge_create()
    for chan in pair:
        pbx.bridge_enter(joined, chan)
    session.respond(request, Message="Channels have been bridged")


async def atxfer(sim: Simulator, session: Session, request: Message) -> None:
    chan = _find(sim, session, request)
    if chan is not None:
        session.respond(request, Message="Atxfer successfully queued")
        sim.dialplan.spawn(transfer.attended(sim.pbx, sim.dialplan, chan, request.get("Exten")))


def _member_event(sim: Simulator, event: str, queue_name: str, member: Member) -> None:
    sim.queues.member_event(event, sim.queues.queues[queue_name], member)


async def queue_add(sim: Simulator, session: Session, request: Message) -> None:
    queue = sim.queues.queues.get(request.get("Queue"))
    iface = request.get("Interface")
    if queue is None or queue.member(iface) is not None:
        session.respond(request, "Error", Message="Unable to add interface: Already there")
        return
    member = Member(
        iface, request.get("MemberName") or iface, "dynamic", int(request.get("Penalty") or 0)
    )
    member.paused = request.get("Paused", "false").lower() == "true"
    member.valid = member.exten in ("2001", "2002") or member.exten in sim.dialplan.agents
    queue.members.append(member)
    session.respond(request, Message="Added interface to queue")
    sim.pbx.device_state(
        f"Queue:{queue.name}_pause_{iface}", "INUSE" if member.paused else "NOT_INUSE"
    )
    _member_event(sim, "QueueMemberAdded", queue.name, member)
    queue.changed.set()


async def queue_remove(sim: Simulator, session: Session, request: Message) -> None:
    queue = sim.queues.queues.get(request.get("Queue"))
    member = queue.member(request.get("Interface")) if queue else None
    if queue is None or member is None:
        session.respond(request, "Error", Message="Unable to remove interface: Not there")
        return
    queue.members.remove(member)
    session.respond(request, Message="Removed interface from queue")
    _member_event(sim, "QueueMemberRemoved", queue.name, member)


async def queue_pause(sim: Simulator, session: Session, request: Message) -> None:
    paused = request.get("Paused", "true").lower() in ("true", "yes", "1")
    iface, wanted = request.get("Interface"), request.get("Queue")
    found = [
        (q, q.member(iface)) for q in sim.queues.queues.values() if not wanted or q.name == wanted
    ]
    hits = [(q, m) for q, m in found if m is not None]
    if not hits:
        session.respond(request, "Error", Message="Interface not found")
        return
    session.respond(request, Message=f"Interface {'paused' if paused else 'unpaused'} successfully")
    for queue, member in hits:
        assert member is not None
        member.paused, member.reason = paused, request.get("Reason") if paused else ""
        member.last_pause = int(time.time())
        sim.pbx.device_state(
            f"Queue:{queue.name}_pause_{iface}", "INUSE" if paused else "NOT_INUSE"
        )
        _member_event(sim, "QueueMemberPause", queue.name, member)
        queue.changed.set()


async def queue_penalty(sim: Simulator, session: Session, request: Message) -> None:
    iface, wanted = request.get("Interface"), request.get("Queue")
    hits = [
        (q, q.member(iface)) for q in sim.queues.queues.values() if not wanted or q.name == wanted
    ]
    hits = [(q, m) for q, m in hits if m is not None]
    if not hits:
        session.respond(request, "Error", Message="Invalid interface, queuename or penalty")
        return
    session.respond(request, Message="Interface penalty set successfully")
    for queue, member in hits:
        assert member is not None
        member.penalty = int(request.get("Penalty") or 0)
        _member_event(sim, "QueueMemberPenalty", queue.name, member)


CONTROL = {
    "hangup": hangup,
    "blindtransfer": blind_transfer,
    "redirect": redirect,
    "playdtmf": play_dtmf,
    "mixmonitor": mix_monitor,
    "stopmixmonitor": stop_mix_monitor,
    "muteaudio": mute_audio,
    "bridge": bridge,
    "atxfer": atxfer,
    "queueadd": queue_add,
    "queueremove": queue_remove,
    "queuepause": queue_pause,
    "queuepenalty": queue_penalty,
}
