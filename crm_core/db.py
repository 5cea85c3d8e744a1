"""The database: one async engine for SQLite (WAL) or PostgreSQL (asyncpg), and migrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No ping on every checkout (a round trip per session on the pop's hot path): a
    # connection the server dropped fails its query once and the pool replaces it.
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the HTTP readers and the call-log writer work side by side.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """The engine and session factory every CRM service shares."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._threaded: Engine | None = None
        database = make_url(url).database if is_sqlite(url) else None
        if database and database != ":memory:" and not database.startswith("file:"):
            self._threaded = sqlalchemy.create_engine(
                f"sqlite:///{database}", connect_args={"timeout": 30, "check_same_thread": False}
            )
            event.listen(self._threaded, "connect", _sqlite_pragmas)

    async def run_sync(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction, for hot writers (the call log).

        On a SQLite file the whole transaction runs in a worker thread: through
        aiosqlite each statement, fetch and commit is a hop to its thread and
        back (some thirty per call-log write, 8 ms); here it is one hop. Elsewhere
        it is the async session's `run_sync`, the same code on the same rows.
        """
        if self._threaded is not None:
            return await asyncio.to_thread(self._in_thread, work)
        async with self.transaction() as session:
            return await session.run_sync(work)

    def _in_thread(self, work: Callable[[Session], T]) -> T:
        assert self._threaded is not None
        with Session(self._threaded, expire_on_commit=False) as session, session.begin():
            return work(session)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()
        if self._threaded is not None:
            self._threaded.dispose()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    return cfg


def migrate_sync(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (alembic runs its own event loop, so not on ours)."""
    command.upgrade(alembic_config(url), revision)


async def migrate(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(migrate_sync, url, revision)
