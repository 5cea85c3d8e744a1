"""One small function per AMI event the call tracker cares about.

Everything not in `HANDLERS` (VarSet aside, Newexten and friends: about half
of all traffic) is dropped by one dict lookup. Facts the handlers rely on
(Asterisk 12+, seen in real traces):
* an Originate's own dial has `DialBegin`/`DialEnd` with only `Dest*` fields;
* `OriginateResponse` may come before the channel events it explains, and on
  failure names the requested dial string with `Uniqueid: <unknown>`;
* a Local pair's `;2` half is the side that runs the dialled extension: when
  it dials or queues, the pair stands for a line calling in; when the `;1`
  half an Originate rang does, we placed the call (click-to-call, dialer);
* `AgentComplete` comes before the bridge teardown, so it ends nothing;
* a transferred caller keeps its channel, so `BridgeLeave` never ends a call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kernel.events import Event, OriginateResult, QueueMemberChanged
from pbx_bridge.asterisk.channels import Chan, dialed_number, is_local, known_number
from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.calls import (
    DtmfReceived,
    HoldChanged,
    LegAnswered,
    LegRinging,
    Party,
    QueueAbandoned,
    QueueJoined,
    RecordingChanged,
    Transferred,
    VariableSet,
)

if TYPE_CHECKING:
    from pbx_bridge.asterisk.tracker import CallTracker

Handler = Callable[["CallTracker", Message, float], list[Event]]

ORIGINATE_OUTCOMES = {"4": "answered", "3": "no-answer", "5": "busy", "8": "congestion"}
DIAL_FAILURE_CAUSES = {"BUSY": 17, "CONGESTION": 34, "CHANUNAVAIL": 20, "NOANSWER": 19}
STATE_RINGING, STATE_UP = 5, 6


def fully_booted(t: CallTracker, m: Message, now: float) -> list[Event]:
    """A new AMI session: channels not heard of in it are only as alive as the next lists say."""
    t.epoch += 1
    return []


def newchannel(t: CallTracker, m: Message, now: float) -> list[Event]:
    return t.add_channel(m, "", now)


def caller_id(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is None:
        return []
    number = known_number(m.get("CallerIDNum"))
    if not number or number == chan.cid:
        return []
    chan.cid = number
    return t.upsert(chan.call_id, chan.leg, now)


def newstate(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is None:
        return []
    chan.state = _int(m.get("ChannelState"))
    if chan.state == STATE_RINGING:
        return t.apply(LegRinging(call_id=chan.call_id, at=now, leg=chan.leg))
    return []


def dial_begin(t: CallTracker, m: Message, now: float) -> list[Event]:
    out = t.add_channel(m, "Dest", now)  # tolerate a DialBegin ahead of its Newchannel
    dest = t.chan(m, "Dest")
    if dest is None:
        return out
    dest.dial_string = dest.dial_string or m.get("DialString")
    view = t.calls[dest.call_id]
    caller = t.chan(m)
    if caller is None and not m.get("Channel"):  # an Originate rings its first party
        dest.originated = True
        tech = dest.name.partition("/")[0]
        t.remember_originate(f"{tech}/{dest.dial_string}", dest.call_id)
        if dest.leg == view.origin and not is_local(dest.name):
            out += t.place(dest.call_id, True, None, now)
    elif caller is not None:
        caller.active = True
        out += t.upsert(dest.call_id, dest.leg, now)
        if caller.leg == view.origin and not view.placed:
            out += _origin_dials(t, caller, dest, now)
    out += t.upsert(dest.call_id, dest.leg, now)
    return out + t.apply(LegRinging(call_id=dest.call_id, at=now, leg=dest.leg))


def _origin_dials(t: CallTracker, caller: Chan, dest: Chan, now: float) -> list[Event]:
    """The first dial from the origin leg says who placed the call."""
    view = t.calls[caller.call_id]
    dialed = view.parties.get(dest.leg)
    if dialed is None or dialed == view.parties.get(caller.leg):
        return []  # a hop to the same party: not a placement yet
    if is_local(caller.name) and dialed.number == dialed_number(caller.name):
        # A Local channel created for X whose ;2 half rings X: an Originate pointed it at X
        # (Local/1001@from-internal ringing PJSIP/1001, Local/<customer>@dialer-out).
        return t.place(caller.call_id, True, None, now)
    return t.place(caller.call_id, caller.originated, dialed, now)


def dial_state(t: CallTracker, m: Message, now: float) -> list[Event]:
    dest = t.chan(m, "Dest")
    if dest is None or m.get("DialStatus") not in ("RINGING", "PROGRESS"):
        return []
    return t.apply(LegRinging(call_id=dest.call_id, at=now, leg=dest.leg))


def dial_end(t: CallTracker, m: Message, now: float) -> list[Event]:
    dest = t.chan(m, "Dest")
    if dest is None:
        return []
    status = m.get("DialStatus")
    if status == "ANSWER":
        return t.apply(LegAnswered(call_id=dest.call_id, at=now, leg=dest.leg))
    dest.hint = DIAL_FAILURE_CAUSES.get(status, dest.hint)
    return []


def hangup(t: CallTracker, m: Message, now: float) -> list[Event]:
    return t.hang_up(m.get("Uniqueid"), _int(m.get("Cause")), now)


def bridge_enter(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is None:
        return []
    chan.bridge = m.get("BridgeUniqueid")
    view = t.calls.get(chan.call_id)
    if view is None or chan.leg == view.origin or m.get("ChannelState") != str(STATE_UP):
        return []
    # An answered leg joining a bridge is connected even if its DialEnd never came.
    return t.apply(LegAnswered(call_id=chan.call_id, at=now, leg=chan.leg))


def bridge_leave(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is not None and chan.bridge == m.get("BridgeUniqueid"):
        chan.bridge = ""
    return []


def originate_response(t: CallTracker, m: Message, now: float) -> list[Event]:
    if not t.first_result(m.action_id):
        return []  # one outcome per Originate, even if the response is delivered again
    uid = m.get("Uniqueid")
    chan = t.chans.get(uid)
    call_id: str | None
    if chan is not None:
        call_id = chan.call_id
    elif uid and uid != "<unknown>":
        call_id = uid  # the Originate's channel is the first of its call: Uniqueid = Linkedid
    else:
        call_id = t.originated.get(m.get("Channel"))
    outcome = ORIGINATE_OUTCOMES.get(m.get("Reason"), "failed")
    return [OriginateResult(action_id=m.action_id, outcome=outcome, channel=m.get("Channel"),
                            call_id=call_id, at=now)]


def queue_caller_join(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is None:
        return []
    chan.active = True
    queue = m.get("Queue")
    out = t.apply(QueueJoined(call_id=chan.call_id, at=now, queue=queue))
    view = t.calls[chan.call_id]
    if chan.leg == view.origin and not view.placed:
        out += t.place(chan.call_id, chan.originated, Party.service(queue), now)
    return out


def queue_caller_abandon(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is None:
        return []
    return t.apply(QueueAbandoned(call_id=chan.call_id, at=now, queue=m.get("Queue")))


def agent_called(t: CallTracker, m: Message, now: float) -> list[Event]:
    """A queue rings a member: name it by its Interface, whatever its channel is called."""
    out = t.add_channel(m, "Dest", now)
    dest = t.chan(m, "Dest")
    if dest is None:
        return out
    view = t.calls[dest.call_id]
    view.members[dest.leg] = t.rules.of_member(m.get("Interface"), m.get("MemberName"))
    out += t.upsert(dest.call_id, dest.leg, now)
    return out + t.apply(LegRinging(call_id=dest.call_id, at=now, leg=dest.leg))


def agent_connect(t: CallTracker, m: Message, now: float) -> list[Event]:
    dest = t.chan(m, "Dest")
    if dest is None:
        return []
    return t.apply(LegAnswered(call_id=dest.call_id, at=now, leg=dest.leg))


def queue_member(t: CallTracker, m: Message, now: float) -> list[Event]:
    """A member's availability (device state, pause) changed: pacing counts free agents."""
    member = t.rules.of_member(m.get("Interface"), m.get("MemberName")).number
    return [QueueMemberChanged(
        queue=m.get("Queue"), member=member, interface=m.get("Interface"),
        paused=m.get("Paused") == "1", status=_int(m.get("Status")),
        removed=m.event == "QueueMemberRemoved", at=now,
    )]


