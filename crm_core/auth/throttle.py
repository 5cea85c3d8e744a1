"""Login throttling: a few wrong passwords per username and address, then a pause.

Kept in memory per node: an attacker spreading guesses over several nodes
gains at most a factor of the node count, which argon2 already makes slow.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    """At most `limit` failures per (username, address) within `window_s` seconds."""

    def __init__(
        self, limit: int = 5, window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, username: str, address: str) -> int | None:
        """Seconds until this pair may try again, or None when it may try now."""
        key = (username.lower(), address)
        failures = self._recent(key)
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window_s - self.clock()))

    def failed(self, username: str, address: str) -> None:
        key = (username.lower(), address)
        self._recent(key).append(self.clock())

    record = failed
    """For rate limits that count every attempt, not only failures (web forms)."""

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop((username.lower(), address), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        if len(self._failures) > 100_000:  # a spray of usernames cannot grow memory forever
            self._failures = {k: v for k, v in self._failures.items() if v}
        failures = self._failures.setdefault(key, deque())
        horizon = self.clock() - self.window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures
