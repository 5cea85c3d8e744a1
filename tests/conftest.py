"""Shared fixtures: databases on SQLite and PostgreSQL, settings, the app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from crm_core.db import migrate

FIXTURES = Path(__file__).parent / "fixtures"


def postgres_url() -> str:
    url = os.environ.get("CENTRALITA_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "CENTRALITA_TEST_POSTGRES_URL is not set: run the suite with ./scripts/test, "
            "which starts PostgreSQL and Redis on loopback"
        )
    return url


async def _fresh_postgres(url: str) -> str:
    """A database of this test process's own, emptied: parallel runs never meet."""
    base = make_url(url)
    name = f"{base.database}_{os.getpid()}"
    admin = create_async_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        query = text("SELECT 1 FROM pg_database WHERE datname = :n")
        exists = await conn.scalar(query, {"n": name})
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    own = base.set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(own)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return own


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty, migrated database on each backend in turn."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        url = await _fresh_postgres(postgres_url())
    await migrate(url)
    yield url
