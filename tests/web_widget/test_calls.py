"""Call-control routes: Idempotency-Key, ownership of calls, validation, the PBX port."""

from __future__ import annotations

import asyncio

import pytest

from crm_core import DATABASE
from crm_core.calllog import CallLog
from crm_core.openapi import build_document
from kernel.errors import ValidationFailed
from kernel.events import CallAnswered, CallInfo, CallState, Direction
from tests.web_widget.support import BUS, RecordingPort, login, seed_users, until, widget_app
from web_widget.calls import IDEMPOTENCY
from web_widget.control import dial_string


@pytest.fixture
async def port():
    return RecordingPort()


@pytest.fixture
async def client(aiohttp_client, tmp_path, port):
    app = widget_app(tmp_path / "w.db", port)
    client = await aiohttp_client(app)
    await seed_users(app)
    return client


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def test_two_concurrent_clicks_with_one_key_originate_once(client, port):
    token = await login(client, "ana")
    port.gate = asyncio.Event()
    headers = bearer(token, **{"Idempotency-Key": "click-1"})
    first = asyncio.create_task(client.post("/api/calls", json={"to": "911 23 45 67"},
                                            headers=headers))
    second = asyncio.create_task(client.post("/api/calls", json={"to": "+34 911234567"},
                                             headers=headers))
    store = client.app[IDEMPOTENCY]
    await until(lambda: len(port.requests) == 1 and store.waiting == 1)
    port.gate.set()
    answers = [await first, await second]
    bodies = [await a.json() for a in answers]
    assert port.requests == [("originate", "+34911234567", "1001")]
    assert [a.status for a in answers] == [202, 202]
    assert bodies[0] == bodies[1] == {"status": "dialing", "to": "+34911234567", "agent": "1001",
                                      "action_id": "orig-1"}
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    again = await client.post("/api/calls", json={"to": "+34911234567"}, headers=headers)
    assert (again.status, await again.json()) == (202, bodies[0])
    assert len(port.requests) == 1


async def test_a_key_is_per_user_and_bound_to_its_request(client, port):
    ana, luis = await login(client, "ana"), await login(client, "luis")
    key = {"Idempotency-Key": "same-key"}
    a = await client.post("/api/calls", json={"to": "+34911234567"}, headers=bearer(ana, **key))
    b = await client.post("/api/calls", json={"to": "+34911234567"}, headers=bearer(luis, **key))
    assert (a.status, b.status) == (202, 202)
    other = await client.post("/api/calls", json={"to": "+34933112233"}, headers=bearer(ana, **key))
    assert other.status == 409
    assert (await other.json())["error"]["field"] == "Idempotency-Key"
    assert port.requests == [("originate", "+34911234567", "1001"),
                             ("originate", "+34911234567", "1002")]


async def test_an_agent_dials_from_their_own_extension_only(client, port):
    ana, sara = await login(client, "ana"), await login(client, "sara")
    refused = await client.post("/api/calls", json={"to": "+34911234567", "agent": "1002"},
                                headers=bearer(ana))
    assert refused.status == 403
    ok = await client.post("/api/calls", json={"to": "+34911234567", "agent": "1002"},
                           headers=bearer(sara))
    assert ok.status == 202
    bad = await client.post("/api/calls", json={"to": "hola"}, headers=bearer(ana))
    assert (bad.status, (await bad.json())["error"]["field"]) == (422, "to")
    anonymous = await client.post("/api/calls", json={"to": "+34911234567"})
    assert anonymous.status == 401
    assert port.requests == [("originate", "+34911234567", "1002")]


async def test_a_cookie_post_needs_the_csrf_header(client, port):
    resp = await client.post("/api/auth/login", json={"username": "ana",
                                                      "password": "correct horse battery"})
    csrf = (await resp.json())["csrf_token"]
    refused = await client.post("/api/calls", json={"to": "1002"})
    assert refused.status == 403
    ok = await client.post("/api/calls", json={"to": "1002"}, headers={"X-CSRF-Token": csrf})
    assert ok.status == 202
    assert port.requests == [("originate", "1002", "1001")]


async def test_pbx_down_is_a_503_and_the_key_can_be_retried(client, port):
    token = await login(client, "ana")
    port.online = False
    headers = bearer(token, **{"Idempotency-Key": "k-down"})
    down = await client.post("/api/calls", json={"to": "+34911234567"}, headers=headers)
    assert (down.status, (await down.json())["error"]["code"]) == (503, "pbx-unavailable")
    port.online = True
    up = await client.post("/api/calls", json={"to": "+34911234567"}, headers=headers)
    assert up.status == 202
    assert port.requests == [("originate", "+34911234567", "1001")]


async def answered_call(client, agent: str = "1001") -> CallInfo:
    call = CallInfo("call-9", Direction.INBOUND, "+34911234567", "900", CallState.UP,
                    agent=agent, ringing=("1001", "1002"), answered_at=1.0)
    await client.app[BUS].publish(CallAnswered(call=call))
    await client.app[BUS].drain()
    return call


