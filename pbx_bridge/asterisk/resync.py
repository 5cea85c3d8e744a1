"""After a reconnect (or a restart): make the tracker agree with what Asterisk has now.

Given the items of CoreShowChannels (`CoreShowChannel`), BridgeList
(`BridgeListItem`) and QueueStatus (`QueueParams`/`QueueMember`/`QueueEntry`):
channels we tracked that are gone hung up while we were away (their calls end
once, with what we knew of them); channels we never saw are adopted with
their call's state, caller and agent, so their later Hangup, BridgeLeave or
AgentComplete close them properly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernel.events import Event, QueueMemberChanged
from pbx_bridge.asterisk.channels import Chan, dialed_number, local_half
from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.calls import LegAnswered, LegRinging, Party, QueueJoined

if TYPE_CHECKING:
    from pbx_bridge.asterisk.tracker import CallTracker

STATE_RINGING, STATE_UP = "5", "6"
CALLING_APPS = ("Dial", "Queue")


def reconcile(t: CallTracker, channels: list[Message], bridges: list[Message],
              queue: list[Message], now: float) -> list[Event]:
    """End what vanished, refresh what we knew, adopt what we did not.

    `bridges` adds nothing the channels' own `BridgeId` does not say; it is taken so the
    adapter can hand over everything it fetched.
    """
    live = {m.get("Uniqueid"): m for m in channels if m.get("Uniqueid")}
    out: list[Event] = []
    # Gone while we were away; a channel heard of in this session is alive past the list
    # (its own Hangup will come live), whatever a list taken a moment earlier says.
    stale = [u for u, c in t.chans.items() if u not in live and (c.epoch < t.epoch or not t.epoch)]
    for uid in stale:
        out += t.hang_up(uid, 0, now)
    adopted: list[str] = []
    for uid, item in live.items():
        if uid in t.chans:
            out += _refresh(t, t.chans[uid], item, now)
            view = t.calls.get(t.chans[uid].call_id)
            if view is not None and not view.placed and t.chans[uid].call_id not in adopted:
                adopted.append(t.chans[uid].call_id)  # it may have started calling out
    fresh = sorted(
        (m for uid, m in live.items() if uid not in t.chans),
        key=lambda m: (m.get("Linkedid"), m.get("Uniqueid") != m.get("Linkedid"),
                       _uid_order(m.get("Uniqueid"))),
    )
    for m in fresh:
        out += t.add_channel(m, "", now - _seconds(m.get("Duration")))
        chan = t.chan(m)
        if chan is None:
            continue
        chan.bridge = m.get("BridgeId")
        chan.active = m.get("Application") in CALLING_APPS
        if chan.call_id not in adopted:
            adopted.append(chan.call_id)
    for call_id in adopted:
        out += _adopt_call(t, call_id, live, now)
    for entry in queue:
        chan = t.chans.get(entry.get("Uniqueid"))
        if entry.event == "QueueEntry" and chan is not None:
            out += t.apply(QueueJoined(call_id=chan.call_id, at=now, queue=entry.get("Queue")))
        elif entry.event == "QueueMember":
            out.append(_member(t, entry, now))
    return out


def _member(t: CallTracker, entry: Message, now: float) -> QueueMemberChanged:
    """Members as they are now: pacing must not count agents that changed while we were away."""
    interface = entry.get("StateInterface") or entry.get("Location")
    return QueueMemberChanged(
        queue=entry.get("Queue"), member=t.rules.of_member(interface, entry.get("Name")).number,
        interface=interface, paused=entry.get("Paused") == "1",
        status=int(entry.get("Status") or 0), at=now,
    )


def _adopt_call(t: CallTracker, call_id: str, live: dict[str, Message], now: float) -> list[Event]:
    """Place, queue and answer a call we only know from the channel list."""
    view = t.calls.get(call_id)
    if view is None or view.origin is None:
        return []
    out: list[Event] = []
    origin = t.leg_channel(call_id, view.origin)
    item = live.get(origin.uniqueid) if origin is not None else None
    if origin is not None and item is not None and origin.active:
        app, data = item.get("Application"), item.get("ApplicationData")
        view.origin_exten = item.get("Exten") or view.origin_exten  # the half that dials
        target = data.split(",", 1)[0]
        queued = app == "Queue"
        dialed = Party.service(target) if queued else t.rules.of_number(dialed_number(target))
        out += t.place(call_id, local_half(origin.name) == 1, dialed, now)
        if app == "Queue":
            out += t.apply(QueueJoined(call_id=call_id, at=now, queue=target))
    for leg in list(view.legs):
        if leg == view.origin:
            continue
        chans = t.chans_of(call_id, leg)
        up = [c for c in chans if str(c.state) == STATE_UP and c.bridge]
        if up:
            item = live.get(up[0].uniqueid)
            since = now - _seconds(item.get("Duration")) if item is not None else now
            out += t.apply(LegAnswered(call_id=call_id, at=since, leg=leg))
        elif any(str(c.state) == STATE_RINGING for c in chans):
            out += t.apply(LegRinging(call_id=call_id, at=now, leg=leg))
    return out


def _refresh(t: CallTracker, chan: Chan, item: Message, now: float) -> list[Event]:
    """A channel we knew: it may have been answered while we were away."""
    chan.bridge = item.get("BridgeId")
    chan.state = int(item.get("ChannelState") or chan.state)
    chan.active = chan.active or item.get("Application") in CALLING_APPS
    view = t.calls.get(chan.call_id)
    if view is None or chan.leg == view.origin or not (chan.bridge and chan.state == 6):
        return []
    return t.apply(LegAnswered(call_id=chan.call_id, at=now, leg=chan.leg))


def _seconds(duration: str) -> float:
    """CoreShowChannel's `Duration: HH:MM:SS`."""
    total = 0
    for part in duration.split(":"):
        if not part.isdigit():
            return 0.0
        total = total * 60 + int(part)
    return float(total)


def _uid_order(uid: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in uid.split("."))
    except ValueError:
        return (0,)
