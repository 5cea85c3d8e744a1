"""The PBX-neutral call model: a pure state machine fed by leg facts.

Each adapter (Asterisk, Twilio) turns what its PBX says into small facts about
the *legs* of a call (one leg = one party: the caller's line, an agent's
phone, a transfer target) and `CallMachine.apply` turns them into the
`kernel.events` the product publishes. Who called whom is decided here, from
WHO the parties are (one of our extensions or an outside number), never from
dialplan names, so both adapters file calls the same way.

The machine is idempotent: a repeated fact changes nothing and emits nothing,
and a call ends exactly once, when its last leg is gone (or the adapter says
the PBX no longer has it), however many legs and transfers it had.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kernel.events import (
    CallAnswered,
    CallDtmf,
    CallEnded,
    CallHeld,
    CallInfo,
    CallResumed,
    CallRinging,
    CallState,
    CallTransferred,
    Event,
    RecordingReady,
    RecordingStarted,
)
from pbx_bridge.call_facts import (
    CAUSE_BUSY,
    CAUSE_NO_ANSWER,
    FAILURE_CAUSES,
    CallGone,
    CallPlaced,
    DtmfReceived,
    Fact,
    HoldChanged,
    LegAdded,
    LegAnswered,
    LegHungUp,
    LegRinging,
    Party,
    QueueAbandoned,
    QueueJoined,
    RecordingChanged,
    Transferred,
    VariableSet,
)
from pbx_bridge.call_record import CallRecord, LegRecord, is_service

__all__ = [
    "CAUSE_BUSY", "CAUSE_NO_ANSWER", "FAILURE_CAUSES", "CallGone", "CallMachine", "CallPlaced",
    "DtmfReceived", "Fact", "HoldChanged", "LegAdded", "LegAnswered", "LegHungUp", "LegRinging",
    "Party", "QueueAbandoned", "QueueJoined", "RecordingChanged", "Transferred", "VariableSet",
]


class CallMachine:
    """Live calls by id; `apply(fact)` returns the events the fact causes."""

    def __init__(self, pbx: str = "asterisk", remember_ended: int = 20_000) -> None:
        self.pbx = pbx
        self._calls: dict[str, CallRecord] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._remember = remember_ended
        self._handlers: dict[type[Fact], Callable[[CallRecord, Any], list[Event]]] = {
            LegAdded: self._leg_added,
            CallPlaced: self._placed,
            LegRinging: self._ringing,
            LegAnswered: self._answered,
            LegHungUp: self._hung_up,
            HoldChanged: self._hold,
            Transferred: self._transferred,
            QueueJoined: self._queue_joined,
            QueueAbandoned: self._queue_abandoned,
            RecordingChanged: self._recording,
            DtmfReceived: self._dtmf,
            CallGone: self._gone,
            VariableSet: self._variable,
        }

    def apply(self, fact: Fact) -> list[Event]:
        if fact.call_id in self._ended:
            return []
        call = self._calls.get(fact.call_id)
        if call is None:
            call = CallRecord(fact.call_id, fact.at, self.pbx)
            self._calls[fact.call_id] = call
        return self._handlers[type(fact)](call, fact)

    def is_live(self, call_id: str) -> bool:
        return call_id in self._calls

    def has_ended(self, call_id: str) -> bool:
        return call_id in self._ended

    def snapshot(self, call_id: str) -> CallInfo | None:
        call = self._calls.get(call_id)
        return None if call is None else call.info()

    def live_calls(self) -> list[CallInfo]:
        return [c.info() for c in self._calls.values() if c.reportable()]

    def agent_leg(self, call_id: str) -> str | None:
        """The live leg of the call's current agent (for the port's actions)."""
        call = self._calls.get(call_id)
        if call is None or call.agent is None:
            return None
        live = [k for k, leg in call.legs.items() if not leg.gone and leg.party.agent == call.agent]
        answered = [k for k in live if call.legs[k].answered]
        chosen = answered or live
        return chosen[0] if chosen else None

    def customer_leg(self, call_id: str) -> str | None:
        """The live leg of the party the agent talks to: the outside one, else the caller."""
        call = self._calls.get(call_id)
        if call is None:
            return None
        live = {key: leg for key, leg in call.legs.items() if not leg.gone}
        origin = live.get(call.origin or "")
        if origin is not None and origin.party.outside:
            return call.origin
        outside = [key for key, leg in live.items() if leg.party.outside]
        answered = [key for key in outside if live[key].answered]
        if answered or outside:
            return (answered or outside)[0]
        if origin is not None and call.agent not in (None, origin.party.agent):
            return call.origin  # an internal call: the calling extension
        return None

    # -- handlers -------------------------------------------------------------

    def _leg_added(self, call: CallRecord, fact: LegAdded) -> list[Event]:
        leg = call.legs.get(fact.leg)
        if leg is None:
            call.legs[fact.leg] = LegRecord(fact.party)
        elif not leg.gone:
            leg.party = fact.party
        if fact.origin and call.origin is None:
            call.origin = fact.leg
        return []

    def _placed(self, call: CallRecord, fact: CallPlaced) -> list[Event]:
        if call.placed:
            return []
        call.placed, call.by_pbx, call.dialed = True, fact.by_pbx, fact.dialed
        origin = call.legs.get(call.origin or "")
        if origin is not None and origin.party.agent is not None:
            call.agent = origin.party.agent  # an agent places the call: it is theirs
        dialer = fact.by_pbx and origin is not None and origin.party.outside
        if dialer and origin is not None and origin.answered and not call.announced:
            call.announced = True  # a dialer call the customer picked up: announce it now
            return [CallRinging(call=call.info(), at=fact.at)]
        return []

    def _ringing(self, call: CallRecord, fact: LegRinging) -> list[Event]:
        leg = call.legs.get(fact.leg)
        if leg is None or leg.gone or leg.answered or leg.ringing:
            return []
        leg.ringing = True
        if call.origin_side(fact.leg):
            # Only a dialer's customer, rung by us first, announces the call from the origin.
            return self._announce(call, fact.at) if call.by_pbx and leg.party.outside else []
        if leg.party.agent is not None:
            return self._agent_rings(call, leg, fact.at)
        if leg.party.outside:
            return self._announce(call, fact.at)  # the number an agent calls
        return []  # a queue or IVR hop: the people behind it ring on legs of their own

    def _announce(self, call: CallRecord, at: float) -> list[Event]:
        if call.announced:
            return []
        call.announced = True
        return [CallRinging(call=call.info(), at=at)]

    def _agent_rings(self, call: CallRecord, leg: LegRecord, at: float) -> list[Event]:
        """One CallRinging per newly rung agent (ring-all rings several)."""
        agent = leg.party.agent
        assert agent is not None
        out: list[Event] = []
        redirected = call.answered_at is not None and not call.transfer_pending
        if redirected and not call.agent_alive():
            # A Redirect moves the caller without any transfer event: a new agent rings.
            call.transfer_pending, call.state = True, CallState.TRANSFERRED
            out.append(CallTransferred(call=call.info(), at=at, mode="redirect",
                                       target=leg.party.number))
        if agent in call.ringing or (agent == call.agent and not call.transfer_pending):
            return out
        call.ringing.append(agent)
        call.announced = True
        return [*out, CallRinging(call=call.info(), at=at)]

    def _answered(self, call: CallRecord, fact: LegAnswered) -> list[Event]:
        leg = call.legs.get(fact.leg)
        if leg is None or leg.gone or leg.answered:
            return []
        leg.answered, leg.ringing = True, False
        if call.origin_side(fact.leg) or is_service(leg.party):
            # The party we rang first picking up, or a queue or IVR answering: nobody is
            # connected to a person yet.
            return []
        agent = leg.party.agent
        if agent is not None and agent in call.ringing:
            call.ringing.remove(agent)
        if call.answered_at is None:
            call.answered_at = fact.at
            if agent is not None:
                call.agent = agent
            call.ringing.clear()
            call.state = CallState.UP
            return [CallAnswered(call=call.info(), at=fact.at)]
        if agent is None or (agent == call.agent and not call.transfer_pending):
            return []
        out: list[Event] = []
        if not call.transfer_pending:
            if call.agent_alive():
                return []  # a consultation: the call is still the first agent's
            # Another agent took over while we were not looking (seen on a resync).
            out.append(CallTransferred(call=call.info(), at=fact.at, mode="redirect",
                                       target=leg.party.number))
        call.transfer_pending, call.agent, call.state = False, agent, CallState.UP
        call.ringing.clear()
        return [*out, CallAnswered(call=call.info(), at=fact.at)]

    def _hung_up(self, call: CallRecord, fact: LegHungUp) -> list[Event]:
        leg = call.legs.get(fact.leg)
        if leg is None or leg.gone:
            return []
        leg.gone, leg.ringing, leg.cause = True, False, fact.cause
        agent = leg.party.agent
        if agent is not None and agent in call.ringing and not call.agent_ringing(agent):
            call.ringing.remove(agent)
        if all(other.gone for other in call.legs.values()):
            return self._end(call, fact.at)
        return []

    def _hold(self, call: CallRecord, fact: HoldChanged) -> list[Event]:
        if fact.held and call.state is CallState.UP:
            call.state = CallState.HELD
            return [CallHeld(call=call.info(), at=fact.at)]
        if not fact.held and call.state is CallState.HELD:
            call.state = CallState.UP
            return [CallResumed(call=call.info(), at=fact.at)]
        return []

    def _transferred(self, call: CallRecord, fact: Transferred) -> list[Event]:
        target = fact.target.agent
        if call.transferred_to == fact.target:
            return []  # the same transfer told again
        call.transferred_to = fact.target
        already_up = any(
            leg.answered and not leg.gone and leg.party == fact.target
            for key, leg in call.legs.items()
            if not call.origin_side(key)
        )
        if already_up:  # attended: the target is already talking (an agent, or a number)
            call.agent = target or call.agent
            call.transfer_pending, call.state = False, CallState.UP
        else:
            call.transfer_pending, call.state = True, CallState.TRANSFERRED
        return [CallTransferred(call=call.info(), at=fact.at, mode=fact.mode,
                                target=fact.target.number)]

    def _queue_joined(self, call: CallRecord, fact: QueueJoined) -> list[Event]:
        call.queue = fact.queue
        return []

    def _queue_abandoned(self, call: CallRecord, fact: QueueAbandoned) -> list[Event]:
        call.queue = call.queue or fact.queue
        if call.answered_at is None:
            call.abandoned = True
        return []

    def _recording(self, call: CallRecord, fact: RecordingChanged) -> list[Event]:
        if fact.path:
            call.recording = fact.path
        if fact.active and not call.recording_active:
            call.recording_active = True
            return [RecordingStarted(call=call.info(), at=fact.at)]
        if not fact.active and call.recording_active:
            call.recording_active = False
            return [RecordingReady(call=call.info(), at=fact.at, path=call.recording or "")]
        return []

    def _dtmf(self, call: CallRecord, fact: DtmfReceived) -> list[Event]:
        return [CallDtmf(call=call.info(), at=fact.at, digit=fact.digit)]

    def _variable(self, call: CallRecord, fact: VariableSet) -> list[Event]:
        call.variables[fact.name] = fact.value  # carried by the next snapshots, no event
        return []

    def _gone(self, call: CallRecord, fact: CallGone) -> list[Event]:
        for leg in call.legs.values():
            leg.gone, leg.ringing = True, False
        return self._end(call, fact.at)

    # -- helpers ---------------------------------------------------------------

    def _end(self, call: CallRecord, at: float) -> list[Event]:
        del self._calls[call.call_id]
        self._ended[call.call_id] = None
        while len(self._ended) > self._remember:
            self._ended.popitem(last=False)
        if not call.placed and call.origin_outside() and not call.has_callee():
            call.placed, call.by_pbx = True, True  # rung by us and never got further
        if not call.reportable():
            return []
        out: list[Event] = []
        if call.recording_active:
            call.recording_active = False
            out.append(RecordingReady(call=call.info(), at=at, path=call.recording or ""))
        call.state, call.ringing = CallState.ENDED, []
        info = replace(call.info(), ended_at=at, disposition=call.disposition())
        out.append(CallEnded(call=info, at=at))
        return out
