"""`/ws/agent` over a real socket: refusals before the upgrade, pops, resume, presence."""

from __future__ import annotations

import pytest
from aiohttp import WSServerHandshakeError

import web_widget
from kernel.events import (
    CallAnswered,
    CallHeld,
    CallInfo,
    CallResumed,
    CallRinging,
    CallState,
    Direction,
    PbxOffline,
    ScreenPop,
)
from tests.web_widget.support import (
    BUS,
    PARTNER_ORIGIN,
    RecordingPort,
    login,
    seed_users,
    until,
    widget_app,
)
from web_widget import HUB
from web_widget.hub import call_payload


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    app = widget_app(tmp_path / "w.db", RecordingPort())
    client = await aiohttp_client(app)
    await seed_users(app)
    return client


async def receive(ws) -> dict:
    return await ws.receive_json(timeout=5.0)


async def open_socket(client, token: str, **params):
    query = {"token": token, **{k: str(v) for k, v in params.items()}}
    ws = await client.ws_connect("/ws/agent", params=query)
    if "resume" not in params:
        await ws.send_json({"type": "hello", "last_seq": None})
    hello = await receive(ws)
    assert hello["type"] == "hello"
    return ws, hello


def ringing_call() -> CallInfo:
    return CallInfo("call-7", Direction.INBOUND, "+34911234567", "900", CallState.RINGING,
                    ringing=("1001", "1002"), started_at=100.0)


def up(call: CallInfo, state: CallState = CallState.UP) -> CallInfo:
    return CallInfo(call.call_id, call.direction, call.caller, call.callee, state, agent="1001",
                    ringing=call.ringing, started_at=100.0, answered_at=103.0)


async def test_no_credentials_is_refused_before_the_upgrade(client):
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/agent")
    assert refused.value.status == 401
    with pytest.raises(WSServerHandshakeError) as bad_token:
        await client.ws_connect("/ws/agent", params={"token": "not-a-token"})
    assert bad_token.value.status == 401


async def test_a_foreign_origin_is_refused_even_with_a_valid_token(client):
    token = await login(client, "ana")
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/agent", params={"token": token},
                                headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    ws = await client.ws_connect("/ws/agent", params={"token": token, "resume": "0"},
                                 headers={"Origin": PARTNER_ORIGIN})
    assert (await receive(ws))["type"] == "hello"
    await ws.close()


async def test_the_session_cookie_opens_the_socket_from_the_same_origin(client):
    await login(client, "ana", keep_cookie=True)
    origin = f"http://{client.host}:{client.port}"
    ws = await client.ws_connect("/ws/agent", params={"resume": "0"}, headers={"Origin": origin})
    hello = await receive(ws)
    assert (hello["type"], hello["agent"], hello["user"]) == ("hello", "1001", "ana")
    await ws.close()


async def test_a_screen_pop_on_the_bus_reaches_the_ringing_agent(client):
    token = await login(client, "ana")
    ws, _hello = await open_socket(client, token)
    resync = await receive(ws)
    assert resync["type"] == "resync" and resync["calls"] == []
    presence = await receive(ws)
    assert presence["type"] == "presence" and presence["agents"][0]["agent"] == "1001"
    card = {"name": "Ana García", "company": "Acme", "tags": ["VIP"]}
    await client.app[BUS].publish(ScreenPop(call_id="call-7", agents=("1001",), card=card))
    pop = await receive(ws)
    assert pop == {"seq": presence["seq"] + 1, "type": "screen_pop", "call_id": "call-7",
                   "card": card}
    await ws.close()


async def test_a_socket_lost_during_a_call_resumes_with_nothing_lost_or_repeated(client):
    """The 10-second loss of B9, with every message of it published while disconnected."""
    bus = client.app[BUS]
    token = await login(client, "ana")
    ws, hello = await open_socket(client, token)
    seen = [await receive(ws), await receive(ws)]  # resync, own presence
    call = ringing_call()
    await bus.publish(CallRinging(call=call))  # the CRM's screen-pop listener pops its card
    seen += [await receive(ws), await receive(ws)]
    assert [m["type"] for m in seen[-2:]] == ["call.ringing", "screen_pop"]
    await ws.close()
    await bus.publish(CallAnswered(call=up(call)))
    await bus.publish(CallHeld(call=up(call, CallState.HELD)))
    await bus.publish(CallResumed(call=up(call)))
    await bus.publish(PbxOffline(pbx="asterisk", reason="link lost"))
    await bus.drain()
    last = seen[-1]["seq"]
    again, _ = await open_socket(client, token, resume=last, epoch=hello["epoch"])
    missed = [await receive(again) for _ in range(4)]
    await bus.publish(CallHeld(call=up(call, CallState.HELD)))
    live = await receive(again)
    numbered = [m for m in [*seen, *missed, live] if "seq" in m and m["type"] != "resync"]
    assert [m["seq"] for m in numbered] == list(range(1, len(numbered) + 1))
    assert [(m["type"], m.get("call", {}).get("state")) for m in [*missed, live]] == [
        ("call.answered", "up"), ("call.held", "held"), ("call.resumed", "up"),
        ("pbx.offline", None), ("call.held", "held")]
    assert missed[0]["call"] == call_payload(up(call))
    await again.close()


