"""The public web-form endpoint (C9): form keys, JSON and HTML posts, UTM tags, rate limit."""

from __future__ import annotations

import pytest

from crm_core.http.intake import INTAKE_LIMIT
from tests.crm_core.test_http_support import Crm, start_crm


@pytest.fixture
async def crm(aiohttp_client, database_url: str) -> Crm:
    return await start_crm(aiohttp_client, database_url)


async def new_form(crm: Crm, name: str = "website") -> dict:
    resp = await crm.client.post("/api/lead-forms", json={"name": name}, headers=crm.bearer("root"))
    assert resp.status == 201
    form: dict = await resp.json()
    assert form == {"id": form["id"], "name": name, "key": form["key"],
                    "owner_id": crm.ids["root"], "active": True}
    return form


async def queue(crm: Crm) -> list[dict]:
    resp = await crm.client.get("/api/leads?status=unhandled", headers=crm.bearer("ana"))
    return (await resp.json())["items"]


async def test_a_json_post_with_the_key_makes_a_web_lead_with_its_tags(crm: Crm) -> None:
    form = await new_form(crm)
    resp = await crm.client.post(f"/api/leads/intake?key={form['key']}", json={
        "name": "Lucía Pérez", "phone": "612 34 56 78", "email": "lucia@example.com",
        "message": "Call me after five", "utm_source": "newsletter",
    })
    body = await resp.json()
    assert (resp.status, body["status"]) == (201, "received")
    [lead] = await queue(crm)
    assert lead["id"] == body["lead_id"]
    assert {k: lead[k] for k in ("name", "source", "source_tags", "phones", "emails")} == {
        "name": "Lucía Pérez", "source": "web",
        "source_tags": {"form": "website", "utm_source": "newsletter"},
        "phones": [{"number": "+34612345678", "kind": "work"}],
        "emails": [{"address": "lucia@example.com", "kind": "work"}],
    }
    resp = await crm.client.get(f"/api/leads/{lead['id']}/timeline", headers=crm.bearer("ana"))
    notes = [i["note"]["text"] for i in (await resp.json())["items"] if i["type"] == "note"]
    assert notes == ["Call me after five"]


async def test_a_plain_html_form_post_works_with_the_key_header(crm: Crm) -> None:
    form = await new_form(crm)
    resp = await crm.client.post(
        "/api/leads/intake", data={"name": "Pedro", "phone": "+34 699 000 111"},
        headers={"X-Form-Key": form["key"]},
    )
    assert resp.status == 201
    assert [lead["name"] for lead in await queue(crm)] == ["Pedro"]


async def test_unknown_or_switched_off_keys_are_refused_and_nothing_is_written(crm: Crm) -> None:
    form = await new_form(crm)
    resp = await crm.client.post("/api/leads/intake?key=ctf_nope", json={"name": "X"})
    assert (resp.status, (await resp.json())["error"]["field"]) == (403, "key")
    resp = await crm.client.delete(f"/api/lead-forms/{form['id']}", headers=crm.bearer("root"))
    assert (resp.status, (await resp.json())["active"]) == (200, False)
    resp = await crm.client.post(f"/api/leads/intake?key={form['key']}", json={"name": "X"})
    assert resp.status == 403
    assert await queue(crm) == []


async def test_bad_fields_are_named_as_the_form_names_them(crm: Crm) -> None:
    form = await new_form(crm)
    url = f"/api/leads/intake?key={form['key']}"
    for body, field in (({"name": "X", "phone": "12"}, "phone"), ({"email": "nope"}, "email"),
                        ({}, "name"), ({"name": "X", "fax": "1"}, "fax")):
        resp = await crm.client.post(url, json=body)
        assert (resp.status, (await resp.json())["error"]["field"]) == (422, field)
    assert await queue(crm) == []


async def test_posts_are_rate_limited_per_form_and_address(crm: Crm) -> None:
    form = await new_form(crm)
    now = [0.0]
    crm.app[INTAKE_LIMIT].clock = lambda: now[0]
    url = f"/api/leads/intake?key={form['key']}"
    statuses = [(await crm.client.post(url, json={"name": f"L{i}"})).status for i in range(11)]
    assert statuses == [201] * 10 + [429]
    resp = await crm.client.post(url, json={"name": "late"})
    assert resp.headers["Retry-After"] == "600"
    other = await new_form(crm, "landing")
    resp = await crm.client.post(f"/api/leads/intake?key={other['key']}", json={"name": "ok"})
    assert resp.status == 201
    now[0] += 601
    assert (await crm.client.post(url, json={"name": "next day"})).status == 201
