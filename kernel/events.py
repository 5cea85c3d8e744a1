"""PBX-neutral events: what happened to a call, to a link, to an agent.

Adapters (Asterisk, Twilio) publish these; the CRM, the hub, the dialer and
the speech pool consume them. Every event is a frozen dataclass with a
`topic`; `to_dict`/`from_dict` give the JSON shape a Redis bus carries
between nodes.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


class Direction(enum.StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"
    INTERNAL = "internal"


class CallState(enum.StrEnum):
    RINGING = "ringing"
    UP = "up"
    HELD = "held"
    TRANSFERRED = "transferred"
    ENDED = "ended"


class Disposition(enum.StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    FAILED = "failed"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class CallInfo:
    """A snapshot of one call as the PBX adapter sees it at one moment.

    `call_id` is stable for the whole call (Asterisk's Linkedid, Twilio's
    parent CallSid), so a consumer may upsert by it and stay idempotent.
    """

    call_id: str
    direction: Direction
    caller: str
    callee: str
    state: CallState
    agent: str | None = None
    started_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    disposition: Disposition | None = None
    ringing: tuple[str, ...] = ()
    queue: str | None = None
    recording: str | None = None
    pbx: str = "asterisk"
    variables: tuple[tuple[str, str], ...] = ()

    @property
    def duration_s(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.answered_at)


@dataclass(frozen=True, slots=True)
class Event:
    topic: ClassVar[str] = "event"
    at: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, **_plain(dataclasses.asdict(self))}


@dataclass(frozen=True, slots=True)
class CallEvent(Event):
    """Base of every call lifecycle event: it always carries the whole snapshot."""

    call: CallInfo


@dataclass(frozen=True, slots=True)
class CallRinging(CallEvent):
    topic: ClassVar[str] = "call.ringing"


@dataclass(frozen=True, slots=True)
class CallAnswered(CallEvent):
    topic: ClassVar[str] = "call.answered"


@dataclass(frozen=True, slots=True)
class CallHeld(CallEvent):
    topic: ClassVar[str] = "call.held"


@dataclass(frozen=True, slots=True)
class CallResumed(CallEvent):
    topic: ClassVar[str] = "call.resumed"


@dataclass(frozen=True, slots=True)
class CallTransferred(CallEvent):
    topic: ClassVar[str] = "call.transferred"
    mode: str = "blind"
    target: str = ""


@dataclass(frozen=True, slots=True)
class CallEnded(CallEvent):
    topic: ClassVar[str] = "call.ended"


@dataclass(frozen=True, slots=True)
class CallDtmf(CallEvent):
    topic: ClassVar[str] = "call.dtmf"
    digit: str = ""


@dataclass(frozen=True, slots=True)
class RecordingStarted(CallEvent):
    topic: ClassVar[str] = "recording.started"


@dataclass(frozen=True, slots=True)
class RecordingReady(CallEvent):
    topic: ClassVar[str] = "recording.ready"
    path: str = ""


@dataclass(frozen=True, slots=True)
class PbxOffline(Event):
    topic: ClassVar[str] = "pbx.offline"
    pbx: str = "asterisk"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PbxOnline(Event):
    topic: ClassVar[str] = "pbx.online"
    pbx: str = "asterisk"


@dataclass(frozen=True, slots=True)
class QueueMemberChanged(Event):
    """A queue member's availability changed (pacing needs free agents)."""

    topic: ClassVar[str] = "queue.member"
    queue: str = ""
    member: str = ""
    interface: str = ""
    paused: bool = False
    status: int = 0
    removed: bool = False


@dataclass(frozen=True, slots=True)
class OriginateResult(Event):
    """The outcome of an Originate: answered, no-answer, busy, congestion, failed."""

    topic: ClassVar[str] = "originate.result"
    action_id: str = ""
    outcome: str = ""
    channel: str = ""
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ScreenPop(Event):
    """A caller card for the agents a call is ringing (published by the CRM)."""

    topic: ClassVar[str] = "screen_pop"
    call_id: str = ""
    agents: tuple[str, ...] = ()
    card: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TeamChanged(Event):
    """The extensions that belong to people (the users'), published by the CRM (T12).

    A PBX adapter needs it to tell an agent from a queue or IVR behind the same
    kind of number (`Local/600@ext-queues` next to `Local/2001@from-queue`).
    """

    topic: ClassVar[str] = "team.changed"
    extensions: tuple[str, ...] = ()


E = TypeVar("E", bound=Event)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.topic: cls
    for cls in (
        CallRinging, CallAnswered, CallHeld, CallResumed, CallTransferred, CallEnded, CallDtmf,
        RecordingStarted, RecordingReady, PbxOffline, PbxOnline, QueueMemberChanged,
        OriginateResult, ScreenPop, TeamChanged,
    )
}


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from `Event.to_dict()` output (the Redis wire shape)."""
    payload = dict(data)
    cls = EVENT_TYPES[payload.pop("topic")]
    if "call" in payload:
        call = dict(payload["call"])
        call["direction"] = Direction(call["direction"])
        call["state"] = CallState(call["state"])
        if call.get("disposition") is not None:
            call["disposition"] = Disposition(call["disposition"])
        call["ringing"] = tuple(call.get("ringing", ()))
        call["variables"] = tuple(tuple(kv) for kv in call.get("variables", ()))
        payload["call"] = CallInfo(**call)
    for listed in ("agents", "extensions"):
        if listed in payload:
            payload[listed] = tuple(payload[listed])
    return cls(**payload)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