def hold(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is None:
        return []
    held = m.event in ("Hold", "MusicOnHoldStart")
    return t.apply(HoldChanged(call_id=chan.call_id, at=now, held=held))


def blind_transfer(t: CallTracker, m: Message, now: float) -> list[Event]:
    call_id = m.get("TransfereeLinkedid")
    if m.get("Result") != "Success" or call_id not in t.calls:
        return []
    target = t.rules.of_number(m.get("Extension"))
    return t.apply(Transferred(call_id=call_id, at=now, mode="blind", target=target))


def attended_transfer(t: CallTracker, m: Message, now: float) -> list[Event]:
    call_id = m.get("TransfereeLinkedid") or m.get("OrigTransfererLinkedid")
    if m.get("Result") != "Success" or call_id not in t.calls:
        return []
    target_chan = t.chan(m, "TransferTarget")
    target = Party("")
    out: list[Event] = []
    if target_chan is not None and target_chan.call_id != call_id:
        # Phones consult on a call of their own (another Linkedid): its target joins this one.
        out += t.move_leg(target_chan.call_id, target_chan.leg, call_id, now)
    if target_chan is not None:
        view = t.calls.get(target_chan.call_id)
        if view is not None:
            target = view.parties.get(target_chan.leg, target)
    elif m.get("TransferTargetChannel"):
        target = t.rules.of_channel(m.get("TransferTargetChannel")) or target
    return out + t.apply(Transferred(call_id=call_id, at=now, mode="attended", target=target))


def pickup(t: CallTracker, m: Message, now: float) -> list[Event]:
    """Another phone picks up a ringing one (its own Linkedid): it answers the caller's call."""
    picker, target = t.chan(m), t.chan(m, "Target")
    if picker is None or target is None or picker.call_id == target.call_id:
        return []
    return t.move_leg(picker.call_id, picker.leg, target.call_id, now)


def parked_call(t: CallTracker, m: Message, now: float) -> list[Event]:
    """Parking hands the caller on like a transfer: whoever retrieves it is the next agent."""
    call_id = m.get("ParkeeLinkedid")
    if call_id not in t.calls:
        return []
    space = Party.service(m.get("ParkingSpace") or m.get("Parkinglot"))
    return t.apply(Transferred(call_id=call_id, at=now, mode="park", target=space))


def unparked_call(t: CallTracker, m: Message, now: float) -> list[Event]:
    retriever, parkee = t.chan(m, "Retriever"), t.chan(m, "Parkee")
    if retriever is None or parkee is None or retriever.call_id == parkee.call_id:
        return []
    return t.move_leg(retriever.call_id, retriever.leg, parkee.call_id, now)


def mixmonitor(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is None:
        return []
    path = t.calls[chan.call_id].recording
    active = m.event == "MixMonitorStart"
    return t.apply(RecordingChanged(call_id=chan.call_id, at=now, active=active, path=path))


def var_set(t: CallTracker, m: Message, now: float) -> list[Event]:
    """MixMonitor's file name (the one place Asterisk says it) and the variables asked for."""
    name = m.get("Variable")
    if name != "MIXMONITOR_FILENAME" and name not in t.variables:
        return []
    chan = t.chan(m)
    if chan is None:
        return []
    if name == "MIXMONITOR_FILENAME":
        t.calls[chan.call_id].recording = m.get("Value") or None
        return []
    return t.apply(VariableSet(call_id=chan.call_id, at=now, name=name, value=m.get("Value")))


def dtmf_end(t: CallTracker, m: Message, now: float) -> list[Event]:
    """Digits the customer's line received (an agent's feature codes are not the customer's)."""
    chan = t.chan(m)
    if chan is None or m.get("Direction") != "Received":
        return []
    view = t.calls[chan.call_id]
    party = view.parties.get(chan.leg)
    if party is None or (party.agent is not None and chan.leg != view.origin):
        return []
    return t.apply(DtmfReceived(call_id=chan.call_id, at=now, digit=m.get("Digit")))


def rename(t: CallTracker, m: Message, now: float) -> list[Event]:
    chan = t.chan(m)
    if chan is not None and m.get("Newname"):
        chan.name = m.get("Newname")
    return []


def _int(value: str, default: int = 0) -> int:
    try:
        return int(value)
    except ValueError:
        return default


HANDLERS: dict[str, Handler] = {
    "FullyBooted": fully_booted,
    "Newchannel": newchannel,
    "NewCallerid": caller_id,
    "Newstate": newstate,
    "DialBegin": dial_begin,
    "DialState": dial_state,
    "DialEnd": dial_end,
    "Hangup": hangup,
    "BridgeEnter": bridge_enter,
    "BridgeLeave": bridge_leave,
    "OriginateResponse": originate_response,
    "QueueCallerJoin": queue_caller_join,
    "QueueCallerAbandon": queue_caller_abandon,
    "AgentCalled": agent_called,
    "AgentConnect": agent_connect,
    "QueueMemberStatus": queue_member,
    "QueueMemberPause": queue_member,
    "QueueMemberAdded": queue_member,
    "QueueMemberRemoved": queue_member,
    "QueueMemberPenalty": queue_member,
    "Hold": hold,
    "Unhold": hold,
    "MusicOnHoldStart": hold,
    "MusicOnHoldStop": hold,
    "BlindTransfer": blind_transfer,
    "AttendedTransfer": attended_transfer,
    "Pickup": pickup,
    "ParkedCall": parked_call,
    "UnParkedCall": unparked_call,
    "MixMonitorStart": mixmonitor,
    "MixMonitorStop": mixmonitor,
    "VarSet": var_set,
    "DTMFEnd": dtmf_end,
    "Rename": rename,
}
