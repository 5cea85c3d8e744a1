"""Contacts and leads over HTTP: privacy, validation that names the field, sizes, lookup."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.crm_core.test_http_support import Crm, start_crm


@pytest.fixture
async def crm(aiohttp_client, database_url: str) -> Crm:
    return await start_crm(aiohttp_client, database_url)


CARMEN = {
    "first_name": "Carmen", "last_name": "Ruiz", "phones": ["+34 600 123 456"],
    "emails": ["carmen@example.com"], "tags": ["VIP"],
}


async def post(crm: Crm, who: str, path: str, body: Any, status: int) -> Any:
    resp = await crm.client.post(path, json=body, headers=crm.bearer(who))
    assert resp.status == status, await resp.text()
    return await resp.json()


async def get(crm: Crm, who: str, path: str, status: int = 200) -> Any:
    resp = await crm.client.get(path, headers=crm.bearer(who))
    assert resp.status == status, await resp.text()
    return await resp.json()


async def listed(crm: Crm, who: str, query: str) -> list[int]:
    page = await get(crm, who, f"/api/contacts?{query}")
    return [item["id"] for item in page["items"]]


async def test_create_returns_the_whole_contact_with_e164_numbers(crm: Crm) -> None:
    card = await post(crm, "ana", "/api/contacts", CARMEN, 201)
    assert card == {
        "id": card["id"], "kind": "person", "first_name": "Carmen", "last_name": "Ruiz",
        "company_name": "", "name": "Carmen Ruiz", "type": "client", "currency": None,
        "manager_id": crm.ids["ana"], "visibility": "private", "custom": {},
        "created_at": card["created_at"], "updated_at": card["updated_at"],
        "phones": [{"number": "+34600123456", "kind": "work"}],
        "emails": [{"address": "carmen@example.com", "kind": "work"}],
        "tags": ["vip"], "addresses": [], "links": [],
    }
    assert await get(crm, "ana", f"/api/contacts/{card['id']}") == card


async def test_a_private_contact_does_not_exist_for_other_agents(crm: Crm) -> None:
    cid = (await post(crm, "ana", "/api/contacts", CARMEN, 201))["id"]
    for who in ("bruno", "sara"):
        await get(crm, who, f"/api/contacts/{cid}", 404)
        await get(crm, who, f"/api/contacts/{cid}/timeline", 404)
        await get(crm, who, "/api/contacts/lookup?phone=600123456", 404)
        for query in ("", "q=carmen", "q=600%2012%2034%2056", "tag=vip", "q=carmen@example.com"):
            assert await listed(crm, who, query) == []
        resp = await crm.client.patch(
            f"/api/contacts/{cid}", json={"first_name": "X"}, headers=crm.bearer(who)
        )
        assert resp.status == 404
        resp = await crm.client.delete(f"/api/contacts/{cid}", headers=crm.bearer(who))
        assert resp.status == 404
        await post(crm, who, f"/api/contacts/{cid}/notes", {"text": "peek"}, 404)
    # Its manager and the admin find it every way.
    for who in ("ana", "root"):
        for query in ("", "q=carmen", "q=600%2012%2034%2056", "tag=vip", "mine=0"):
            assert await listed(crm, who, query) == [cid]
        found = await get(crm, who, "/api/contacts/lookup?phone=0034600123456")
        assert (found["record"], found["id"]) == ("contact", cid)
        assert (await get(crm, who, f"/api/contacts/{cid}/timeline"))["items"] == []
    assert await listed(crm, "root", "mine=1") == []


async def test_shared_read_only_is_read_by_all_and_changed_by_its_manager(crm: Crm) -> None:
    cid = (await post(crm, "ana", "/api/contacts", {**CARMEN, "visibility": "read"}, 201))["id"]
    assert (await get(crm, "bruno", f"/api/contacts/{cid}"))["id"] == cid
    resp = await crm.client.patch(
        f"/api/contacts/{cid}", json={"first_name": "X"}, headers=crm.bearer("bruno")
    )
    assert resp.status == 403
    resp = await crm.client.patch(
        f"/api/contacts/{cid}", json={"last_name": "Ruiz Gil"}, headers=crm.bearer("ana")
    )
    assert (resp.status, (await resp.json())["name"]) == (200, "Carmen Ruiz Gil")
    note = await post(crm, "bruno", f"/api/contacts/{cid}/notes", {"text": "called back"}, 201)
    timeline = await get(crm, "ana", f"/api/contacts/{cid}/timeline")
    assert timeline == {"items": [{"type": "note", "at": note["created_at"], "note": note}],
                        "next": None}
    assert (note["author_id"], note["text"]) == (crm.ids["bruno"], "called back")
    resp = await crm.client.delete(f"/api/contacts/{cid}", headers=crm.bearer("ana"))
    assert resp.status == 204
    await get(crm, "ana", f"/api/contacts/{cid}", 404)


async def test_one_bad_phone_is_a_422_naming_it_and_nothing_is_written(crm: Crm) -> None:
    body = {**CARMEN, "phones": ["+34 600 123 456", {"number": "12", "kind": "mobile"}]}
    error = (await post(crm, "ana", "/api/contacts", body, 422))["error"]
    assert (error["code"], error["field"]) == ("invalid-input", "phones[1].number")
    assert await listed(crm, "ana", "") == []
    cid = (await post(crm, "ana", "/api/contacts", CARMEN, 201))["id"]
    resp = await crm.client.patch(
        f"/api/contacts/{cid}", json={"first_name": "Carla", "phones": ["+34 600 123 456", "x"]},
        headers=crm.bearer("ana"),
    )
    assert (resp.status, (await resp.json())["error"]["field"]) == (422, "phones[1].number")
    card = await get(crm, "ana", f"/api/contacts/{cid}")
    assert (card["first_name"], card["phones"]) == (
        "Carmen", [{"number": "+34600123456", "kind": "work"}]
    )


@pytest.mark.parametrize(("body", "field"), [
    ({"nickname": "Carmencita"}, "nickname"),
    ({"first_name": 5}, "first_name"),
    ({"first_name": "C", "visibility": "secret"}, "visibility"),
    ({"first_name": "C", "phones": "600123456"}, "phones"),
    ({"first_name": "C", "emails": [{"address": "a@b.es", "colour": "red"}]}, "emails[0].colour"),
    ({"first_name": "C", "tags": ["ok", 7]}, "tags[1]"),
    ({"first_name": "C", "manager_id": 2**40}, "manager_id"),
    ({"first_name": "C\x00"}, "first_name"),
    ({"last_name": ""}, "first_name"),
    ([1, 2], "body"),
])
async def test_a_wrong_field_is_named(crm: Crm, body: Any, field: str) -> None:
    error = (await post(crm, "ana", "/api/contacts", body, 422))["error"]
    assert (error["code"], error["field"]) == ("invalid-input", field)


async def test_bodies_that_are_not_json_or_too_big(crm: Crm) -> None:
    json_type = {**crm.bearer("ana"), "Content-Type": "application/json"}
    resp = await crm.client.post("/api/contacts", data=b"{not json", headers=json_type)
    assert (resp.status, (await resp.json())["error"]["field"]) == (422, "body")
    # A form's text/plain is refused even when it parses: it is how cross-site forms forge JSON.
    form = {**crm.bearer("ana"), "Content-Type": "text/plain"}
    resp = await crm.client.post("/api/contacts", data=b'{"first_name": "X"}', headers=form)
    assert (resp.status, (await resp.json())["error"]["code"]) == (415, "unsupported-media-type")
    huge = {"first_name": "C", "custom": {"blob": "x" * 300_000}}
    resp = await crm.client.post("/api/contacts", json=huge, headers=crm.bearer("ana"))
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "request-entity-too-large"
    assert await listed(crm, "ana", "") == []


async def test_chunked_bodies_are_read_whole_and_bounded_too(crm: Crm) -> None:
    async def chunks(payload: bytes):
        for start in range(0, len(payload), 8192):
            yield payload[start:start + 8192]

    headers = {**crm.bearer("ana"), "Content-Type": "application/json"}
    note = json.dumps({"first_name": "Chunked", "custom": {"notes": "y" * 100_000}}).encode()
    resp = await crm.client.post("/api/contacts", data=chunks(note), headers=headers)
    assert (resp.status, (await resp.json())["custom"]["notes"]) == (201, "y" * 100_000)
    huge = json.dumps({"first_name": "C", "custom": {"blob": "x" * 300_000}}).encode()
    resp = await crm.client.post("/api/contacts", data=chunks(huge), headers=headers)
    assert resp.status == 413
    assert len(await listed(crm, "ana", "")) == 1


async def test_query_strings_and_ids_are_checked(crm: Crm) -> None:
    error = (await get(crm, "ana", "/api/contacts?mine=perhaps", 422))["error"]
    assert error["field"] == "mine"
    assert (await get(crm, "ana", "/api/contacts?limit=0", 422))["error"]["field"] == "limit"
    assert (await get(crm, "ana", "/api/contacts/lookup", 422))["error"]["field"] == "phone"
    await get(crm, "ana", "/api/contacts/99999999999", 404)
    await get(crm, "ana", "/api/contacts/abc", 404)


async def test_lists_page_with_a_cursor(crm: Crm) -> None:
    ids = [(await post(crm, "ana", "/api/contacts", {"first_name": f"C{i}"}, 201))["id"]
           for i in range(3)]
    first = await get(crm, "ana", "/api/contacts?limit=2")
    assert [c["id"] for c in first["items"]] == ids[::-1][:2]
    second = await get(crm, "ana", f"/api/contacts?limit=2&cursor={first['next']}")
    assert ([c["id"] for c in second["items"]], second["next"]) == ([ids[0]], None)


async def test_leads_queue_claim_and_convert(crm: Crm) -> None:
    lead = await post(crm, "ana", "/api/leads", {"name": "Luis Gómez", "phones": ["611223344"]},
                      201)
    assert (lead["status"], lead["phones"]) == (
        "unhandled", [{"number": "+34611223344", "kind": "work"}]
    )
    found = await get(crm, "bruno", "/api/contacts/lookup?phone=%2B34%20611%2022%2033%2044")
    assert (found["record"], found["id"]) == ("lead", lead["id"])
    queue = await get(crm, "sara", "/api/leads?status=unhandled")
    assert [item["id"] for item in queue["items"]] == [lead["id"]]
    claimed = await post(crm, "bruno", f"/api/leads/{lead['id']}/claim", None, 200)
    assert (claimed["status"], claimed["responsible_id"]) == ("handled", crm.ids["bruno"])
    again = await post(crm, "ana", f"/api/leads/{lead['id']}/claim", None, 409)
    assert again["error"]["code"] == "conflict"
    assert (await get(crm, "bruno", "/api/leads?status=mine"))["items"][0]["id"] == lead["id"]
    await post(crm, "ana", f"/api/leads/{lead['id']}/convert", None, 403)
    result = await post(crm, "bruno", f"/api/leads/{lead['id']}/convert", None, 200)
    assert result["lead"]["status"] == "converted"
    contact = result["contact"]
    assert (contact["first_name"], contact["last_name"], contact["manager_id"]) == (
        "Luis", "Gómez", crm.ids["bruno"]
    )
    await get(crm, "ana", f"/api/contacts/{contact['id']}", 404)
    error = (await get(crm, "ana", "/api/leads?status=lost", 422))["error"]
    assert error["field"] == "status"
