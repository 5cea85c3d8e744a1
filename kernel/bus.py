"""The event bus: async publish/subscribe with per-subscriber ordering.

Each subscriber gets its own bounded queue and worker task, so a slow
subscriber applies back-pressure to publishers (publish awaits room) instead of
growing memory without bound, and a failing one is logged and counted without
stopping the others. A Redis-backed bus implements the same `Bus` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from kernel.events import Event

log = logging.getLogger("centralita.bus")

Handler = Callable[[Event], Awaitable[None]]


class Bus(Protocol):
    def subscribe(self, name: str, handler: Handler, topics: Iterable[str]) -> None: ...

    async def publish(self, event: Event) -> None: ...

    async def drain(self) -> None: ...

    async def close(self) -> None: ...

    def stats(self) -> dict[str, dict[str, int]]:
        """Per subscriber: events queued, delivered, failed (for metrics and benches)."""
        ...


def topic_matches(pattern: str, topic: str) -> bool:
    """`*` matches all, `call.*` matches every `call.` topic, else exact."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return topic.startswith(pattern[:-1])
    return pattern == topic


@dataclass
class _Subscription:
    name: str
    handler: Handler
    topics: tuple[str, ...]
    queue: asyncio.Queue[Event]
    worker: asyncio.Task[None] | None = None
    failures: int = 0
    delivered: int = 0
    _matches: dict[str, bool] = field(default_factory=dict)

    def wants(self, topic: str) -> bool:
        hit = self._matches.get(topic)
        if hit is None:
            hit = any(topic_matches(p, topic) for p in self.topics)
            self._matches[topic] = hit
        return hit


class InProcessBus:
    """The single-node bus."""

    def __init__(self, queue_size: int = 10_000) -> None:
        self._queue_size = queue_size
        self._subs: list[_Subscription] = []
        self._closed = False

    def subscribe(self, name: str, handler: Handler, topics: Iterable[str]) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        sub = _Subscription(name, handler, tuple(topics), asyncio.Queue(self._queue_size))
        self._subs.append(sub)

    async def publish(self, event: Event) -> None:
        if self._closed:
            return
        for sub in self._subs:
            if sub.wants(event.topic):
                self._ensure_worker(sub)
                await sub.queue.put(event)

    async def drain(self) -> None:
        """Wait until every subscriber has handled every event published so far."""
        for sub in self._subs:
            await sub.queue.join()

    async def close(self) -> None:
        await self.drain()
        self._closed = True
        for sub in self._subs:
            if sub.worker is not None:
                sub.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sub.worker
                sub.worker = None

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            s.name: {"queued": s.queue.qsize(), "delivered": s.delivered, "failures": s.failures}
            for s in self._subs
        }

    def _ensure_worker(self, sub: _Subscription) -> None:
        if sub.worker is None or sub.worker.done():
            sub.worker = asyncio.get_running_loop().create_task(
                self._run(sub), name=f"bus:{sub.name}"
            )

    async def _run(self, sub: _Subscription) -> None:
        while True:
            event = await sub.queue.get()
            try:
                await sub.handler(event)
                sub.delivered += 1
            except Exception:
                sub.failures += 1
                log.exception("subscriber %s failed on %s", sub.name, event.topic)
            finally:
                sub.queue.task_done()
