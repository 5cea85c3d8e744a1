"""R1: the AMI link drops at 100 random moments during 1,000 calls; the call log stays exact.

The simulator (real AMI over TCP, 20x speed) carries a steady load of answered
and missed calls; a chaos task cuts the adapter's socket at random moments.
The production adapter reconnects, resynchronises from CoreShowChannels /
BridgeList / QueueStatus and goes on. Afterwards every call must be in the
log exactly once, with the disposition the simulator gave it.

A call that begins and ends entirely inside one reconnect gap cannot be seen
by any AMI client (Asterisk replays nothing), so every call here lives far
longer than a gap: the shortest lasts 250 ms against gaps of a few ms.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from config import Secret, Settings
from crm_core.calllog import CallLog
from crm_core.db import Database, migrate
from crm_core.models import Call
from kernel.bus import InProcessBus
from kernel.events import Direction
from pbx_bridge.asterisk.adapter import AsteriskAdapter
from pbx_bridge.simulator.server import Simulator

CALLS, DROPS, RATE, SPEED = 1_000, 100, 50.0, 20.0
KINDS = {"answered": "912000001", "missed": "912000002"}  # DIDs of the README's dialplan


async def place_calls(sim: Simulator, truth: dict[str, str]) -> None:
    rng = random.Random(1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index in range(CALLS):
        await asyncio.sleep(max(0.0, start + index / RATE - loop.time()))
        kind = rng.choice(("answered", "answered", "missed"))
        caller = f"3460{index:07d}"
        truth[f"+{caller}"] = kind
        await sim.inbound(caller=caller, did=KINDS[kind], talk=3.0, give_up_after=9.0)


async def cut_the_link(sim: Simulator, adapter: AsteriskAdapter, seconds: float) -> int:
    rng = random.Random(2)
    moments = sorted(rng.uniform(0.05, seconds) for _ in range(DROPS))
    loop = asyncio.get_running_loop()
    start, cuts = loop.time(), 0
    for moment in moments:
        await asyncio.sleep(max(0.0, start + moment - loop.time()))
        if not adapter.online:  # still reconnecting from the last cut: wait for it
            assert await adapter.link.wait_online(5)
        await sim.drop_clients()
        cuts += 1
    return cuts


async def test_a_thousand_calls_through_a_hundred_link_drops(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    await migrate(url)
    db = Database(url)
    sim = Simulator("centralita", "sim-secret", speed=SPEED)
    await sim.start()
    bus = InProcessBus()
    CallLog(db, region="ES", create_leads=(Direction.INBOUND,)).subscribe(bus)
    settings = Settings(ami_host=sim.host, ami_port=sim.port, ami_secret=Secret("sim-secret"))
    adapter = AsteriskAdapter(settings, bus, CollectorRegistry(),
                              backoff_initial=0.002, backoff_max=0.01, action_timeout=5.0)
    await adapter.start()
    assert await adapter.link.wait_online(5)
    truth: dict[str, str] = {}
    cuts = await asyncio.gather(
        place_calls(sim, truth), cut_the_link(sim, adapter, CALLS / RATE)
    )
    async with asyncio.timeout(60):
        await asyncio.gather(*sim.dialplan.tasks)  # every call flow has played out
    assert sim.live_channels() == []
    assert await adapter.link.wait_online(5)
    await adapter.close()  # flushes what the adapter still held for the bus
    await bus.drain()
    async with db.session() as session:
        rows = (await session.execute(
            select(Call.outside_number, Call.disposition, Call.direction, Call.agent)
        )).all()
    await bus.close()
    await db.close()
    await sim.close()

    assert cuts[1] == DROPS
    assert len(truth) == CALLS
    per_number = Counter(number for number, *_ in rows)
    assert [n for n, count in per_number.items() if count != 1] == []
    assert set(per_number) == set(truth)
    wrong = {
        number: (disposition, truth[str(number)])
        for number, disposition, _direction, _agent in rows
        if disposition != truth[str(number)]
    }
    assert wrong == {}
    assert {(d, a) for _n, disp, d, a in rows if disp == "answered"} == {("in", "1001")}
