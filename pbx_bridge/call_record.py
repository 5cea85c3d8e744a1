"""The record of one call and what it says: who called whom, how it ended.

`CallMachine` (calls.py) changes these records as facts arrive; the
snapshot, direction and disposition rules live here, next to the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.events import CallInfo, CallState, Direction, Disposition
from pbx_bridge.call_facts import CAUSE_BUSY, FAILURE_CAUSES, Party


@dataclass(slots=True)
class LegRecord:
    """One party of a call and how far it got."""

    party: Party
    ringing: bool = False
    answered: bool = False
    gone: bool = False
    cause: int = 0


@dataclass(slots=True)
class CallRecord:
    """Everything the machine knows about one call; what it says about the call."""

    call_id: str
    started_at: float
    pbx: str
    legs: dict[str, LegRecord] = field(default_factory=dict)
    origin: str | None = None
    placed: bool = False
    by_pbx: bool = False
    dialed: Party | None = None
    state: CallState = CallState.RINGING
    agent: str | None = None
    answered_at: float | None = None
    announced: bool = False
    ringing: list[str] = field(default_factory=list)
    queue: str | None = None
    abandoned: bool = False
    recording: str | None = None
    recording_active: bool = False
    transfer_pending: bool = False
    transferred_to: Party | None = None
    variables: dict[str, str] = field(default_factory=dict)

    def disposition(self) -> Disposition:
        if self.answered_at is not None:
            return Disposition.ANSWERED
        if self.abandoned:
            return Disposition.ABANDONED
        callee_causes = [
            leg.cause for key, leg in self.legs.items()
            if key != self.origin or (self.by_pbx and leg.party.outside)
        ]
        if CAUSE_BUSY in callee_causes:
            return Disposition.BUSY
        inbound = self.parties()[0] is Direction.INBOUND
        if not inbound and any(cause in FAILURE_CAUSES for cause in callee_causes):
            return Disposition.FAILED  # our call did not go through (congestion, no route)
        return Disposition.MISSED  # a caller nobody answered, whatever the phones said

    def reportable(self) -> bool:
        """A call worth a record: it reached someone, or we dialled a customer."""
        if self.has_callee():
            return True
        dialer = self.by_pbx and self.origin_outside()
        return self.placed and (dialer or self.dialed is not None)

    def origin_side(self, key: str) -> bool:
        """The origin leg, or a hop to the very same party (Local/1001 dialling PJSIP/1001,
        a dialer's Local channel dialling the customer's trunk): not a second party."""
        if key == self.origin:
            return True
        origin, leg = self.legs.get(self.origin or ""), self.legs.get(key)
        return origin is not None and leg is not None and origin.party.number != "" \
            and leg.party == origin.party

    def origin_outside(self) -> bool:
        origin = self.legs.get(self.origin or "")
        return origin is not None and origin.party.outside

    def has_callee(self) -> bool:
        return any(not self.origin_side(key) for key in self.legs)

    def agent_alive(self) -> bool:
        return any(not leg.gone and leg.party.agent == self.agent
                   for key, leg in self.legs.items() if not self.origin_side(key))

    def agent_ringing(self, agent: str) -> bool:
        return any(leg.ringing and leg.party.agent == agent for leg in self.legs.values())

    def info(self) -> CallInfo:
        direction, caller, callee = self.parties()
        return CallInfo(
            call_id=self.call_id, direction=direction, caller=caller, callee=callee,
            state=self.state, agent=self.agent, started_at=self.started_at,
            answered_at=self.answered_at, ringing=tuple(self.ringing), queue=self.queue,
            recording=self.recording, pbx=self.pbx, variables=tuple(sorted(self.variables.items())),
        )

    def parties(self) -> tuple[Direction, str, str]:
        origin_leg = self.legs.get(self.origin or "")
        origin = origin_leg.party if origin_leg is not None else Party("")
        others = [leg.party for key, leg in self.legs.items() if not self.origin_side(key)]
        if self.by_pbx and origin.outside:  # a dialer call: we rang the customer
            return Direction.OUTBOUND, self.agent or "", origin.number
        callee_party = self.dialed or next(iter(others), None)
        if self.by_pbx:  # click-to-call: the agent's phone rang first, then the number
            callee_party = next((p for p in others if p.outside), callee_party)
        callee = callee_party.number if callee_party is not None else ""
        if origin.outside:
            return Direction.INBOUND, origin.number, callee
        caller = origin.agent or origin.number
        outside = any(p.outside for p in others)
        outside = outside or (callee_party is not None and callee_party.outside)
        return (Direction.OUTBOUND if outside else Direction.INTERNAL), caller, callee


def is_service(party: Party) -> bool:
    return not party.outside and party.agent is None
