"""`centralita demo`: the server on SQLite with the AMI simulator and demo data.

What a newcomer sees within a minute: sign in as an agent, and a call from a
known client or an unknown number rings their extension every few seconds,
popping the caller's card in the widget.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import secrets
import signal

from aiohttp import web
from sqlalchemy import select

from centralita.app import build_app
from config import Secret, Settings
from crm_core.contacts import create_contact
from crm_core.db import Database, migrate
from crm_core.models import User
from crm_core.users import add_user
from pbx_bridge.simulator.server import Simulator, run_simulator

log = logging.getLogger("centralita.demo")

DEMO_USERS = (
    # username, role, extension, full name, password
    ("ana", "agent", "1001", "Ana García", "demo-ana-1001"),
    ("luis", "agent", "1002", "Luis Pérez", "demo-luis-1002"),
    ("sara", "supervisor", "1003", "Sara Romero", "demo-sara-1003"),
    ("admin", "admin", None, "Administración", "demo-admin-0000"),
)
DEMO_CONTACTS = (
    {"first_name": "Lucía", "last_name": "Martín", "company_name": "Ferretería Martín",
     "phones": [{"number": "+34 912 345 678", "kind": "work"}], "tags": ["cliente", "vip"]},
    {"kind": "company", "company_name": "Transportes Ibéricos S.L.",
     "phones": [{"number": "+34 933 112 233", "kind": "work"},
                {"number": "+34 600 123 456", "kind": "mobile"}], "tags": ["logística"]},
    {"first_name": "Jordi", "last_name": "Vidal", "company_name": "Vidal Arquitectos",
     "phones": [{"number": "+34 961 222 333", "kind": "work"}], "tags": ["presupuesto"]},
)
# Callers the demo rings the agents with: known clients and numbers no one has yet.
DEMO_CALLERS = ("34912345678", "34933112233", "34699000111", "34961222333", "34655443322")


async def seed(database_url: str, region: str) -> None:
    """Demo users and contacts, once: a second start finds them and adds nothing."""
    await migrate(database_url)
    db = Database(database_url)
    try:
        async with db.session() as session:
            if await session.scalar(select(User.id).where(User.username == "ana")) is not None:
                return
        for username, role, extension, name, password in DEMO_USERS:
            await add_user(db, username, role, password, extension=extension, name=name)
        owner = _Viewer(user_id=1, role="agent")
        for data in DEMO_CONTACTS:
            await create_contact(db, owner, {**data, "visibility": "write"}, region=region)
    finally:
        await db.close()


@dataclasses.dataclass(frozen=True)
class _Viewer:
    user_id: int
    role: str


async def ring_agents(sim: Simulator, every_s: float) -> None:
    """A call every few seconds, alternating agents and callers; it rings long enough to see."""
    extensions = itertools.cycle(("1001", "1002"))
    for caller in itertools.cycle(DEMO_CALLERS):
        await sim.inbound(caller=caller, extension=next(extensions), answer_after=8.0, talk=15.0)
        await asyncio.sleep(every_s)


async def serve_demo(settings: Settings, *, call_every_s: float = 10.0) -> None:
    secret = secrets.token_urlsafe(16)
    sim = await run_simulator("127.0.0.1", 0, settings.ami_username, secret)
    settings = dataclasses.replace(
        settings, ami_host=sim.host, ami_port=sim.port, ami_secret=Secret(secret)
    )
    await seed(settings.database_url, settings.default_region)
    runner = web.AppRunner(build_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    _announce(settings)
    ringer = asyncio.create_task(ring_agents(sim, call_every_s), name="demo-calls")
    try:
        await _until_stopped()
    finally:
        ringer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ringer
        await runner.cleanup()
        await sim.close()


def _announce(settings: Settings) -> None:
    url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}/"
    lines = [f"Centralita demo is serving at {url}", "Sign in as:"]
    for username, role, extension, _name, password in DEMO_USERS:
        ext = f", extension {extension}" if extension else ""
        lines.append(f"  {username:<6} / {password:<16} ({role}{ext})")
    lines.append("A simulated call rings ana (1001) or luis (1002) every few seconds.")
    print("\n".join(lines), flush=True)


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