async def test_a_resume_from_another_epoch_gets_a_resync_with_the_live_call(client):
    bus = client.app[BUS]
    token = await login(client, "ana")
    call = ringing_call()
    await bus.publish(CallRinging(call=call))
    hub = client.app[HUB]
    await until(lambda: hub.snapshot("1001")["calls"] and hub.snapshot("1001")["calls"][0]["card"])
    ws, _ = await open_socket(client, token, resume=40, epoch="old-server")
    resync = await receive(ws)
    assert resync["type"] == "resync"
    (live,) = resync["calls"]
    assert live["call"] == call_payload(call)
    assert (live["card"]["kind"], live["card"]["number"]) == ("lead", "+34911234567")
    await ws.close()


async def test_every_open_widget_gets_the_message_and_the_other_agent_is_withdrawn(client):
    bus = client.app[BUS]
    ana, luis = await login(client, "ana"), await login(client, "luis")
    tab1, _ = await open_socket(client, ana)
    tab2, _ = await open_socket(client, ana)
    other, _ = await open_socket(client, luis)
    call = ringing_call()
    await bus.publish(CallRinging(call=call))
    await bus.publish(CallAnswered(call=up(call)))

    async def types_until(ws, wanted: str) -> list[str]:
        """Call messages up to `wanted` (presence and the CRM's pop set aside)."""
        got: list[str] = []
        while not got or got[-1] != wanted:
            kind = (await receive(ws))["type"]
            if kind.startswith("call."):
                got.append(kind)
        return got

    for tab in (tab1, tab2):
        assert await types_until(tab, "call.answered") == ["call.ringing", "call.answered"]
    got = await types_until(other, "call.answered_elsewhere")
    assert got == ["call.ringing", "call.answered_elsewhere"]
    for ws in (tab1, tab2, other):
        await ws.close()


async def test_presence_set_in_one_widget_reaches_a_teammate_and_ping_gets_pong(client):
    ana, luis = await login(client, "ana"), await login(client, "luis")
    ws_ana, _ = await open_socket(client, ana)
    ws_luis, _ = await open_socket(client, luis)
    await ws_ana.send_json({"type": "presence", "status": "away"})
    ana_seen = None
    while ana_seen is None or ana_seen["status"] != "away":
        msg = await receive(ws_luis)
        if msg["type"] == "presence":
            ana_seen = {a["agent"]: a for a in msg["agents"]}.get("1001", ana_seen)
    assert ana_seen == {"agent": "1001", "name": "Ana Agente", "status": "away",
                        "lagged": False, "widgets": 1}
    await ws_ana.send_json({"type": "ping", "t": 5})
    while (reply := await receive(ws_ana))["type"] != "pong":
        pass
    assert reply == {"type": "pong", "t": 5}
    await ws_ana.close()
    await ws_luis.close()


async def test_in_call_commands_over_the_socket_follow_the_rest_rules(client):
    port = client.app[web_widget.PBX_PORT]
    call = up(ringing_call())
    await client.app[BUS].publish(CallAnswered(call=call))
    await client.app[BUS].drain()
    ana, luis = await login(client, "ana"), await login(client, "luis")
    ws_ana, _ = await open_socket(client, ana)
    ws_luis, _ = await open_socket(client, luis)

    async def result(ws, command: dict) -> dict:
        await ws.send_json(command)
        while (msg := await receive(ws))["type"] != "command.result":
            pass
        return msg

    held = await result(ws_ana, {"type": "call.hold", "call_id": "call-7", "ref": 1})
    assert held == {"type": "command.result", "ref": 1, "ok": True,
                    "result": {"call_id": "call-7", "action": "hold", "ok": True}}
    moved = await result(ws_ana, {"type": "call.transfer", "call_id": "call-7", "ref": 2,
                                  "to": "1002", "mode": "attended"})
    assert moved["result"] == {"call_id": "call-7", "action": "transfer", "ok": True,
                               "to": "1002", "mode": "attended"}
    refused = await result(ws_luis, {"type": "call.hangup", "call_id": "call-7", "ref": "x"})
    assert (refused["ok"], refused["error"]["code"]) == (False, "forbidden")
    unknown = await result(ws_ana, {"type": "call.explode", "call_id": "call-7", "ref": 3})
    assert (unknown["ok"], unknown["error"]["code"]) == (False, "not-found")
    assert port.requests == [("hold", "call-7"), ("transfer", "call-7", "1002", "attended")]
    await ws_ana.close()
    await ws_luis.close()
