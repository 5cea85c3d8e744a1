"""Users: argon2 hashes, the CLI's add_user, and the admin's /api/users routes (C11)."""

from __future__ import annotations

import pytest

from crm_core.db import Database
from crm_core.models import User
from crm_core.users import add_user, update_user, verify_login
from kernel.errors import Conflict, ValidationFailed
from tests.crm_core.test_http_support import PASSWORD, Crm, start_crm


@pytest.fixture
async def crm(aiohttp_client, database_url: str) -> Crm:
    return await start_crm(aiohttp_client, database_url)


@pytest.fixture
async def db(database_url: str):
    database = Database(database_url)
    yield database
    await database.close()


async def test_add_user_stores_an_argon2id_hash_and_verifies_it(db: Database) -> None:
    user = await add_user(db, "marta", "agent", "s3cret-enough", extension="2001", name="Marta")
    async with db.session() as session:
        stored = await session.get(User, user.id)
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert "s3cret-enough" not in stored.password_hash
    assert (stored.username, stored.role, stored.extension, stored.name, stored.active) == (
        "marta", "agent", "2001", "Marta", True
    )
    assert (await verify_login(db, "MARTA", "s3cret-enough")).id == user.id  # type: ignore[union-attr]
    assert await verify_login(db, "marta", "wrong-password") is None
    assert await verify_login(db, "nobody", "s3cret-enough") is None


async def test_add_user_refuses_duplicates_and_bad_fields_naming_them(db: Database) -> None:
    await add_user(db, "marta", "agent", "s3cret-enough", extension="2001")
    with pytest.raises(Conflict) as taken:
        await add_user(db, "marta", "agent", "s3cret-enough")
    assert taken.value.field == "username"
    with pytest.raises(Conflict) as ext:
        await add_user(db, "pablo", "agent", "s3cret-enough", extension="2001")
    assert ext.value.field == "extension"
    cases = [
        (("pablo", "boss", "s3cret-enough"), {}, "role"),
        (("pablo", "agent", "short"), {}, "password"),
        (("Pablo Ruiz", "agent", "s3cret-enough"), {}, "username"),
        (("pablo", "agent", "s3cret-enough"), {"extension": "12a"}, "extension"),
    ]
    for args, extra, field in cases:
        with pytest.raises(ValidationFailed) as bad:
            await add_user(db, *args, **extra)
        assert bad.value.field == field


async def test_changing_a_password_signs_the_user_out(crm: Crm) -> None:
    await update_user(crm.db, crm.ids["bruno"], {"password": "a-new-password"})
    assert (await crm.client.get("/api/me", headers=crm.bearer("bruno"))).status == 401
    await crm.login("bruno", "a-new-password")


async def test_an_admin_manages_the_team(crm: Crm) -> None:
    admin = crm.bearer("root")
    new = {"username": "marta", "name": "Marta", "role": "agent", "extension": "2001",
           "email": "marta@example.com", "working_hours": {"mon": ["09:00", "17:00"]},
           "password": "s3cret-enough"}
    resp = await crm.client.post("/api/users", json=new, headers=admin)
    created = await resp.json()
    assert resp.status == 201
    expected = {k: v for k, v in new.items() if k != "password"}
    assert created == {**expected, "id": created["id"], "active": True}
    listed = await (await crm.client.get("/api/users", headers=admin)).json()
    assert [u["username"] for u in listed["items"]] == ["ana", "bruno", "marta", "root", "sara"]
    assert listed["next"] is None
    session = await crm.login("marta", "s3cret-enough")
    marta = {"Authorization": f"Bearer {session['token']}"}
    resp = await crm.client.patch(
        f"/api/users/{created['id']}", json={"role": "supervisor", "extension": "2002"},
        headers=admin,
    )
    assert (resp.status, await resp.json()) == (
        200, {**created, "role": "supervisor", "extension": "2002"}
    )
    # A new role ends the old sessions: the next sign-in carries the new role.
    assert (await crm.client.get("/api/me", headers=marta)).status == 401
    resp = await crm.client.delete(f"/api/users/{created['id']}", headers=admin)
    assert (resp.status, (await resp.json())["active"]) == (200, False)
    resp = await crm.client.post(
        "/api/auth/login", json={"username": "marta", "password": "s3cret-enough"}
    )
    assert resp.status == 401


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"username": "ana", "role": "agent", "password": "s3cret-enough"}, 409, "username"),
    ({"username": "x1", "role": "agent", "password": "s3cret-enough", "extension": "1001"},
     409, "extension"),
    ({"username": "x1", "role": "agent", "password": "s3cret-enough", "title": "CEO"},
     422, "title"),
    ({"username": "x1", "role": "owner", "password": "s3cret-enough"}, 422, "role"),
    ({"username": "x1", "role": "agent"}, 422, "password"),
    ({"username": "x1", "role": "agent", "password": "s3cret-enough", "email": "nope"},
     422, "email"),
])
async def test_bad_user_bodies_name_the_field(
    crm: Crm, body: dict[str, object], status: int, field: str
) -> None:
    resp = await crm.client.post("/api/users", json=body, headers=crm.bearer("root"))
    assert (resp.status, (await resp.json())["error"]["field"]) == (status, field)


async def test_an_admin_cannot_lock_themselves_out(crm: Crm) -> None:
    me = crm.ids["root"]
    resp = await crm.client.delete(f"/api/users/{me}", headers=crm.bearer("root"))
    assert (resp.status, (await resp.json())["error"]["field"]) == (409, "id")
    resp = await crm.client.patch(
        f"/api/users/{me}", json={"role": "agent"}, headers=crm.bearer("root")
    )
    assert (resp.status, (await resp.json())["error"]["field"]) == (409, "role")
    assert (await (await crm.client.get("/api/me", headers=crm.bearer("root"))).json())[
        "role"] == "admin"


async def test_users_change_their_own_profile_but_not_their_role(crm: Crm) -> None:
    hours = {"mon": [["09:00", "14:00"], ["16:00", "19:00"]], "rotation": "A"}
    resp = await crm.client.patch(
        "/api/me", json={"name": "Ana G.", "working_hours": hours}, headers=crm.bearer("ana")
    )
    me = await resp.json()
    assert (resp.status, me["name"], me["working_hours"], me["role"]) == (
        200, "Ana G.", hours, "agent"
    )
    resp = await crm.client.patch("/api/me", json={"role": "admin"}, headers=crm.bearer("ana"))
    assert (resp.status, (await resp.json())["error"]["field"]) == (422, "role")
    resp = await crm.client.patch(
        "/api/me", json={"password": "brand-new-pass", "current_password": "wrong"},
        headers=crm.bearer("ana"),
    )
    assert (resp.status, (await resp.json())["error"]["field"]) == (422, "current_password")
    resp = await crm.client.patch(
        "/api/me", json={"password": "brand-new-pass", "current_password": PASSWORD},
        headers=crm.bearer("ana"),
    )
    assert resp.status == 200
    assert (await crm.client.get("/api/me", headers=crm.bearer("ana"))).status == 401
    await crm.login("ana", "brand-new-pass")


async def test_a_weaker_hash_is_upgraded_at_the_next_sign_in(db: Database) -> None:
    from argon2 import PasswordHasher

    user = await add_user(db, "old", "agent", "s3cret-enough")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("s3cret-enough")
    async with db.transaction() as session:
        row = await session.get(User, user.id)
        assert row is not None
        row.password_hash = weak
    assert await verify_login(db, "old", "s3cret-enough") is not None
    async with db.session() as session:
        upgraded = (await session.get(User, user.id)).password_hash  # type: ignore[union-attr]
    assert upgraded != weak
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
