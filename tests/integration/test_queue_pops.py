"""B6 end to end: a ring-all queue trace pops every rung agent, and the losers' pops are withdrawn.

The real `queue_answered` stream is replayed over TCP into the whole app
(adapter -> tracker -> bus -> CRM screen-pop -> agent hub), while the two
queue agents (extensions 2001 and 2002) hold open agent WebSockets.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from centralita.app import build_app
from config import Secret, Settings
from crm_core.auth.tokens import issue_token
from crm_core.db import Database, migrate
from crm_core.users import add_user
from pbx_bridge.asterisk.protocol import Message
from tests.integration.test_trace_replay_tcp import play
from tests.pbx_bridge.asterisk.test_tracker_pjsip import TRUNK, Pbx, queue_hop
from tests.pbx_bridge.asterisk.test_tracker_traces import NEW_SESSION

CALL_ID = "1795546639.26"


async def collect(ws: aiohttp.ClientWebSocketResponse, until: str,
                  call_id: str = CALL_ID) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        async for msg in ws:
            body = json.loads(msg.data)
            got.append(body)
            about = body.get("call_id") or body.get("call", {}).get("call_id")
            if body.get("type") == until and about == call_id:
                return got
    raise AssertionError(f"socket closed before {until}: {got}")


async def stage(
    aiohttp_client: Any, tmp_path: Path, agents: dict[str, str],
    frames: list[tuple[float, bytes]] | None = None,
) -> tuple[TestClient, dict[str, str], asyncio.Event, asyncio.Server]:
    """The whole app on SQLite, its Asterisk a TCP server that plays `queue_answered`'s
    session (or its login, then `frames`) once the returned event is set; `agents`
    (username -> extension) are users before it starts. Gives one API token per extension."""
    started = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await started.wait()
        await play("queue_answered", reader, writer, frames)
        await reader.read()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    await migrate(url)
    db = Database(url)
    tokens = {}
    for username, ext in agents.items():
        user = await add_user(db, username, "agent", "queue-pass-1", extension=ext)
        tokens[ext] = (await issue_token(db, user.id, "api", timedelta(hours=1))).token
    await db.close()
    settings = Settings(
        database_url=url, ami_host="127.0.0.1", ami_port=server.sockets[0].getsockname()[1],
        ami_secret=Secret("not-a-secret"),
    )
    client: TestClient = await aiohttp_client(build_app(settings))
    return client, tokens, started, server


async def test_ring_all_pops_each_agent_and_withdraws_the_loser(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client, tokens, started, server = await stage(
        aiohttp_client, tmp_path, {"rosa": "2001", "tomas": "2002"})
    sockets = {
        ext: await client.ws_connect(f"/ws/agent?token={token}&resume=0")
        for ext, token in tokens.items()
    }
    for ws in sockets.values():
        hello = json.loads((await ws.receive()).data)
        assert hello["type"] == "hello"
    started.set()
    winner = await collect(sockets["2001"], "call.ended")
    loser = await collect(sockets["2002"], "call.answered_elsewhere")
    for ws in sockets.values():
        await ws.close()
    server.close()

    def kinds(messages: list[dict[str, Any]]) -> list[str]:
        return [m["type"] for m in messages if m.get("type") not in ("presence", "pbx.online")]

    pops = {ext: [m for m in got if m["type"] == "screen_pop"]
            for ext, got in (("2001", winner), ("2002", loser))}
    for ext in ("2001", "2002"):
        [pop] = pops[ext]
        assert pop["call_id"] == CALL_ID
        assert pop["card"]["kind"] == "lead"  # the caller is unknown: a lead, shown to both
        assert pop["card"]["number"] == "+34912345678"
    assert pops["2001"][0]["card"]["id"] == pops["2002"][0]["card"]["id"]
    assert "call.answered" in kinds(winner)
    assert "call.answered_elsewhere" not in kinds(winner)
    assert kinds(loser)[-1] == "call.answered_elsewhere"


async def test_behind_a_freepbx_queue_hop_the_team_s_agent_answers(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """`Local/600@ext-queues` answers first and looks like an extension; the CRM's team
    (published on the bus as `team.changed`) tells the tracker that only 2001 is a person,
    so 2001's pop stays up and the call is logged as answered by 2001, not by "600"."""
    pbx = Pbx()
    # As Asterisk starts every session: FullyBooted first (it tells old channels from new).
    stream = [(0.0, NEW_SESSION), *queue_hop(pbx, "PJSIP/2001-0000000b")]
    frames = [(t, wire(m)) for t, m in stream]
    call_id = pbx.chans[TRUNK]["Linkedid"]
    client, tokens, started, server = await stage(aiohttp_client, tmp_path, {"rosa": "2001"},
                                                  frames)
    token = tokens["2001"]
    ws = await client.ws_connect(f"/ws/agent?token={token}&resume=0")
    assert json.loads((await ws.receive()).data)["type"] == "hello"
    started.set()
    got = await collect(ws, "call.ended", call_id)
    await ws.close()
    server.close()
    seen = [(m["type"], m.get("call", {}).get("agent")) for m in got
            if m["type"] in ("screen_pop", "call.answered", "call.answered_elsewhere")]
    assert seen == [("screen_pop", None), ("call.answered", "2001")]
    async with asyncio.timeout(10):  # the call log writes beside the hub, not before it
        while True:
            calls = await client.get("/api/calls", headers={"Authorization": f"Bearer {token}"})
            [logged] = (await calls.json())["items"]
            if logged["disposition"] is not None:
                break
            await asyncio.sleep(0.05)
    assert (logged["agent"], logged["disposition"]) == ("2001", "answered")


def wire(message: Message) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in message.headers) + b"\r\n"
