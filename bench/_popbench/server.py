"""The measured side, in a process of its own: the 1M-contact databases, the real
server per backend and the bare relay, all on one loop (so the server has a core).

The driver sends a plan (simulators' ports, sizes); this side answers with each
target's HTTP port and one token per agent extension, then serves until told to stop.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiohttp import web
from phone_lookup import (
    MANAGERS,
    USER_COLS,
    fill_postgres,
    fill_sqlite,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import pbx_bridge
from _popbench.relay import Relay
from centralita import health
from centralita.app import build_app
from config import Settings
from config.settings import Secret
from crm_core.auth.tokens import API, issue_token
from crm_core.db import Database, migrate

AMI_USER, AMI_SECRET = "centralita", "bench-secret"
PG_NAME = "centralita_bench_pop"


def extension_of(user_id: int) -> str:
    """Agents 1..N ring on 1001..; the first 100 are phone_lookup's own users."""
    return str(1000 + user_id)


def agent_rows(agents: int, now: object) -> list[tuple[object, ...]]:
    """Users beyond phone_lookup's 100 managers, in its `users` column order."""
    return [(u, f"agent{u}", f"Agent {u}", "agent", extension_of(u), None, "-", "{}", True, now)
            for u in range(MANAGERS + 1, agents + 1)]


async def _postgres_agents(url: str, agents: int) -> None:
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    await conn.copy_records_to_table("users", columns=USER_COLS,
                                     records=agent_rows(agents, datetime.now(UTC)))
    await conn.execute("SELECT setval('users_id_seq', (SELECT max(id) FROM users))")
    await conn.close()


async def build_sqlite(folder: Path, contacts: int, agents: int) -> tuple[str, Path]:
    path = folder / "pop.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    started = time.perf_counter()
    await asyncio.to_thread(fill_sqlite, path, contacts, partial(agent_rows, agents))
    print(f"  sqlite: {contacts} contacts, {agents} agents in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return url, path


async def build_postgres(base: str, contacts: int, agents: int) -> str:
    await _drop_postgres(base)
    admin = create_async_engine(make_url(base).set(database="postgres"),
                                isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{PG_NAME}"'))
    await admin.dispose()
    url = make_url(base).set(database=PG_NAME).render_as_string(hide_password=False)
    await migrate(url)
    started = time.perf_counter()
    await fill_postgres(url, contacts)
    await _postgres_agents(url, agents)
    print(f"  postgres: {contacts} contacts, {agents} agents in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return url


async def _drop_postgres(base: str) -> None:
    admin = create_async_engine(make_url(base).set(database="postgres"),
                                isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
    await admin.dispose()


async def agent_tokens(url: str, agents: int) -> dict[str, str]:
    """One API token per agent, as an integration would hold (no password hashing)."""
    db = Database(url)
    tokens = {}
    for user_id in range(1, agents + 1):
        issued = await issue_token(db, user_id, API, timedelta(hours=6))
        tokens[extension_of(user_id)] = issued.token
    await db.close()
    return tokens


def popper_seconds(app: web.Application) -> tuple[float, float, int]:
    """The product's own histogram (ringing event -> pop on the bus): count and sum;
    and the events still queued on its bus (a backlog would slow the next phase)."""
    deps = app[health.DEPS]
    count = deps.metrics.get_sample_value("centralita_screen_pop_seconds_count") or 0.0
    total = deps.metrics.get_sample_value("centralita_screen_pop_seconds_sum") or 0.0
    queued = sum(s["queued"] for s in deps.bus.stats().values())
    return count, total, queued


async def start_server(url: str, ami: tuple[str, int]) -> tuple[web.AppRunner, int]:
    """The product as `centralita serve` wires it, on a free port, linked to its simulator."""
    settings = Settings(database_url=url, ami_host=ami[0], ami_port=ami[1],
                        ami_username=AMI_USER, ami_secret=Secret(AMI_SECRET))
    app = build_app(settings)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    deadline = time.monotonic() + 30
    while not getattr(app[pbx_bridge.PBX_PORT], "online", False):
        if time.monotonic() > deadline:
            raise RuntimeError("the server never logged in to its simulator")
        await asyncio.sleep(0.05)
    return runner, runner.addresses[0][1]


async def serve(conn: Connection, plan: dict[str, Any]) -> None:
    contacts, agents = plan["contacts"], plan["agents"]
    sims: dict[str, tuple[str, int]] = plan["sims"]
    runners: list[web.AppRunner] = []
    relay: Relay | None = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            sqlite_url, sqlite_path = await build_sqlite(Path(tmp), contacts, agents)
            urls = {"sqlite": sqlite_url} if "sqlite" in sims else {}
            if "postgres" in sims:
                urls["postgres"] = await build_postgres(plan["postgres_url"], contacts, agents)
            relay = Relay(sqlite_path)
            await relay.start(sims["relay"], AMI_USER, AMI_SECRET)
            ready: dict[str, Any] = {"relay": {"port": relay.port}}
            for backend, url in urls.items():
                tokens = await agent_tokens(url, agents)
                runner, port = await start_server(url, sims[backend])
                runners.append(runner)
                ready[backend] = {"port": port, "tokens": tokens}
            conn.send(ready)
            while (request := await asyncio.to_thread(conn.recv)) != "done":
                conn.send(popper_seconds(runners[list(urls).index(request)].app))
        finally:
            for runner in runners:
                await runner.cleanup()
            if relay is not None:
                await relay.close()
            if "postgres" in sims:
                await _drop_postgres(plan["postgres_url"])


def main(conn: Connection, plan: dict[str, Any]) -> None:
    """The process entry point (multiprocessing, spawn)."""
    try:
        asyncio.run(serve(conn, plan))
    except BaseException as err:
        conn.send({"error": repr(err)})
        raise
