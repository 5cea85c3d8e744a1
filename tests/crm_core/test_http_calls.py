"""The call log over HTTP: who sees which calls, and the filters of API.md."""

from __future__ import annotations

import pytest

from crm_core.calllog import CallLog
from kernel.events import CallInfo, CallState, Direction, Disposition
from tests.crm_core.test_http_support import Crm, start_crm

T0 = 1_790_000_000.0


@pytest.fixture
async def crm(aiohttp_client, database_url: str) -> Crm:
    crm = await start_crm(aiohttp_client, database_url)
    log = CallLog(crm.db, region="ES")
    calls = [
        CallInfo("c-ana", Direction.INBOUND, "+34600111222", "1001", CallState.ENDED,
                 agent="1001", started_at=T0, answered_at=T0 + 5, ended_at=T0 + 65,
                 disposition=Disposition.ANSWERED),
        CallInfo("c-bruno", Direction.INBOUND, "+34600333444", "1002", CallState.ENDED,
                 agent="1002", started_at=T0 + 100, ended_at=T0 + 120,
                 disposition=Disposition.MISSED),
        CallInfo("c-sara", Direction.OUTBOUND, "1003", "+34600555666", CallState.ENDED,
                 agent="1003", started_at=T0 + 200, answered_at=T0 + 210, ended_at=T0 + 230,
                 disposition=Disposition.ANSWERED),
    ]
    for info in calls:
        await log.record(info, at=info.ended_at or info.started_at)
    return crm


async def ids(crm: Crm, who: str, query: str = "") -> list[str]:
    resp = await crm.client.get(f"/api/calls?{query}", headers=crm.bearer(who))
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    assert page["next"] is None
    return [call["id"] for call in page["items"]]


async def test_agents_see_their_calls_supervisors_and_admins_all(crm: Crm) -> None:
    assert await ids(crm, "ana") == ["c-ana"]
    assert await ids(crm, "bruno") == ["c-bruno"]
    assert await ids(crm, "sara") == ["c-sara", "c-bruno", "c-ana"]
    assert await ids(crm, "root") == ["c-sara", "c-bruno", "c-ana"]
    resp = await crm.client.get("/api/calls/c-bruno", headers=crm.bearer("ana"))
    assert resp.status == 404
    resp = await crm.client.get("/api/calls/c-ana", headers=crm.bearer("ana"))
    call = await resp.json()
    assert resp.status == 200
    assert {k: call[k] for k in ("id", "direction", "caller", "callee", "agent", "status",
                                 "disposition", "duration_s", "contact_id", "lead_id")} == {
        "id": "c-ana", "direction": "in", "caller": "+34600111222", "callee": "1001",
        "agent": "1001", "status": "ended", "disposition": "answered", "duration_s": 60.0,
        "contact_id": None, "lead_id": None,
    }


async def test_the_filters(crm: Crm) -> None:
    assert await ids(crm, "sara", "direction=out") == ["c-sara"]
    assert await ids(crm, "sara", "status=missed") == ["c-bruno"]
    assert await ids(crm, "sara", "agent=1001") == ["c-ana"]
    assert await ids(crm, "sara", "q=600333444") == ["c-bruno"]
    assert await ids(crm, "sara", "since=2026-09-21T15:00:00%2B00:00") == []
    assert await ids(crm, "sara", "since=2026-09-21T14:14:00%2B00:00") == ["c-sara", "c-bruno"]


async def test_pages_follow_the_cursor(crm: Crm) -> None:
    seen, query = [], "limit=2"
    while True:
        resp = await crm.client.get(f"/api/calls?{query}", headers=crm.bearer("root"))
        page = await resp.json()
        seen.append([call["id"] for call in page["items"]])
        if page["next"] is None:
            break
        query = f"limit=2&cursor={page['next']}"
    assert seen == [["c-sara", "c-bruno"], ["c-ana"]]


@pytest.mark.parametrize(("query", "field"), [
    ("direction=sideways", "direction"), ("status=lost", "status"),
    ("since=yesterday", "since"), ("limit=1000", "limit"), ("cursor=%21%21", "cursor"),
])
async def test_a_bad_filter_is_a_422_naming_it(crm: Crm, query: str, field: str) -> None:
    resp = await crm.client.get(f"/api/calls?{query}", headers=crm.bearer("sara"))
    assert (resp.status, (await resp.json())["error"]["field"]) == (422, field)
