"""The agent hub: every call, pop and presence change an agent must see, numbered and resumable.

Each agent (keyed by extension, since calls are routed by extension) has one
sequence of numbered messages and a bounded replay buffer. Every open widget
(socket) of that agent gets every message. A widget that reconnects says the
last `seq` it handled and gets exactly what it missed, in order; when that is
older than the buffer (or from before a restart: another `epoch`), it gets a
`resync` snapshot instead. Delivery into a socket's outbox is synchronous, so
a replay and the live stream can never interleave or repeat.

Messages are serialised once, when numbered, and buffered and queued as JSON
text: one encoding per agent rather than per socket, and strings are not
tracked by the garbage collector, so a thousand agents' replay buffers do not
lengthen its full collections (which pause every call in flight).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from kernel.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallInfo,
    CallRinging,
    CallTransferred,
    Event,
    PbxOffline,
    PbxOnline,
    ScreenPop,
)

log = logging.getLogger("centralita.hub")

Message = dict[str, Any]
PRESENCE_STATES = ("online", "offline", "busy", "away")
HUB_TOPICS = ("screen_pop", "call.*", "pbx.*")


def numbered(seq: int, body: str) -> str:
    """Put `"seq": n` first into an encoded message (never empty: it has a `type`)."""
    return f'{{"seq": {seq}, {body[1:]}'


class Outbox:
    """One socket's queue of JSON texts; the socket's writer task drains it.

    Bounded: a widget that stops reading is cut off (it will resume by seq)
    rather than letting the hub's memory grow.
    """

    def __init__(self, limit: int = 1000) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(limit)
        self.overflowed = False

    def put(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        """Wake the writer with the end marker, dropping queued messages if it must."""
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()


@dataclass
class AgentChannel:
    """One agent's numbered stream, open sockets, presence and heartbeat."""

    key: str
    name: str = ""
    role: str = "agent"
    seq: int = 0
    buffer: deque[str] = field(default_factory=deque)
    """The newest messages as JSON text; the last one is number `seq`."""
    sockets: set[Outbox] = field(default_factory=set)
    presence: str = "offline"
    chosen: str = "online"
    """What the agent last picked; a reconnect restores it (never flips "away" to "online")."""
    last_heartbeat: float = 0.0
    lagged: bool = False
    disconnected_at: float | None = None


def call_payload(call: CallInfo) -> dict[str, Any]:
    """The JSON shape of a call snapshot on the socket."""
    body = CallRinging(call=call).to_dict()["call"]
    body.pop("variables", None)
    return dict(body)


