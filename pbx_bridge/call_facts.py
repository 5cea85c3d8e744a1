"""What an adapter tells the call machine: parties and small facts about legs.

A leg is one party of a call (the caller's line, an agent's phone, a
transfer target). Adapters speak only these facts, so the Asterisk tracker and
a Twilio webhook handler feed the same `pbx_bridge.calls.CallMachine`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Q.850 causes that say why an unanswered leg failed (busy beats the rest).
CAUSE_BUSY = 17
CAUSE_NO_ANSWER = 19
FAILURE_CAUSES = frozenset({1, 3, 20, 21, 27, 28, 34, 38, 41, 42, 58, 88})


@dataclass(frozen=True, slots=True)
class Party:
    """Who is on a leg: one of our extensions (`agent`) or someone outside."""

    number: str
    agent: str | None = None
    outside: bool = True

    @classmethod
    def extension(cls, ext: str) -> Party:
        return cls(ext, ext, outside=False)

    @classmethod
    def service(cls, name: str) -> Party:
        """A queue or IVR: inside the PBX but nobody in particular."""
        return cls(name, None, outside=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LegAdded(Fact):
    """A leg exists (or we learnt more about its party): upsert."""

    leg: str
    party: Party
    origin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPlaced(Fact):
    """The origin leg started calling out (dial or queue).

    `by_pbx` says the origin leg was itself rung on our request (click-to-call
    rings the agent first, a dialer rings the customer first).
    """

    by_pbx: bool
    dialed: Party | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LegRinging(Fact):
    leg: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LegAnswered(Fact):
    leg: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LegHungUp(Fact):
    leg: str
    cause: int = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldChanged(Fact):
    held: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Transferred(Fact):
    mode: str
    target: Party


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueJoined(Fact):
    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueAbandoned(Fact):
    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingChanged(Fact):
    active: bool
    path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(Fact):
    digit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallGone(Fact):
    """The PBX no longer has any channel of this call (found on a resync)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableSet(Fact):
    """A call variable the product cares about (a campaign, a list entry)."""

    name: str
    value: str
