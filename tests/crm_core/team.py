"""The people the CRM tests act as, and a database with them in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from crm_core.db import Database
from crm_core.models import User


@dataclass(frozen=True)
class Someone:
    """A viewer as the services see it (`crm_core.access.Viewer`)."""

    user_id: int
    role: str


ADMIN, ANA, BEN, SUE = (
    Someone(1, "admin"), Someone(2, "agent"), Someone(3, "agent"), Someone(4, "supervisor")
)


@asynccontextmanager
async def team_database(url: str, *people: Someone) -> AsyncIterator[Database]:
    """`url`'s database with `people` as users (extension 100<id>), closed afterwards."""
    database = Database(url)
    async with database.transaction() as session:
        for who in people or (ADMIN, ANA, BEN, SUE):
            session.add(User(id=who.user_id, username=f"u{who.user_id}", role=who.role,
                             extension=f"100{who.user_id}", password_hash="x",
                             working_hours={}))
    yield database
    await database.close()
