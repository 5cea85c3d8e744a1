"""Call mechanics shared by every scenario: Local legs, Dial, bridging, teardown.

A *leg* is one `Local/<exten>@<context>` pair being dialled, by a channel's
Dial (or Queue) or by an Originate (no calling channel). The ;2 half runs the
far end's dialplan (a phone, a DID, pstn-out) and reports ringing, answer,
busy or congestion through the leg; whoever dialled waits on `leg.outcome`.
Teardown follows the propagation Asterisk shows in the traces: a Local half
hanging up requests the hangup of its other half, and a bridge whose member
leaves ends its remaining member.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pbx_bridge.simulator.channels import Bridge, Channel, Pbx

ANSWER, BUSY, CONGESTION, NOANSWER, CANCEL = "ANSWER", "BUSY", "CONGESTION", "NOANSWER", "CANCEL"


@dataclass(eq=False)
class Leg:
    """One Local pair being dialled and the result its dialler waits for."""

    caller: Channel | None
    one: Channel
    two: Channel
    outcome: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    on_ringing: Callable[[], None] | None = None
    late_busy: bool = False
    connected_on_ring: tuple[str, str] | None = None  # queue members learn it when ringing

    @property
    def settled(self) -> bool:
        return self.outcome.done() or self.one.gone


def ringing(pbx: Pbx, leg: Leg) -> None:
    """The far phone rings: the ;1 half goes Ringing and the dialler hears it."""
    if leg.settled:
        return
    if leg.connected_on_ring is not None:  # known already, announced just after
        leg.one.conn_num, leg.one.conn_name = leg.connected_on_ring
    pbx.newstate(leg.one, 5)
    if leg.connected_on_ring is not None:
        pbx.connected_line(leg.one, *leg.connected_on_ring)
    pbx.dial_state(leg.caller, leg.one)
    if leg.on_ringing is not None:
        leg.on_ringing()


def answer(pbx: Pbx, leg: Leg) -> None:
    """The far end answers: both halves Up, then the dialler is told."""
    if leg.settled:
        return
    if leg.two.state != 6:
        pbx.newstate(leg.two, 6)
    pbx.newstate(leg.one, 6)
    leg.outcome.set_result(ANSWER)


def refuse(pbx: Pbx, leg: Leg, status: str, late: bool = False) -> None:
    """BUSY or CONGESTION from the far end; `late`: Busy state shown after DialEnd."""
    if leg.settled:
        return
    leg.late_busy = late
    if not late:
        pbx.newstate(leg.two, 7)
    leg.outcome.set_result(status)


def new_leg(
    pbx: Pbx,
    caller: Channel | None,
    exten: str,
    context: str,
    caller_id: tuple[str, str] | None,
    connected: tuple[str, str] | None = None,
    variables: list[tuple[str, str]] | None = None,
    linkedid: str | None = None,
    before_dial: Callable[[Leg], None] | None = None,
    connected_on_ring: bool = False,
) -> Leg:
    """Create the Local pair, set its caller ID and announce the Dial."""
    one, two = pbx.local_pair(exten, context, linkedid or (caller.linkedid if caller else None))
    two.dialplan = True
    for name, value in variables or []:
        pbx.varset(one, name, value)
        pbx.varset(two, name, value)
    if caller_id is not None:
        _set_caller_ids(pbx, caller, one, two, caller_id, connected or caller_id, connected_on_ring)
    pbx.local_bridge(one, two)
    dialstring = f"Local/{exten}@{context}" if caller is not None else f"{exten}@{context}"
    leg = Leg(caller, one, two)
    one.app_data = "(Outgoing Line)"
    one.application = "AppDial2" if caller is None else "AppDial"
    if context == "queue-agents":
        one.application = "AppQueue"
    if connected_on_ring and caller_id is not None:
        leg.connected_on_ring = connected or caller_id
    if before_dial is not None:
        before_dial(leg)
    pbx.dial_begin(caller, one, dialstring)
    if caller is not None:
        caller.dialing.append(leg)
    return leg


def _set_caller_ids(
    pbx: Pbx,
    caller: Channel | None,
    one: Channel,
    two: Channel,
    caller_id: tuple[str, str],
    conn: tuple[str, str],
    connected_on_ring: bool,
) -> None:
    """NewCallerid/NewConnectedLine on both halves, with what each already knew.

    A dialled ;1 (not a queue member's) and every ;2 learn the connected line
    before their NewCallerid is sent; an originated ;1 only after it.
    """
    two_cid, two_conn = (conn, caller_id) if caller is not None else (caller_id, conn)
    if caller is not None and not connected_on_ring:
        one.conn_num, one.conn_name = conn
    pbx.caller_id(one, *caller_id)
    if not connected_on_ring:
        pbx.connected_line(one, *conn)
    two.conn_num, two.conn_name = two_conn
    pbx.caller_id(two, *two_cid)
    pbx.connected_line(two, *two_conn)


async def wait_outcome(pbx: Pbx, leg: Leg, limit_s: float | None) -> str:
    """Wait for the far end, a dial timeout, or the dialler hanging up."""
    waiters: set[asyncio.Future[object]] = {leg.outcome}  # type: ignore[arg-type]
    if leg.caller is not None:
        waiters.add(asyncio.ensure_future(leg.caller.hungup.wait()))
    scaled = None if limit_s is None else limit_s / pbx.speed
    _, pending = await asyncio.wait(waiters, timeout=scaled, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        if waiter is not leg.outcome:
            waiter.cancel()
    if leg.outcome.done():
        return leg.outcome.result()
    leg.outcome.set_result(CANCEL if leg.caller is not None and leg.caller.gone else NOANSWER)
    return leg.outcome.result()


def end_leg(pbx: Pbx, leg: Leg, status: str, far_cause: int, twice: bool = False) -> None:
    """A Dial that did not connect: DialEnd, then the Local pair goes (trace order)."""
    if leg.caller is not None and leg in leg.caller.dialing:
        leg.caller.dialing.remove(leg)
    pbx.dial_end(leg.caller, leg.one, status)
    if leg.caller is not None and status != CANCEL:
        pbx.varset(leg.caller, "DIALSTATUS", status)
    if twice:
        pbx.dial_end(leg.caller, leg.one, status)
    if leg.one.gone:
        return
    # Traces: the ;1 takes the far cause only for a ringall loser (26, answered
    # elsewhere); a busy/congested ;2 is asked with 0 and hangs up with 17/34.
    near_cause = 0 if status != CANCEL or far_cause == 0 else far_cause
    pbx.hangup_request(leg.two, 0 if far_cause in (17, 34) else far_cause)
    if leg.late_busy:
        pbx.newstate(leg.two, 7)
    pbx.hangup(leg.one, near_cause)
    pbx.hangup_request(leg.two, 16, soft=True)
    pbx.hangup(leg.two, far_cause)


def connect(pbx: Pbx, leg: Leg, upstream: Leg | None = None) -> Bridge:
    """Dial answered: DialEnd ANSWER, the caller answers upstream, both get bridged."""
    assert leg.caller is not None
    if leg in leg.caller.dialing:
        leg.caller.dialing.remove(leg)
    pbx.dial_end(leg.caller, leg.one, ANSWER)
    pbx.varset(leg.caller, "DIALSTATUS", ANSWER)
    if upstream is not None:
        answer(pbx, upstream)
    bridge = pbx.bridge_create()
    pbx.bridge_enter(bridge, leg.one)
    pbx.bridge_enter(bridge, leg.caller)
    return bridge


def flush_callerid(pbx: Pbx, chan: Channel) -> None:
    """Emit a caller ID update a Local ;2 had queued (see transfer.update_connected)."""
    if chan.pending_callerid is not None:
        chan.cid_num, chan.cid_name = chan.pending_callerid
        chan.pending_callerid = None
        pbx.event(
            "NewCallerid",
            "call,all",
            [*chan.fields(), ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")],
        )


def hangup_flushing(pbx: Pbx, chan: Channel, cause: int) -> None:
    """Hangup of a Local ;2 with a queued caller ID: the Hangup already shows the
    new one, its NewCallerid comes right after (attended_transfer trace)."""
    if chan.pending_callerid is not None:
        chan.cid_num, chan.cid_name = chan.pending_callerid
    pbx.hangup(chan, cause)
    flush_callerid(pbx, chan)


def teardown(pbx: Pbx, first: Channel, cause: int = 16, how: str = "app") -> None:
    """Hang up `first` and everything that falls with it.

    `how` says why a channel goes: "app" its own dialplan hung up, "req" its
    Local partner went, "peer" its bridge emptied, "ami" a Hangup action,
    "done" its application returned (ChanSpy).
    """
    work: deque[tuple[Channel, str]] = deque([(first, how)])
    queued = {first}
    while work:
        chan, why = work.popleft()
        if chan.gone:
            continue
        if why == "req":
            pbx.hangup_request(chan, cause)
            if chan.bridge is not None:
                flush_callerid(pbx, chan)
        if why == "app":
            pbx.hangup_request(chan, cause, soft=True)
        while chan.before_end:
            chan.before_end.pop(0)()
        for leg in list(chan.dialing):
            end_leg(pbx, leg, CANCEL, 0, twice=leg.one.context == "queue-agents")
        bridge = chan.bridge
        if bridge is not None:
            for hook in list(bridge.before_leave):
                hook()
            bridge.before_leave.clear()
            pbx.bridge_leave(bridge, chan)
            for peer in list(bridge.members):
                if peer not in queued and len(bridge.members) == 1:
                    queued.add(peer)
                    work.append((peer, "peer"))
            if not bridge.members:
                pbx.bridge_destroy(bridge)
        if why in ("req", "peer") and chan.dialplan:
            pbx.hangup_request(chan, 16, soft=True)
        partner = chan.partner
        if partner is not None and not partner.gone and partner not in queued:
            queued.add(partner)
            work.append((partner, "req"))
        hangup_flushing(pbx, chan, cause)
        if bridge is not None and not bridge.members:
            pbx.bridge_destroy(bridge)
