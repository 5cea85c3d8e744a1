"""Contacts: CRUD, search, tags, paging, and the C2 access rules on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from crm_core import contacts, leads, timeline
from crm_core.access import encode_cursor
from crm_core.db import Database
from kernel.errors import Forbidden, NotFound, ValidationFailed
from tests.crm_core.team import ADMIN, ANA, BEN, SUE, Someone, team_database

REGION = "ES"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with team_database(database_url) as database:
        yield database


async def _make(db: Database, who: Someone, **data: Any) -> dict[str, Any]:
    return await contacts.create_contact(db, who, data, region=REGION)


def _names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


async def test_create_returns_the_api_shape_with_e164_numbers(db: Database) -> None:
    made = await _make(
        db, ANA, first_name="Lucía", last_name="Gómez", company_name="Acme",
        phones=["912 34 56 78", {"number": "0034 612-345-678", "kind": "mobile"},
                "+34912345678"],
        emails=[" Lucia@Acme.ES "], tags=["VIP", "madrid", "vip"], currency="eur",
        custom={"nif": "B123"}, links=["https://acme.es"],
        addresses=[{"street": "Gran Vía 1", "city": "Madrid", "country": "es"}],
    )
    assert made == {
        "id": made["id"], "kind": "person", "first_name": "Lucía", "last_name": "Gómez",
        "company_name": "Acme", "name": "Lucía Gómez", "type": "client", "currency": "EUR",
        "manager_id": ANA.user_id, "visibility": "private", "custom": {"nif": "B123"},
        "created_at": made["created_at"], "updated_at": made["updated_at"],
        "phones": [{"number": "+34912345678", "kind": "work"},
                   {"number": "+34612345678", "kind": "mobile"}],
        "emails": [{"address": "lucia@acme.es", "kind": "work"}],
        "tags": ["madrid", "vip"],
        "addresses": [{"kind": "work", "street": "Gran Vía 1", "city": "Madrid", "region": "",
                       "postcode": "", "country": "ES"}],
        "links": [{"url": "https://acme.es", "kind": "work"}],
    }
    assert made["created_at"].endswith("+00:00")
    assert await contacts.get_contact(db, ANA, made["id"]) == made


async def test_a_bad_phone_names_its_place_and_writes_nothing(db: Database) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await _make(db, ANA, first_name="X", phones=["912345678", "12"])
    assert (caught.value.field, caught.value.message) == (
        "phones[1].number", "'12' is too short (read in region ES)")
    assert await contacts.list_contacts(db, ADMIN, region=REGION) == {"items": [], "next": None}


@pytest.mark.parametrize(("data", "field"), [
    ({"kind": "company"}, "company_name"),
    ({"first_name": ""}, "first_name"),
    ({"first_name": "A", "visibility": "public"}, "visibility"),
    ({"first_name": "A", "colour": "red"}, "colour"),
    ({"first_name": "A", "emails": ["nobody"]}, "emails[0].address"),
    ({"first_name": "A", "manager_id": 999}, "manager_id"),
])
async def test_invalid_contacts_are_refused_by_field(
    db: Database, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await _make(db, ANA, **data)
    assert caught.value.field == field


async def test_private_contacts_never_leak(db: Database) -> None:
    secret = await _make(db, ANA, first_name="Secret", phones=["612000001"],
                         emails=["s@x.es"], tags=["hot"])
    shared = await _make(db, ANA, first_name="Shared", visibility="read", tags=["hot"])
    for viewer in (BEN, SUE):
        for q, tag in ((None, None), ("Secret", None), ("612 00 00 01", None),
                       ("s@x.es", None), (None, "hot")):
            page = await contacts.list_contacts(db, viewer, region=REGION, q=q, tag=tag)
            assert "Secret" not in _names(page), (viewer, q, tag)
        with pytest.raises(NotFound):
            await contacts.get_contact(db, viewer, secret["id"])
        with pytest.raises(NotFound):
            await contacts.lookup_by_phone(db, viewer, "+34612000001", region=REGION)
        with pytest.raises(NotFound):
            await timeline.timeline(db, viewer, contact_id=secret["id"])
        with pytest.raises(NotFound):
            await contacts.update_contact(db, viewer, secret["id"], {"first_name": "Y"},
                                          region=REGION)
        assert _names(await contacts.list_contacts(db, viewer, region=REGION, tag="hot")) == [
            "Shared"]
    for viewer in (ANA, ADMIN):
        page = await contacts.list_contacts(db, viewer, region=REGION, tag="hot")
        assert _names(page) == ["Shared", "Secret"]
        found = await contacts.lookup_by_phone(db, viewer, "612 00 00 01", region=REGION)
        assert (found["record"], found["id"]) == ("contact", secret["id"])
    assert shared["visibility"] == "read"


async def test_read_shares_reading_and_write_shares_writing(db: Database) -> None:
    read = await _make(db, ANA, first_name="Read", visibility="read")
    write = await _make(db, ANA, first_name="Write", visibility="write")
    assert (await contacts.get_contact(db, BEN, read["id"]))["first_name"] == "Read"
    with pytest.raises(Forbidden):
        await contacts.update_contact(db, BEN, read["id"], {"first_name": "B"}, region=REGION)
    with pytest.raises(Forbidden):
        await contacts.delete_contact(db, BEN, read["id"])
    changed = await contacts.update_contact(db, BEN, write["id"], {"last_name": "Ok"},
                                            region=REGION)
    assert (changed["name"], changed["manager_id"]) == ("Write Ok", ANA.user_id)
    with pytest.raises(Forbidden):  # sharing is the manager's decision
        await contacts.update_contact(db, BEN, write["id"], {"visibility": "private"},
                                      region=REGION)
    admin_edit = await contacts.update_contact(db, ADMIN, read["id"], {"visibility": "private"},
                                               region=REGION)
    assert admin_edit["visibility"] == "private"
    await contacts.delete_contact(db, BEN, write["id"])
    with pytest.raises(NotFound):
        await contacts.get_contact(db, ANA, write["id"])


async def test_patch_replaces_only_the_lists_it_names(db: Database) -> None:
    made = await _make(db, ANA, first_name="P", phones=["912345678"], tags=["a"])
    changed = await contacts.update_contact(db, ANA, made["id"], {"tags": ["b", "c"]},
                                            region=REGION)
    assert (changed["phones"], changed["tags"]) == ([{"number": "+34912345678",
                                                      "kind": "work"}], ["b", "c"])
    changed = await contacts.update_contact(db, ANA, made["id"], {"phones": ["612 11 22 33"]},
                                            region=REGION)
    assert (changed["phones"], changed["tags"]) == ([{"number": "+34612112233",
                                                      "kind": "work"}], ["b", "c"])


async def test_search_by_name_company_email_and_any_phone_format(db: Database) -> None:
    await _make(db, ANA, first_name="Marta", last_name="Ruiz", phones=["912 34 56 78"],
                visibility="read")
    await _make(db, ANA, kind="company", company_name="Telefónica 50%", emails=["info@tf.es"],
                visibility="read")
    await _make(db, BEN, first_name="Mine", visibility="read")
    cases = {"marta ruiz": ["Marta Ruiz"], "RUIZ": ["Marta Ruiz"], "ruiz mar": ["Marta Ruiz"],
             "34912345678": ["Marta Ruiz"], "(912) 345 678": ["Marta Ruiz"],
             "0034 912-345-678": ["Marta Ruiz"], "info@tf": ["Telefónica 50%"],
             "telefonica": ["Telefónica 50%"], "TELEFÓ": ["Telefónica 50%"],
             "50%": ["Telefónica 50%"], "%": [], "M_rta": [], "rta": [], "marta x": [],
             "nobody": []}
    for q, expected in cases.items():
        assert _names(await contacts.list_contacts(db, SUE, region=REGION, q=q)) == expected, q
    assert _names(await contacts.list_contacts(db, BEN, region=REGION, mine=True)) == ["Mine"]


async def test_cursor_pages_cover_everything_once_newest_first(db: Database) -> None:
    for n in range(7):
        await _make(db, ANA, first_name=f"C{n}")
    seen: list[str] = []
    cursor = None
    while True:
        page = await contacts.list_contacts(db, ANA, region=REGION, cursor=cursor, limit=3)
        seen += _names(page)
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"C{n}" for n in reversed(range(7))]
    for foreign in ("!!not-ours", encode_cursor(["7"]), encode_cursor([1, 2]), "e30"):
        with pytest.raises(ValidationFailed) as caught:
            await contacts.list_contacts(db, ANA, region=REGION, cursor=foreign)
        assert caught.value.field == "cursor", foreign


async def test_a_number_typed_into_search_is_an_index_probe_not_a_scan(db: Database) -> None:
    await _make(db, ANA, first_name="Marta", phones=["912 34 56 78"])
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]).upper())

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        page = await contacts.list_contacts(db, ANA, region=REGION, q="(912) 345-678")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert _names(page) == ["Marta"]
    searched = [s for s in statements if "FROM CONTACTS" in s]
    assert len(searched) == 1 and " LIKE " not in searched[0] and "PHONES.NUMBER =" in searched[0]


async def test_search_words_follow_renames_and_conversions(db: Database) -> None:
    made = await _make(db, ANA, first_name="Íñigo", last_name="Old")
    await contacts.update_contact(db, ANA, made["id"], {"last_name": "Nuevo"}, region=REGION)
    assert _names(await contacts.list_contacts(db, ANA, region=REGION, q="inigo nue")) == [
        "Íñigo Nuevo"]
    assert _names(await contacts.list_contacts(db, ANA, region=REGION, q="old")) == []
    lead = await leads.create_lead(db, {"name": "Zoe Lead", "company": "Zeta"}, region=REGION)
    await leads.convert_lead(db, ANA, lead["id"])
    assert _names(await contacts.list_contacts(db, ANA, region=REGION, q="zeta zoe")) == [
        "Zoe Lead"]
