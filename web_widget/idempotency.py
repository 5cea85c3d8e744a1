"""Idempotency-Key for commands that ring phones (B5): a double click never dials twice.

The first request with a key runs; every later or concurrent request with the
same key from the same user gets the first answer, for `ttl_s`. Concurrent
duplicates wait on the first one's future instead of racing it. Answers that
mean "try again" (5xx) are forgotten so a retry can go through. In memory:
one node holds the PBX link and the click-to-call traffic that goes with it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kernel.errors import Conflict, ValidationFailed

MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


@dataclass
class _Entry:
    fingerprint: str
    created: float
    future: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class IdempotencyStore:
    def __init__(
        self,
        ttl_s: float = 24 * 3600,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[int, str], _Entry] = OrderedDict()
        self.waiting = 0
        """Duplicates now waiting on a first request still in flight."""

    async def run(
        self, user_id: int, key: str, fingerprint: str, action: Callable[[], Awaitable[Answer]]
    ) -> tuple[Answer, bool]:
        """The answer for this key, and whether it was replayed rather than run now."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValidationFailed(
                "Idempotency-Key must be 1-200 characters", field="Idempotency-Key"
            )
        self._expire()
        slot = (user_id, key)
        entry = self._entries.get(slot)
        if entry is not None:
            if entry.fingerprint != fingerprint:
                raise Conflict(
                    "this Idempotency-Key was used for a different request",
                    field="Idempotency-Key",
                )
            self.waiting += 1
            try:
                return await asyncio.shield(entry.future), True
            finally:
                self.waiting -= 1
        entry = self._entries[slot] = _Entry(fingerprint, self._clock())
        try:
            answer = await action()
        except BaseException as err:
            self._entries.pop(slot, None)
            entry.future.set_exception(err)
            entry.future.exception()  # waiters re-raise it; mark it retrieved
            raise
        if answer.status >= 500:
            self._entries.pop(slot, None)
        entry.future.set_result(answer)
        return answer, False

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            slot, entry = next(iter(self._entries.items()))
            if now - entry.created < self.ttl_s and len(self._entries) < self.max_entries:
                break
            if not entry.future.done():
                break
            del self._entries[slot]

    def __len__(self) -> int:
        return len(self._entries)
