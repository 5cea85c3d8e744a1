"""The team: extension -> user for the screen-pop, and `team.changed` for the PBX adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crm_core.db import Database, migrate
from crm_core.team import Agent, Team
from crm_core.users import add_user, deactivate_user, update_user
from kernel.bus import InProcessBus
from kernel.events import Event, TeamChanged


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.close()


class Heard:
    """What the bus says on `team.changed`."""

    def __init__(self, bus: InProcessBus) -> None:
        self.bus = bus
        self.lists: list[tuple[str, ...]] = []
        self.arrived = asyncio.Event()
        bus.subscribe("test", self.on, [TeamChanged.topic])

    async def on(self, event: Event) -> None:
        assert isinstance(event, TeamChanged)
        self.lists.append(event.extensions)
        self.arrived.set()

    async def until(self, extensions: tuple[str, ...]) -> None:
        while extensions not in self.lists:
            self.arrived.clear()
            await self.arrived.wait()

    async def since_last(self) -> list[tuple[str, ...]]:
        await self.bus.drain()
        out, self.lists = self.lists, []
        return out


async def test_each_change_of_the_extensions_is_said_once(db: Database) -> None:
    bus = InProcessBus()
    heard, team = Heard(bus), Team(db, bus)
    ana = await add_user(db, "ana", "agent", "team-pass-1", extension="1001")
    await add_user(db, "sara", "supervisor", "team-pass-1", extension="20015550")
    await add_user(db, "admin", "admin", "team-pass-1")  # no extension: not on the phone
    await team.refresh()
    assert await heard.since_last() == [("1001", "20015550")]
    await team.refresh()
    assert await heard.since_last() == []  # nothing changed: nothing said
    await update_user(db, ana.id, {"extension": "1009"})
    await team.refresh()
    assert await heard.since_last() == [("1009", "20015550")]
    await deactivate_user(db, ana.id)
    await team.refresh()
    assert await heard.since_last() == [("20015550",)]
    await bus.close()


async def test_a_ring_for_an_extension_it_lacks_rereads_at_once_then_rarely(
    db: Database
) -> None:
    bus = InProcessBus()
    team = Team(db, bus)
    await team.refresh()  # at start-up: nobody yet
    ana = await add_user(db, "ana", "agent", "team-pass-1", extension="1001")
    assert await team.agents(["1001", "1050"]) == [Agent(ana.id, "agent", "1001")]
    luis = await add_user(db, "luis", "agent", "team-pass-1", extension="1050")
    # 1050 was missing a moment ago: not looked for again within MISS_RETRY_S ...
    assert await team.agents(["1050"]) == []
    team.MISS_RETRY_S = 0.01
    await asyncio.sleep(0.02)
    # ... and found after it.
    assert await team.agents(["1050", "1001"]) == [Agent(luis.id, "agent", "1050"),
                                                  Agent(ana.id, "agent", "1001")]
    await bus.close()


async def test_the_watch_keeps_going_while_the_database_is_unreachable(tmp_path: Path) -> None:
    bus = InProcessBus()
    heard = Heard(bus)
    folder = tmp_path / "not-yet"
    url = f"sqlite+aiosqlite:///{folder / 'c.db'}"
    db = Database(url)
    team = Team(db, bus)
    team.TTL_S = 0.01
    watch = asyncio.create_task(team.watch())
    await asyncio.sleep(0.05)
    assert not watch.done()  # each failed read is logged; the loop lives on
    folder.mkdir()
    await migrate(url)
    await add_user(db, "ana", "agent", "team-pass-1", extension="1001")
    async with asyncio.timeout(5):  # (an empty team may be heard first, between the two)
        await heard.until(("1001",))
    watch.cancel()
    await db.close()
    await bus.close()
