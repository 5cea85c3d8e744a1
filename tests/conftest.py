"""Shared fixtures: databases on SQLite and PostgreSQL, settings, the app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
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


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty, migrated database on each backend in turn."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        url = postgres_url()
        await _reset_postgres(url)
    await migrate(url)
    yield url
