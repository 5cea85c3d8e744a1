"""Shared pieces for the HTTP tests: the built app on a migrated database and a small team.

The team's password hash is computed once per test process: argon2 costs a
few hundred milliseconds of CPU per hash, which is the point in production
and a waste in fixtures (the hashing path itself is tested in test_auth_users).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

import crm_core
from centralita.app import build_app
from config import Settings
from crm_core.auth.tokens import API, issue_token
from crm_core.db import Database
from crm_core.models import User

PASSWORD = "correct horse battery"
PASSWORD_HASH = PasswordHasher().hash(PASSWORD)

TEAM = (
    # username, role, extension, name
    ("ana", "agent", "1001", "Ana Agent"),
    ("bruno", "agent", "1002", "Bruno Agent"),
    ("sara", "supervisor", "1003", "Sara Supervisor"),
    ("root", "admin", None, "Root Admin"),
)


@dataclass
class Crm:
    client: TestClient
    app: web.Application
    db: Database
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def bearer(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def fresh_bearer(self, username: str) -> dict[str, str]:
        issued = await issue_token(self.db, self.ids[username], API, timedelta(hours=1))
        return {"Authorization": f"Bearer {issued.token}"}

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        resp = await self.client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def add_team(db: Database) -> dict[str, int]:
    ids = {}
    async with db.transaction() as session:
        for username, role, extension, name in TEAM:
            user = User(
                username=username, role=role, extension=extension, name=name,
                password_hash=PASSWORD_HASH, working_hours={}, active=True,
            )
            session.add(user)
            await session.flush()
            ids[username] = user.id
    return ids


async def start_crm(aiohttp_client: Any, database_url: str, **settings: Any) -> Crm:
    app = build_app(Settings(database_url=database_url, **settings))
    client = await aiohttp_client(app)
    db = app[crm_core.DATABASE]
    crm = Crm(client=client, app=app, db=db, ids=await add_team(db))
    for username in crm.ids:
        issued = await issue_token(db, crm.ids[username], API, timedelta(hours=1))
        crm.tokens[username] = issued.token
    return crm

