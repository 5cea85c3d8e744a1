"""The screen-pop bench measures what it says: the simulator's DialBegin to an agent
leg is stamped under the Linkedid that comes back as the pop's call_id, each call
pops only on the agent it rang, and the bare relay answers with the caller's contact."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _popbench.fleet import Fleet, place_calls, stamp_dial_begins
from _popbench.relay import Relay

from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.simulator import Simulator

USER, SECRET = "centralita", "bench-test"
KNOWN = "34612345678"


@pytest.fixture
async def relay_and_sim(tmp_path: Path) -> AsyncIterator[tuple[Relay, Simulator]]:
    db = tmp_path / "phones.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE phones (number TEXT PRIMARY KEY, contact_id INT, lead_id INT)")
    conn.execute("INSERT INTO phones VALUES (?, 7, NULL)", (f"+{KNOWN}",))
    conn.commit()
    conn.close()
    async with Simulator(USER, SECRET, speed=20) as sim:
        await sim.start()
        relay = Relay(db)
        await relay.start((sim.host, sim.port), USER, SECRET)
        yield relay, sim
        await relay.close()


async def test_each_call_pops_once_on_the_agent_it_rang_keyed_by_the_stamped_linkedid(
    relay_and_sim: tuple[Relay, Simulator],
) -> None:
    relay, sim = relay_and_sim
    sent: dict[str, float] = {}
    stamp_dial_begins(sim, sent)
    urls = {ext: f"ws://127.0.0.1:{relay.port}/ws?ext={ext}" for ext in ("1001", "1002")}
    fleet = Fleet(urls, origin=f"http://127.0.0.1:{relay.port}", hello=False)
    await fleet.connect()
    rung: dict[str, str] = {}
    original = sim.pbx.emit_message

    def note_agent(message: Message) -> None:
        original(message)
        if message.get("Event") == "DialBegin" and message.get("DestContext") == "agent-answer":
            rung[message.get("DestLinkedid")] = message.get("DestExten")

    sim.pbx.emit_message = note_agent
    placed = await place_calls(sim, 20.0, 0.2, list(urls), lambda n: KNOWN)
    await fleet.await_pops(list(sent), within_s=10)
    await fleet.close()
    assert placed == 4
    assert sorted(rung.values()) == ["1001", "1001", "1002", "1002"]
    assert set(fleet.pops) == set(sent)
    assert fleet.popped_on == rung
    assert all(fleet.pops[c] >= sent[c] for c in sent)
    assert (fleet.duplicates, fleet.closed_early, dict(fleet.kinds)) == (0, [], {"bare": 4})
