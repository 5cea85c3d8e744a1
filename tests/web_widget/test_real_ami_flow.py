"""End to end on real AMI: the simulator over TCP -> the Asterisk adapter -> the CRM's
screen-pop -> the hub -> the agent's socket; and click-to-call back through the port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import pbx_bridge
from centralita.app import build_app
from config import Settings
from config.settings import Secret
from crm_core import DATABASE
from crm_core.users import add_user
from pbx_bridge.simulator import Simulator
from tests.web_widget.support import PASSWORD, login, seed_users, until

SECRET = "not-a-secret"


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with Simulator("centralita", SECRET, speed=40) as sim:
        await sim.start()
        yield sim


@pytest.fixture
async def client(aiohttp_client, tmp_path, simulator):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}",
                        ami_host=simulator.host, ami_port=simulator.port,
                        ami_secret=Secret(SECRET), dial_national=True)
    app = build_app(settings)
    client = await aiohttp_client(app)
    await seed_users(app)
    await until(lambda: app[pbx_bridge.PBX_PORT].online, within=10)
    return client


async def test_an_inbound_ami_call_pops_on_the_agents_socket_in_order(client, simulator):
    token = await login(client, "ana")
    ws = await client.ws_connect("/ws/agent", params={"token": token, "resume": "0"})
    # At speed 40 a 20 s ring lasts half a real second: less than one ring as an agent hears it.
    await simulator.inbound(caller="34912345678", extension="1001", answer_after=20, talk=8,
                            give_up_after=60)
    kinds: list[str] = []
    pop = None
    while "call.ended" not in kinds:
        msg = await ws.receive_json(timeout=10)
        if msg["type"] == "screen_pop":
            pop = msg
        if msg["type"].startswith("call.") or msg["type"] == "screen_pop":
            kinds.append(msg["type"])
    assert kinds[0] == "call.ringing"
    assert kinds.index("screen_pop") < kinds.index("call.answered") < kinds.index("call.ended")
    assert pop is not None and pop["card"]["number"] == "+34912345678"
    await ws.close()


async def test_click_to_call_reaches_asterisk_once_for_a_double_click(client, simulator):
    token = await login(client, "ana")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "dbl-1"}
    first = await client.post("/api/calls", json={"to": "600 111 222"}, headers=headers)
    second = await client.post("/api/calls", json={"to": "600 111 222"}, headers=headers)
    assert (first.status, second.status) == (202, 202)
    assert await first.json() == await second.json()
    originates = [a.message for a in simulator.received if a.name == "Originate"]
    assert len(originates) == 1


async def test_a_ring_all_queue_pops_on_both_agents_and_withdraws_the_loser(client, simulator):
    db = client.app[DATABASE]
    for username, ext in (("eva", "2001"), ("ivan", "2002")):
        await add_user(db, username, "agent", PASSWORD, extension=ext, name=username.title())
    sockets = {}
    for username, ext in (("eva", "2001"), ("ivan", "2002")):
        token = await login(client, username)
        sockets[ext] = await client.ws_connect("/ws/agent", params={"token": token, "resume": "0"})
    # 2001 picks up after 8 s of ringing (0.2 s here, at speed 40); 2002 lets it ring.
    simulator.set_agent_behaviour("2001", "answer", answer_after=8)
    simulator.set_agent_behaviour("2002", "noanswer")
    await simulator.queue_call(queue="ventas", talk=8)

    async def until_settled(ws) -> list[dict]:
        got: list[dict] = []
        while not got or got[-1]["type"] not in ("call.answered", "call.answered_elsewhere"):
            msg = await ws.receive_json(timeout=10)
            if msg["type"].startswith("call.") or msg["type"] == "screen_pop":
                got.append(msg)
        return got

    seen = {ext: await until_settled(ws) for ext, ws in sockets.items()}
    for got in seen.values():
        assert got[0]["type"] == "call.ringing"
        assert "screen_pop" in [m["type"] for m in got]
    endings = {ext: got[-1] for ext, got in seen.items()}
    assert endings["2001"]["type"] == "call.answered"
    assert {k: endings["2002"][k] for k in ("type", "answered_by")} == {
        "type": "call.answered_elsewhere", "answered_by": "2001"}
    for ws in sockets.values():
        await ws.close()
