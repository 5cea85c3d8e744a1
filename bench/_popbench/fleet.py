"""The driver's side: the simulator's clock on each agent-leg DialBegin, and 1,000
agent widgets (the `websockets` library) noting when each pop arrives.

Both ends stamp `time.time()` in the same process, so the difference is the
whole path: the frame leaving the simulator -> the server -> the pop read by a widget.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.simulator import Simulator

AGENT_CONTEXT = "agent-answer"
PING_EVERY_S = 10.0  # under the hub's 15 s heartbeat: no agent turns "lagged" mid-run
CONNECT_BATCH = 25


def stamp_dial_begins(sim: Simulator, sent: dict[str, float]) -> None:
    """Note when the DialBegin that rings an agent has been written to every AMI client.

    Wraps the simulator's emit from outside (its code is not ours to change).
    """
    emit = sim.pbx.emit_message

    def stamped(message: Message) -> None:
        emit(message)
        if message.get("Event") == "DialBegin" and message.get("DestContext") == AGENT_CONTEXT:
            sent.setdefault(message.get("DestLinkedid"), time.time())

    sim.pbx.emit_message = stamped


@dataclass
class Fleet:
    """Every agent's widget: one socket each, its pops as (call_id, arrival time)."""

    urls: dict[str, str]  # extension -> ws:// URL with its credentials
    origin: str
    hello: bool  # the product's socket waits for a first `hello`; the relay does not
    pops: dict[str, float] = field(default_factory=dict)
    popped_on: dict[str, str] = field(default_factory=dict)  # call_id -> extension
    duplicates: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # card kinds: contact, lead, unknown
    closed_early: list[str] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _frame: asyncio.Event = field(default_factory=asyncio.Event)
    _pop: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self) -> None:
        """Open every socket, a batch at a time (each batch is a burst of presence to all)."""
        extensions = list(self.urls)
        for start in range(0, len(extensions), CONNECT_BATCH):
            opened = [asyncio.get_running_loop().create_future()
                      for _ in extensions[start:start + CONNECT_BATCH]]
            for ext, ready in zip(extensions[start:start + CONNECT_BATCH], opened, strict=True):
                self._tasks.append(asyncio.create_task(self._agent(ext, ready)))
            await asyncio.wait_for(asyncio.gather(*opened), 60)
        await self.quiet()

    async def quiet(self, for_s: float = 1.0, within_s: float = 120.0) -> None:
        """Wait until no frame has arrived for `for_s` (the presence fan-out is over)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            self._frame.clear()
            try:
                await asyncio.wait_for(self._frame.wait(), for_s)
            except TimeoutError:
                return

    async def await_pops(self, call_ids: list[str], within_s: float) -> None:
        """Wait until every call has popped, or `within_s` is over (the rest are late)."""
        deadline = time.monotonic() + within_s
        while any(c not in self.pops for c in call_ids):
            self._pop.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pop.wait(), left)

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _agent(self, ext: str, ready: asyncio.Future[None]) -> None:
        async with connect(self.urls[ext], origin=Origin(self.origin), max_size=None,
                           ping_interval=None, max_queue=None) as ws:
            if self.hello:
                await ws.send('{"type": "hello"}')
            ready.set_result(None)
            pinger = asyncio.create_task(self._ping(ws))
            try:
                await self._read(ws, ext)
            finally:
                pinger.cancel()
        if not self._stop.is_set():
            self.closed_early.append(ext)

    async def _read(self, ws: ClientConnection, ext: str) -> None:
        async for raw in ws:
            arrived = time.time()
            if isinstance(raw, str) and raw.startswith('{"type": "pong"'):
                continue  # our own pings' answers: not the hub talking (see `quiet`)
            self._frame.set()
            if '"screen_pop"' not in raw:
                continue
            pop = json.loads(raw)
            if pop.get("type") != "screen_pop":
                continue
            if pop["call_id"] in self.pops:
                self.duplicates += 1
            else:
                self.pops[pop["call_id"]] = arrived
                self.popped_on[pop["call_id"]] = ext
                self._pop.set()
                self.kinds[str(pop["card"].get("kind", "bare"))] += 1

    async def _ping(self, ws: ClientConnection) -> None:
        if not self.hello:
            return
        while True:
            await asyncio.sleep(PING_EVERY_S)
            await ws.send('{"type": "ping"}')


async def place_calls(
    sim: Simulator, rate: float, seconds: float, extensions: list[str],
    caller_for: Callable[[int], str], offset: int = 0,
) -> int:
    """Inbound calls at a steady rate, round-robin over the agents; returns how many."""
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    started = loop.time()
    calls: set[asyncio.Task[object]] = set()
    for index in range(total):
        await asyncio.sleep(max(0.0, started + index / rate - loop.time()))
        n = offset + index
        task = loop.create_task(sim.inbound(
            caller=caller_for(n), extension=extensions[n % len(extensions)],
            answer_after=1.0, talk=1.0, give_up_after=30.0))
        calls.add(task)
        task.add_done_callback(calls.discard)
    if calls:
        await asyncio.gather(*calls)
    return total