class AgentHub:
    """Routes bus events to agents' widgets by extension; see the module docstring."""

    def __init__(
        self,
        *,
        buffer_size: int = 500,
        heartbeat_s: float = 15.0,
        offline_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        presence_batch_s: float = 0.05,
    ) -> None:
        self.epoch = secrets.token_hex(6)
        self.buffer_size = buffer_size
        self.heartbeat_s = heartbeat_s
        self.offline_after_s = offline_after_s
        self._clock = clock
        self.presence_batch_s = presence_batch_s
        self._presence_changed: dict[str, None] = {}
        self._presence_flush: asyncio.TimerHandle | None = None
        self._channels: dict[str, AgentChannel] = {}
        self._calls: dict[str, CallInfo] = {}
        self._pops: dict[str, dict[str, dict[str, Any]]] = {}
        """call_id -> agent -> card: cards are per agent (a private client pops only for its
        owner), so a resync must give each agent its own."""
        self._involved: dict[str, set[str]] = {}
        self.pbx_online: dict[str, bool] = {}

    # -- agents and sockets -------------------------------------------------

    def channel(self, key: str) -> AgentChannel:
        chan = self._channels.get(key)
        if chan is None:
            chan = self._channels[key] = AgentChannel(key, buffer=deque(maxlen=self.buffer_size))
        return chan

    def attach(
        self,
        key: str,
        outbox: Outbox,
        *,
        last_seq: int | None = None,
        epoch: str | None = None,
        name: str = "",
        role: str = "agent",
    ) -> str:
        """Register a socket and queue what it missed; says "replay" or "resync".

        Synchronous on purpose: nothing can be published between the replay
        and the registration, so the socket sees each number exactly once.
        """
        chan = self.channel(key)
        chan.name, chan.role = name or chan.name or key, role
        missed = self._missed(chan, last_seq, epoch)
        if missed is None:
            outbox.put(json.dumps(self.snapshot(key)))
            mode = "resync"
        else:
            for message in missed:
                outbox.put(message)
            mode = "replay"
        chan.sockets.add(outbox)
        chan.last_heartbeat = self._clock()
        chan.disconnected_at = None
        if chan.presence != chan.chosen or chan.lagged:
            chan.lagged = False
            chan.presence = chan.chosen
            self._broadcast_presence(chan)
        return mode

    def detach(self, key: str, outbox: Outbox) -> None:
        chan = self._channels.get(key)
        if chan is None:
            return
        chan.sockets.discard(outbox)
        if not chan.sockets:
            chan.disconnected_at = self._clock()

    def _missed(
        self, chan: AgentChannel, last_seq: int | None, epoch: str | None
    ) -> list[str] | None:
        """The messages after `last_seq`, or None when only a resync can help."""
        if last_seq is None or (epoch is not None and epoch != self.epoch):
            return None
        missed = chan.seq - last_seq
        if missed < 0 or last_seq < 0 or missed > len(chan.buffer):
            return None
        return list(islice(chan.buffer, len(chan.buffer) - missed, None))

    def snapshot(self, key: str) -> Message:
        """What a widget needs to start over: its live calls and pops, the team, the PBX."""
        chan = self.channel(key)
        calls = [
            {"call": call_payload(call), "card": self._pops.get(call_id, {}).get(key)}
            for call_id, call in self._calls.items()
            if key in self._involved.get(call_id, ())
        ]
        return {
            "type": "resync",
            "seq": chan.seq,
            "epoch": self.epoch,
            "calls": calls,
            "team": self.team(),
            "pbx": dict(self.pbx_online),
        }

    def team(self) -> list[dict[str, Any]]:
        return [self._presence_body(c) for c in self._channels.values()]

    def send(self, key: str, message: Message) -> None:
        """Number a message into one agent's stream and hand it to every open widget."""
        self.send_many((key,), message)

    def send_many(self, keys: Iterable[str], message: Message) -> None:
        """`send` to each of `keys` (once each), encoding the message once for all."""
        body = json.dumps(message)
        for key in dict.fromkeys(keys):
            chan = self.channel(key)
            chan.seq += 1
            text = numbered(chan.seq, body)
            chan.buffer.append(text)
            for outbox in list(chan.sockets):
                outbox.put(text)

    # -- presence and heartbeats -------------------------------------------

    def set_presence(self, key: str, status: str) -> None:
        if status not in PRESENCE_STATES:
            raise ValueError(f"presence must be one of {', '.join(PRESENCE_STATES)}")
        chan = self.channel(key)
        chan.presence = chan.chosen = status
        self._broadcast_presence(chan)

    def heartbeat(self, key: str) -> None:
        chan = self.channel(key)
        chan.last_heartbeat = self._clock()
        if chan.lagged:
            chan.lagged = False
            self._broadcast_presence(chan)

    def check_heartbeats(self) -> list[str]:
        """Mark late agents `lagged` (never logged out); offline after a long absence.

        Returns the keys whose state changed, for logs and tests.
        """
        now = self._clock()
        changed = []
        for chan in self._channels.values():
            if chan.presence == "offline":
                continue
            gone = chan.disconnected_at
            if not chan.sockets and gone is not None and now - gone >= self.offline_after_s:
                chan.presence, chan.lagged = "offline", False
            elif not chan.lagged and now - chan.last_heartbeat > 2 * self.heartbeat_s:
                chan.lagged = True
            else:
                continue
            changed.append(chan.key)
            self._broadcast_presence(chan)
        return changed

    def _presence_body(self, chan: AgentChannel) -> dict[str, Any]:
        return {
            "agent": chan.key,
            "name": chan.name or chan.key,
            "status": chan.presence,
            "lagged": chan.lagged,
            "widgets": len(chan.sockets),
        }

    def _broadcast_presence(self, chan: AgentChannel) -> None:
        """Queue `chan`'s presence for the next batch.

        Each change goes to every agent, so sending them one by one makes a
        shift of n agents signing in cost n² messages; batched, a burst of
        sign-ins costs one message per agent per `presence_batch_s`.
        """
        self._presence_changed[chan.key] = None
        if self._presence_flush is None:
            loop = asyncio.get_running_loop()
            self._presence_flush = loop.call_later(self.presence_batch_s, self.flush_presence)

    def flush_presence(self) -> None:
        """Send the queued presence changes now, as one `presence` message to every agent."""
        if self._presence_flush is not None:
            self._presence_flush.cancel()
            self._presence_flush = None
        changed = [self._channels[key] for key in self._presence_changed]
        self._presence_changed.clear()
        if changed:
            body = {"type": "presence", "agents": [self._presence_body(c) for c in changed]}
            self.send_many(list(self._channels), body)

    # -- bus events ---------------------------------------------------------

    def live_call(self, call_id: str) -> CallInfo | None:
        return self._calls.get(call_id)

    def involved(self, call_id: str) -> frozenset[str]:
        return frozenset(self._involved.get(call_id, ()))

    async def on_event(self, event: Event) -> None:
        """The bus handler (topics `HUB_TOPICS`)."""
        if isinstance(event, ScreenPop):
            self._on_pop(event)
        elif isinstance(event, CallEvent):
            self._on_call(event)
        elif isinstance(event, PbxOffline | PbxOnline):
            self.pbx_online[event.pbx] = isinstance(event, PbxOnline)
            body = {"type": event.topic, "pbx": event.pbx}
            if isinstance(event, PbxOffline):
                body["reason"] = event.reason
            self.send_many(list(self._channels), body)

    def _on_pop(self, pop: ScreenPop) -> None:
        call = self._calls.get(pop.call_id)
        if call is not None and call.agent and call.state != "ringing":
            agents = [a for a in pop.agents if a == call.agent]
        else:
            agents = list(pop.agents)
        cards = self._pops.setdefault(pop.call_id, {})
        for agent in agents:
            cards[agent] = pop.card
        self._involved.setdefault(pop.call_id, set()).update(agents)
        self.send_many(agents, {"type": "screen_pop", "call_id": pop.call_id, "card": pop.card})

    def _on_call(self, event: CallEvent) -> None:
        call = event.call
        involved = self._involved.setdefault(call.call_id, set())
        body: Message = {"type": event.topic, "call": call_payload(call)}
        if isinstance(event, CallTransferred):
            body.update(mode=event.mode, target=event.target)
        if isinstance(event, CallRinging):
            involved.update(call.ringing)
            if call.agent:
                involved.add(call.agent)
            self._calls[call.call_id] = call
            self.send_many(sorted(involved), body)
        elif isinstance(event, CallAnswered) and call.agent:
            self._withdraw(call, involved)
            self._calls[call.call_id] = call
            self.send(call.agent, body)
        elif isinstance(event, CallEnded):
            self._calls.pop(call.call_id, None)
            self._pops.pop(call.call_id, None)
            targets = involved | ({call.agent} if call.agent else set())
            self._involved.pop(call.call_id, None)
            self.send_many(sorted(targets), body)
        else:
            self._calls[call.call_id] = call
            if isinstance(event, CallTransferred) and event.target:
                involved.add(event.target)
            if call.agent:
                involved.add(call.agent)
            self.send_many(sorted(involved), body)

    def _withdraw(self, call: CallInfo, involved: set[str]) -> None:
        """B6: one call, one pop set: the others' cards go when one agent answers."""
        others = sorted((involved | set(call.ringing)) - {call.agent or ""})
        withdrawn = {
            "type": "call.answered_elsewhere",
            "call_id": call.call_id,
            "answered_by": call.agent,
        }
        self.send_many([o for o in others if o], withdrawn)
        involved.clear()
        if call.agent:
            involved.add(call.agent)

    def agents(self) -> list[dict[str, Any]]:
        """Every known agent with presence and lag: what supervisors watch."""
        return self.team()