async def test_in_call_buttons_reach_the_port_for_the_answering_agent(client, port):
    await answered_call(client)
    token = await login(client, "ana")
    h = bearer(token)
    results = [
        await client.post("/api/calls/call-9/hold", headers=h),
        await client.post("/api/calls/call-9/resume", headers=h),
        await client.post("/api/calls/call-9/mute", headers=h),
        await client.post("/api/calls/call-9/unmute", headers=h),
        await client.post("/api/calls/call-9/dtmf", json={"digits": "12#"}, headers=h),
        await client.post("/api/calls/call-9/transfer", json={"to": "1002", "mode": "attended"},
                          headers=h),
        await client.post("/api/calls/call-9/hangup", headers=h),
    ]
    assert [r.status for r in results] == [200] * 7
    assert await results[5].json() == {"call_id": "call-9", "action": "transfer", "ok": True,
                                       "to": "1002", "mode": "attended"}
    assert port.requests == [
        ("hold", "call-9"), ("resume", "call-9"), ("mute", "call-9", True),
        ("mute", "call-9", False), ("dtmf", "call-9", "12#"),
        ("transfer", "call-9", "1002", "attended"), ("hangup", "call-9"),
    ]


async def test_another_agents_call_is_refused_and_a_supervisor_may_act(client, port):
    await answered_call(client, agent="1001")
    luis, sara = await login(client, "luis"), await login(client, "sara")
    refused = await client.post("/api/calls/call-9/hangup", headers=bearer(luis))
    assert refused.status == 403
    missing = await client.post("/api/calls/nope/hangup", headers=bearer(sara))
    assert missing.status == 404
    ok = await client.post("/api/calls/call-9/hangup", headers=bearer(sara))
    assert ok.status == 200
    bad = await client.post("/api/calls/call-9/dtmf", json={"digits": "12x"}, headers=bearer(sara))
    assert (bad.status, (await bad.json())["error"]["field"]) == (422, "digits")
    mode = await client.post("/api/calls/call-9/transfer", json={"to": "1002", "mode": "x"},
                             headers=bearer(sara))
    assert mode.status == 422
    assert port.requests == [("hangup", "call-9")]


def test_dial_strings_extensions_e164_and_the_national_option():
    national = {"region": "ES", "national": True}
    assert dial_string("1002", national) == "1002"
    assert dial_string("0034 912-345-678", national) == "+34912345678"
    assert dial_string("(912) 345 678", national) == "+34912345678"
    assert dial_string("+44 20 7946 0958", national) == "+442079460958"
    strict = {"region": "ES", "national": False}
    assert dial_string("1002", strict) == "1002"
    assert dial_string("+34 912 345 678", strict) == "+34912345678"
    assert dial_string("0044 20 7946 0958", strict) == "+442079460958"
    with pytest.raises(ValidationFailed) as refused:
        dial_string("912 345 678", strict)
    assert (refused.value.field, "country prefix" in refused.value.message) == ("to", True)


async def test_a_note_during_a_call_lands_on_the_callers_timeline(client):
    db = client.app[DATABASE]
    log = CallLog(db, region="ES", create_leads=(Direction.INBOUND,))
    call = CallInfo("call-n", Direction.INBOUND, "+34911234567", "900", CallState.UP,
                    agent="1001", ringing=("1001",), started_at=1.0, answered_at=2.0)
    await log.on_call_event(CallAnswered(call=call))
    token = await login(client, "ana")
    resp = await client.post("/api/calls/call-n/notes", json={"text": "  Quiere presupuesto "},
                             headers=bearer(token))
    assert resp.status == 201, await resp.text()
    note = await resp.json()
    assert (note["call_id"], note["text"], note["lead_id"] is not None) == (
        "call-n", "Quiere presupuesto", True)
    timeline = await client.get(f"/api/leads/{note['lead_id']}/timeline", headers=bearer(token))
    notes = [item["note"] for item in (await timeline.json())["items"] if item["type"] == "note"]
    assert notes == [note]
    empty = await client.post("/api/calls/call-n/notes", json={"text": " "}, headers=bearer(token))
    assert (empty.status, (await empty.json())["error"]["field"]) == (422, "text")
    unknown = await client.post("/api/calls/nope/notes", json={"text": "x"}, headers=bearer(token))
    assert unknown.status == 404


async def test_the_widget_routes_are_in_the_api_document_with_their_roles(client):
    paths = build_document(client.app)["paths"]
    verbs = ("hangup", "hold", "resume", "mute", "unmute", "dtmf", "transfer", "notes")
    for path in ["/api/calls", *(f"/api/calls/{{call_id}}/{v}" for v in verbs)]:
        assert paths[path]["post"]["x-roles"] == ["admin", "agent", "supervisor"], path
    assert paths["/api/calls"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "required"] == ["to"]
    assert paths["/api/widget/agents"]["get"]["x-roles"] == ["admin", "supervisor"]
    assert "/ws/agent" not in paths
