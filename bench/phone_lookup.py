"""Lookup by phone at scale: our any-format lookup against a raw exact-match query (H3).

    .venv/bin/python bench/phone_lookup.py --contacts 1000000 [--backend sqlite|postgres|both]

Builds N contacts with one mobile number each (bulk insert: executemany on
SQLite in a temporary directory, COPY on PostgreSQL in a throw-away
database), then times, one after another on one loop:
- `ours`: `crm_core.phones.find_owner` on numbers written the way people and
  PBXs write them (`612 34 56 78`, `0034 612-345-678`, `34612345678`, ...),
  through an AsyncSession, with an agent's access rule, 10% unknown;
- `driver`: that query on the bare driver (sqlite3 in the loop's thread,
  an asyncpg prepared statement): the floor under everything else;
- `raw`: `SELECT contact_id, lead_id FROM phones WHERE number = :n` with the
  number already E.164, through the same SQLAlchemy async connection;
- `ours+session`: `ours` opening and closing an AsyncSession per lookup, what
  one HTTP request pays on top (pool checkout, the reset on return);
- `directory`: `crm_core.phones.PhoneDirectory.owner`, the hot-path form
  (in the loop's thread on SQLite; `ours+session` on PostgreSQL).
and prints lookups/s, p50 and p99 of each and their ratio; then the median
time of the contact list's search box (name words, a phone, "mine"). Target: p99 under
1 ms on SQLite and within 3x of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from crm_core.contacts import list_contacts
from crm_core.db import Database, migrate
from crm_core.phones import PhoneDirectory, find_owner

REGION = "ES"
BATCH = 50_000


@dataclass(frozen=True)
class Agent:
    user_id: int = 1
    role: str = "agent"


def mobile(i: int) -> str:
    """A distinct valid Spanish mobile per index (7919 is prime to 10**8: no collisions)."""
    return f"+346{(i * 7919) % 10**8:08d}"


def written(e164: str, style: int) -> str:
    """The same number as a person, an import or a PBX would write it."""
    n = e164[3:]
    return (f"{n[:3]} {n[3:5]} {n[5:7]} {n[7:]}", f"0034 {n[:3]}-{n[3:6]}-{n[6:]}",
            e164, f"34{n}", f"({n[:3]}) {n[3:6]} {n[6:]}")[style % 5]


CONTACT_COLS = ("id", "kind", "first_name", "last_name", "company_name", "type", "currency",
                "manager_id", "visibility", "custom", "created_at", "updated_at")
USER_COLS = ("id", "username", "name", "role", "extension", "email", "password_hash",
             "working_hours", "active", "created_at")
PHONE_COLS = ("id", "number", "kind", "position", "contact_id", "lead_id")
VISIBILITY = ("read", "write", "private")  # every third contact is private to its manager


MANAGERS = 100
"""Contacts are spread over this many users; the bench looks up as user 1, an agent."""


def manager_of(i: int) -> int:
    return i % MANAGERS + 1


def visible_to_agent(i: int) -> bool:
    return VISIBILITY[i % 3] != "private" or manager_of(i) == Agent().user_id


def contact_rows(start: int, stop: int, now: object) -> list[tuple[object, ...]]:
    return [(i, "person", f"N{i}", f"L{i}", "", "client", None, manager_of(i),
             VISIBILITY[i % 3], "{}", now, now) for i in range(start, stop)]


def term_rows(start: int, stop: int) -> list[tuple[object, ...]]:
    """Each contact's search words, as `crm_core.search` writes them (`N12` -> `n12`)."""
    return [(2 * i + k, i, term) for i in range(start, stop)
            for k, term in enumerate((f"n{i}", f"l{i}"))]


def user_rows(now: object) -> list[tuple[object, ...]]:
    return [(u, f"agent{u}", f"Agent {u}", "agent", str(1000 + u), None, "-", "{}", True, now)
            for u in range(1, MANAGERS + 1)]


