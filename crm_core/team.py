"""Who answers on which extension: the active users that have one (T12).

The screen-pop needs the user behind each rung extension. The PBX adapter
needs the list itself: behind the same kind of number may be a person
(`Local/2001@from-queue`) or a queue (`Local/600@ext-queues`), and only the
team knows which. So `watch` rereads the map from the users table every
`TTL_S` (an admin's edit, or one the CLI made from another process, shows
within that), sooner when a call rings an extension it lacks, and each time
its extensions change they go on the bus as `team.changed`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import User
from kernel.bus import Bus
from kernel.events import TeamChanged

log = logging.getLogger("centralita.team")


@dataclass(frozen=True, slots=True)
class Agent:
    """A user as the phone sees them: a `Viewer` for the cards they may be shown."""

    user_id: int
    role: str
    extension: str


class Team:
    TTL_S = 10.0
    MISS_RETRY_S = 1.0  # a ring for an unknown extension rereads at most this often

    def __init__(self, db: Database, bus: Bus) -> None:
        self._db, self._bus = db, bus
        self._by_extension: dict[str, Agent] = {}
        self._loaded = -1e9
        self._absent: set[str] = set()
        self._published: frozenset[str] | None = None

    async def agents(self, extensions: Iterable[str]) -> list[Agent]:
        """The users behind `extensions` (unknown ones left out).

        The map is as fresh as `watch` keeps it; an extension it lacks is looked
        for at once (its user may be a minute old), and one that was still
        missing then, at most every `MISS_RETRY_S`.
        """
        wanted = list(extensions)
        missing = {ext for ext in wanted if ext not in self._by_extension}
        retry = time.monotonic() - self._loaded > self.MISS_RETRY_S
        if missing - self._absent or (missing and retry):
            await self.refresh()
            self._absent = missing - self._by_extension.keys()
        return [self._by_extension[ext] for ext in wanted if ext in self._by_extension]

    async def refresh(self) -> None:
        """Reread the map; say `team.changed` when the set of extensions is new."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(User.id, User.role, User.extension)
                .where(User.extension.is_not(None), User.active.is_(True))
            )
            self._by_extension = {ext: Agent(uid, role, ext) for uid, role, ext in rows if ext}
        self._loaded = time.monotonic()
        extensions = frozenset(self._by_extension)
        if extensions != self._published:
            self._published = extensions
            await self._bus.publish(TeamChanged(extensions=tuple(sorted(extensions))))

    async def watch(self) -> None:
        """Refresh every `TTL_S`, so the PBX adapter hears of edits with no call."""
        while True:
            await asyncio.sleep(self.TTL_S)
            try:
                await self.refresh()
            except Exception:  # a database that is down for a while must not end the watch
                log.warning("could not read the team's extensions", exc_info=True)
