"""Asterisk AMI events -> leg facts -> PBX-neutral call events.

`CallTracker.feed` is the only entry for live AMI messages. It keeps a small
table of channels (by Uniqueid) and folds them into legs (the two halves of a
Local channel are one leg) of calls keyed by Linkedid, which Asterisk keeps
across blind, redirect and attended transfers. What the legs do is told to the
PBX-neutral `CallMachine`, which decides direction, answer, disposition and
the single CallEnded of each call. The per-event handlers live in
`handlers.py` (a flat table: event name -> one small function), the
reconnect reconciliation in `resync.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kernel.events import CallInfo, Event
from pbx_bridge.asterisk.channels import (
    CallView,
    Chan,
    PartyRules,
    dialed_number,
    is_local,
    known_number,
    leg_key,
    local_half,
    worse_cause,
)
from pbx_bridge.asterisk.handlers import HANDLERS
from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.asterisk.resync import reconcile
from pbx_bridge.calls import (
    CallMachine,
    CallPlaced,
    Fact,
    LegAdded,
    LegAnswered,
    LegHungUp,
    Party,
)

MAX_REMEMBERED = 2048
PSEUDO_CHANNELS = ("Snoop/", "Announcer/", "CBAnn/", "CBRec/", "Recorder/", "Message/",
                   "UnicastRTP/", "MulticastRTP/", "AudioSocket/", "Bridge/")
STATE_RING = 4  # a channel created by an incoming call (Local ;2 halves too, hence not Local)


@dataclass(frozen=True, slots=True)
class CallChannels:
    """The channels the port acts on: the customer's, the agent's bridged leg, the phone."""

    customer: str | None
    agent: str | None
    agent_device: str | None


class CallTracker:
    """Turns a stream of AMI messages into call events; pure and synchronous."""

    def __init__(self, is_trunk: Callable[[str], bool] | None = None,
                 agents: Iterable[str] | None = None, trunk_patterns: Iterable[str] = (),
                 variables: Iterable[str] = (), pbx: str = "asterisk") -> None:
        """`variables`: channel variables to carry in `CallInfo.variables` (an Originate's
        CAMPAIGN=..., say); every other VarSet is dropped."""
        self.rules = PartyRules(is_trunk, trunk_patterns, agents)
        self.variables = frozenset(variables)
        self.machine = CallMachine(pbx)
        self.chans: dict[str, Chan] = {}
        self.calls: dict[str, CallView] = {}
        self.originated: OrderedDict[str, str] = OrderedDict()  # dial string -> call id
        self.results: OrderedDict[str, None] = OrderedDict()  # ActionIDs already reported
        self.gone: OrderedDict[str, None] = OrderedDict()  # Uniqueids whose Hangup we saw
        self.epoch = 0  # AMI sessions seen (FullyBooted), to tell stale channels from new ones
        self._last: Message | None = None

    # -- public ------------------------------------------------------------------

    def feed(self, message: Message, now: float) -> list[Event]:
        """One live AMI message in, the call events it causes out (most give none)."""
        last, self._last = self._last, message
        handler = HANDLERS.get(message.event)
        if handler is None:
            return []
        if last is not None and last.headers == message.headers and message.event != "DTMFEnd":
            # A verbatim repeat (Asterisk sends DialEnd CANCEL twice on ringall). Not so for
            # DTMFEnd: a feature-code "00" comes as two identical DTMFEnd and no DTMFBegin.
            return []
        return handler(self, message, now)

    def resync(self, channels: list[Message], bridges: list[Message], queue: list[Message],
               now: float) -> list[Event]:
        """Reconcile with what Asterisk has now (after a reconnect or a restart)."""
        self._last = None
        return reconcile(self, channels, bridges, queue, now)

    def channels(self, call_id: str) -> CallChannels | None:
        """The customer's channel, the agent's channel bridged with it, and the agent's phone."""
        view = self.calls.get(call_id)
        info = self.machine.snapshot(call_id)
        if view is None or info is None:
            return None
        customer_leg = self.machine.customer_leg(call_id)
        customer = self.leg_channel(call_id, customer_leg)
        agent_legs = [leg for leg, uids in view.legs.items() if uids and leg != customer_leg
                      and info.agent is not None and view.parties.get(leg) is not None
                      and view.parties[leg].agent == info.agent]
        if not agent_legs:
            return CallChannels(customer.name if customer else None, None, None)
        chans = [c for leg in agent_legs for c in self.chans_of(call_id, leg)]
        bridged = [c for c in chans if customer is not None and c.bridge == customer.bridge != ""]
        agent_leg = self.machine.agent_leg(call_id)
        agent = bridged[0] if bridged else self.leg_channel(call_id, agent_leg)
        # The phone: the newest leg of that agent (after any Local hop), its ;2 half.
        phone = self.chans_of(call_id, agent_legs[-1])
        device = max(phone, key=lambda c: local_half(c.name)) if phone else agent
        return CallChannels(
            customer.name if customer else None,
            agent.name if agent else None,
            device.name if device else None,
        )

    def live_calls(self) -> list[CallInfo]:
        return self.machine.live_calls()

    def note_recording(self, call_id: str, path: str) -> None:
        """The port knows the file it asked MixMonitor for; the events do not carry it."""
        view = self.calls.get(call_id)
        if view is not None:
            view.recording = path

    # -- used by the handlers ----------------------------------------------------

    def apply(self, fact: Fact) -> list[Event]:
        return self.machine.apply(fact)

    def chan(self, m: Message, prefix: str = "") -> Chan | None:
        chan = self.chans.get(m.get(prefix + "Uniqueid"))
        if chan is not None:
            chan.epoch = self.epoch  # heard of in this session: alive after any list we get
        return chan

    def chans_of(self, call_id: str, leg: str | None) -> list[Chan]:
        view = self.calls.get(call_id)
        if view is None or leg is None:
            return []
        return [self.chans[u] for u in sorted(view.legs.get(leg, ())) if u in self.chans]

    def leg_channel(self, call_id: str, leg: str | None) -> Chan | None:
        """The channel that acts for a leg: the bridged one, else the one running Dial/Queue."""
        chans = self.chans_of(call_id, leg)
        if not chans:
            return None
        return min(chans, key=lambda c: (not c.bridge, not c.active, local_half(c.name) == 2))

    def add_channel(self, fields: Message, prefix: str, now: float) -> list[Event]:
        """A channel we had not seen: from Newchannel, a Dest* block, or a resync list."""
        uid = fields.get(prefix + "Uniqueid")
        if not uid or uid in self.chans or uid in self.gone or uid == "<unknown>":
            return []
        if fields.get(prefix + "Channel").startswith(PSEUDO_CHANNELS):
            return []  # no party behind it: a spy's snoop, a conference announcer, RTP media
        call_id = fields.get(prefix + "Linkedid") or uid
        if self.machine.has_ended(call_id):
            return []
        name = fields.get(prefix + "Channel")
        chan = Chan(name, uid, call_id, leg_key(name), _int(fields.get(prefix + "ChannelState")),
                    known_number(fields.get(prefix + "CallerIDNum")), fields.get(prefix + "Exten"),
                    epoch=self.epoch)
        self.chans[uid] = chan
        view = self.calls.setdefault(call_id, CallView())
        view.legs.setdefault(chan.leg, set()).add(uid)
        if view.origin is None:
            view.origin, view.origin_exten = chan.leg, chan.exten
        out = self.upsert(call_id, chan.leg, now)
        party = view.parties.get(chan.leg)
        incoming = chan.state == STATE_RING and not is_local(name) and view.origin == chan.leg
        if incoming and party is not None and party.outside:
            # A line born ringing (an INVITE from a trunk) is an inbound call from the start,
            # even if it only ever reaches an IVR.
            out += self.place(call_id, False, None, now)
        return out

    def upsert(self, call_id: str, leg: str, now: float) -> list[Event]:
        """Tell the machine who is on a leg, when that is new or has changed."""
        view = self.calls.get(call_id)
        if view is None:
            return []
        party = self.party(view, leg)
        if view.parties.get(leg) == party:
            return []
        view.parties[leg] = party
        return self.apply(LegAdded(call_id=call_id, at=now, leg=leg, party=party,
                                   origin=leg == view.origin))

    def party(self, view: CallView, leg: str) -> Party:
        member = view.members.get(leg)
        if member is not None:
            return member
        chans = [self.chans[u] for u in sorted(view.legs.get(leg, ())) if u in self.chans]
        name = chans[0].name if chans else leg
        ours = self.rules.of_channel(name)
        if ours is not None:
            return ours
        known = view.parties.get(leg)
        dialed = next((c.dial_string for c in chans if c.dial_string), "")
        if leg == view.origin and not view.by_pbx:
            # The caller presents its number; the ;2 half of a Local pair is the "line".
            ordered = sorted(chans, key=lambda c: -local_half(c.name))
            number = next((c.cid for c in ordered if c.cid), "")
        elif dialed:
            number = dialed_number(dialed)
        elif is_local(name):
            number = dialed_number(name.partition("/")[2])
        else:
            number = next((c.cid for c in chans if c.cid), "")
        return Party(number or (known.number if known else ""))

    def place(self, call_id: str, by_pbx: bool, dialed: Party | None, now: float) -> list[Event]:
        """The origin leg started calling out: now we know who called whom."""
        view = self.calls.get(call_id)
        if view is None or view.placed:
            return []
        view.placed, view.by_pbx = True, by_pbx
        origin = view.parties.get(view.origin or "")
        did = view.origin_exten if view.origin_exten not in ("", "s") else ""
        if not by_pbx and origin is not None and origin.outside and did:
            dialed = Party.service(did)  # inbound: the number the caller dialled
        out = self.upsert(call_id, view.origin, now) if view.origin else []
        return out + self.apply(CallPlaced(call_id=call_id, at=now, by_pbx=by_pbx, dialed=dialed))

    def hang_up(self, uid: str, cause: int, now: float) -> list[Event]:
        self.gone[uid] = None  # a list taken before this Hangup must not bring it back
        while len(self.gone) > MAX_REMEMBERED:
            self.gone.popitem(last=False)
        chan = self.chans.pop(uid, None)
        if chan is None:
            return []
        view = self.calls.get(chan.call_id)
        if view is None:
            return []
        alive = view.legs.get(chan.leg, set())
        alive.discard(uid)
        leg_cause = worse_cause(view.causes.get(chan.leg, 0), worse_cause(cause, chan.hint))
        view.causes[chan.leg] = leg_cause
        out: list[Event] = []
        if not alive:
            if chan.leg == view.origin and not view.placed and chan.originated:
                out += self.place(chan.call_id, True, None, now)  # rung by us, went nowhere
            out += self.apply(
                LegHungUp(call_id=chan.call_id, at=now, leg=chan.leg, cause=leg_cause)
            )
        if not any(view.legs.values()):
            del self.calls[chan.call_id]
        return out

    def move_leg(self, from_call: str, leg: str, to_call: str, now: float) -> list[Event]:
        """Move an answered leg to another call (the target of a cross-call transfer)."""
        source, dest = self.calls.get(from_call), self.calls.get(to_call)
        if source is None or dest is None or leg not in source.legs:
            return []
        uids = source.legs.pop(leg)
        party = source.parties.pop(leg, None)
        if leg in source.members:
            dest.members[leg] = source.members.pop(leg)
        for uid in uids:
            self.chans[uid].call_id = to_call
        dest.legs[leg] = uids
        out = self.apply(LegHungUp(call_id=from_call, at=now, leg=leg, cause=16))
        if not any(source.legs.values()):
            del self.calls[from_call]
        if party is not None:
            dest.parties[leg] = party
            out += self.apply(LegAdded(call_id=to_call, at=now, leg=leg, party=party))
        return out + self.apply(LegAnswered(call_id=to_call, at=now, leg=leg))

    def first_result(self, action_id: str) -> bool:
        if not action_id:
            return True
        if action_id in self.results:
            return False
        self.results[action_id] = None
        while len(self.results) > MAX_REMEMBERED:
            self.results.popitem(last=False)
        return True

    def remember_originate(self, dial: str, call_id: str) -> None:
        self.originated[dial] = call_id
        while len(self.originated) > MAX_REMEMBERED:
            self.originated.popitem(last=False)


def _int(value: str, default: int = 0) -> int:
    try:
        return int(value)
    except ValueError:
        return default