def phone_rows(start: int, stop: int) -> list[tuple[object, ...]]:
    return [(i, mobile(i), "mobile", 0, i, None) for i in range(start, stop)]


def _insert(table: str, columns: tuple[str, ...]) -> str:
    """By column name: a migration that adds a column must not shift the values."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def fill_sqlite(
    path: Path, count: int, extra_users: Callable[[object], list[tuple[object, ...]]] | None = None
) -> None:
    """`count` contacts with phones and search terms; `extra_users(now)` adds more users."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    now = datetime.now(UTC).isoformat(sep=" ")
    users = user_rows(now) + (extra_users(now) if extra_users else [])
    conn.executemany(_insert("users", USER_COLS), users)
    for start in range(1, count + 1, BATCH):
        stop = min(start + BATCH, count + 1)
        conn.executemany(_insert("contacts", CONTACT_COLS), contact_rows(start, stop, now))
        conn.executemany(_insert("phones", PHONE_COLS), phone_rows(start, stop))
        conn.executemany(_insert("contact_terms", ("id", "contact_id", "term")),
                         term_rows(start, stop))
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


async def fill_postgres(url: str, count: int) -> None:
    import asyncpg  # the bench talks COPY directly; the product never needs to

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    await conn.copy_records_to_table("users", columns=USER_COLS, records=user_rows(now))
    for start in range(1, count + 1, BATCH):
        stop = min(start + BATCH, count + 1)
        await conn.copy_records_to_table("contacts", columns=CONTACT_COLS,
                                         records=contact_rows(start, stop, now))
        await conn.copy_records_to_table("phones", columns=PHONE_COLS,
                                         records=phone_rows(start, stop))
        await conn.copy_records_to_table("contact_terms", columns=("id", "contact_id", "term"),
                                         records=term_rows(start, stop))
    for table in ("users", "contacts", "phones", "contact_terms"):
        await conn.execute(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
    # Steady state, as a production database is: a fresh bulk load left for autovacuum
    # would have it vacuum a million rows in the middle of the measured phases.
    await conn.execute("VACUUM (FREEZE, ANALYZE)")
    await conn.execute("CHECKPOINT")
    await conn.close()


async def timed(
    fns: Sequence[Callable[[int], Awaitable[object]]], rounds: int
) -> list[list[float]]:
    """Milliseconds per call of each function, interleaved so they share the same noise."""
    out: list[list[float]] = [[] for _ in fns]
    for i in range(rounds):
        for fn, times in zip(fns, out, strict=True):
            started = time.perf_counter_ns()
            await fn(i)
            times.append((time.perf_counter_ns() - started) / 1e6)
    return out


def summary(name: str, ms: list[float]) -> tuple[float, float]:
    ordered = sorted(ms)
    p50 = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"  {name:12} {len(ms) / (sum(ms) / 1000):9.0f} lookups/s   p50 {p50:6.3f} ms"
          f"   p99 {p99:6.3f} ms")
    return p50, p99


Driver = Callable[[str], Awaitable[object]]
"""The same exact-match query straight on the database driver: the floor under both."""

PHONE_SQL = "SELECT contact_id, lead_id FROM phones WHERE number = {}"


async def measure(url: str, count: int, rounds: int, driver: Driver) -> None:
    rng = random.Random(7)
    picks = [rng.randint(1, count) if rng.random() > 0.1 else count + rng.randint(1, 10**6)
             for _ in range(rounds)]
    numbers = [mobile(i) for i in picks]
    texts = [written(n, i) for i, n in enumerate(numbers)]
    db = Database(url)
    directory = PhoneDirectory(db)
    agent = Agent()
    found: list[bool] = []
    raw_query = text("SELECT contact_id, lead_id FROM phones WHERE number = :n")
    async with db.session() as session:
        conn = await session.connection()

        async def floor(i: int) -> None:
            await driver(numbers[i])

        async def raw(i: int) -> None:
            (await conn.execute(raw_query, {"n": numbers[i]})).first()

        async def ours(i: int) -> None:
            found.append(await find_owner(session, texts[i], REGION, agent) is not None)

        async def ours_with_session(i: int) -> None:
            async with db.session() as own:
                await find_owner(own, texts[i], REGION, agent)

        async def directory_owner(i: int) -> None:
            await directory.owner(texts[i], REGION, agent)

        contenders = [floor, raw, ours, ours_with_session, directory_owner]
        await timed(contenders, min(rounds, 2000))  # warm every cache
        found.clear()
        floor_ms, raw_ms, ours_ms, session_ms, directory_ms = await timed(contenders, rounds)
    directory.close()
    await db.close()
    summary("driver", floor_ms)
    _, raw_p99 = summary("raw", raw_ms)
    _, ours_p99 = summary("ours", ours_ms)
    summary("ours+session", session_ms)
    summary("directory", directory_ms)
    expected = sum(1 for i in picks if i <= count and visible_to_agent(i))
    mean_ratio = statistics.fmean(ours_ms) / statistics.fmean(raw_ms)
    print(f"  found {sum(found)}/{rounds} (expected {expected}); ours/raw: p99 "
          f"{ours_p99 / raw_p99:.2f}x, mean {mean_ratio:.2f}x")


async def search_times(url: str, count: int) -> None:
    """The contact list's search box at this size: median of 20 of each, as an agent."""
    db = Database(url)
    queries: dict[str, dict[str, Any]] = {"first page": {}, "name word": {"q": f"N{count // 2}"},
               "two words": {"q": f"l{count // 3} n{count // 3}"}, "no match": {"q": "zzz"},
               "phone": {"q": written(mobile(count // 4), 0)}, "mine": {"mine": True}}
    for label, filters in queries.items():
        ms = []
        for _ in range(20):
            started = time.perf_counter()
            page = await list_contacts(db, Agent(), region=REGION, **filters)
            ms.append((time.perf_counter() - started) * 1000)
        print(f"  search {label:10} {statistics.median(ms):7.2f} ms  ({len(page['items'])} items)")
    await db.close()


async def run_sqlite(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        await migrate(url)
        started = time.perf_counter()
        await asyncio.to_thread(fill_sqlite, path, count)
        print(f"sqlite: {count} contacts inserted in {time.perf_counter() - started:.1f} s")
        plain = sqlite3.connect(path)

        async def driver(number: str) -> object:
            return plain.execute(PHONE_SQL.format("?"), (number,)).fetchone()

        await measure(url, count, rounds, driver)
        plain.close()
        await search_times(url, count)


async def run_postgres(base: str, count: int, rounds: int) -> None:
    name = f"centralita_bench_{os.getpid()}"
    admin = create_async_engine(make_url(base).set(database="postgres"),
                                isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate(url)
        started = time.perf_counter()
        await fill_postgres(url, count)
        print(f"postgres: {count} contacts copied in {time.perf_counter() - started:.1f} s")
        import asyncpg

        plain = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
        prepared = await plain.prepare(PHONE_SQL.format("$1"))

        async def driver(number: str) -> object:
            return await prepared.fetchrow(number)

        await measure(url, count, rounds, driver)
        await plain.close()
        await search_times(url, count)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "CENTRALITA_BENCH_POSTGRES_URL", os.environ.get("CENTRALITA_TEST_POSTGRES_URL", "")))
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        asyncio.run(run_sqlite(args.contacts, args.lookups))
    if args.backend in ("postgres", "both"):
        if not args.postgres_url:
            parser.error("PostgreSQL needs --postgres-url (or eval \"$(./scripts/services.sh)\")")
        asyncio.run(run_postgres(args.postgres_url, args.contacts, args.lookups))


if __name__ == "__main__":
    main()
