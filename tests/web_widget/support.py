"""What the widget tests share: a recording PBX port and an app with real auth on SQLite."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

import web_widget
from centralita.app import build_app
from config import Settings
from crm_core import DATABASE
from crm_core.users import add_user
from kernel.bus import Bus, InProcessBus
from pbx_bridge.port import OriginateRequest, OriginateTicket, SpyMode, TransferMode

PARTNER_ORIGIN = "http://partner.example:8000"


@dataclass
class RecordingPort:
    """A real, tiny implementation of the PbxPort protocol that records what it was asked.

    `gate`, when set by a test, holds every originate until released, so a test
    can line two requests up against each other.
    """

    name: str = "recording"
    online: bool = True
    requests: list[tuple[Any, ...]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def originate(self, request: OriginateRequest) -> OriginateTicket:
        self.requests.append(("originate", request.number, request.agent_extension))
        if self.gate is not None:
            await self.gate.wait()
        return OriginateTicket(action_id=f"orig-{next(self._ids)}")

    async def hangup(self, call_id: str) -> None:
        self.requests.append(("hangup", call_id))

    async def transfer(self, call_id: str, to: str, mode: TransferMode = "blind") -> None:
        self.requests.append(("transfer", call_id, to, mode))

    async def hold(self, call_id: str) -> None:
        self.requests.append(("hold", call_id))

    async def resume(self, call_id: str) -> None:
        self.requests.append(("resume", call_id))

    async def mute(self, call_id: str, muted: bool) -> None:
        self.requests.append(("mute", call_id, muted))

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        self.requests.append(("dtmf", call_id, digits))

    async def start_recording(self, call_id: str) -> str:
        self.requests.append(("record", call_id))
        return f"/rec/{call_id}.wav"

    async def stop_recording(self, call_id: str) -> None:
        self.requests.append(("stop-record", call_id))

    async def spy(self, call_id: str, supervisor_extension: str, mode: SpyMode) -> None:
        self.requests.append(("spy", call_id, supervisor_extension, mode))


def widget_app(db_path: Path, port: RecordingPort, **settings: Any) -> web.Application:
    """The whole app as the roof builds it, with a recording PBX port."""
    settings.setdefault("allowed_origins", (PARTNER_ORIGIN,))
    settings.setdefault("dial_national", True)
    config = Settings(database_url=f"sqlite+aiosqlite:///{db_path}", **settings)
    bus = InProcessBus()
    app = build_app(config, bus=bus)  # no PBX configured: the recording port stands in
    app[BUS] = bus
    app[web_widget.PBX_PORT] = port
    return app


BUS = web.AppKey("test_bus", Bus)

USERS = [
    ("ana", "agent", "1001", "Ana Agente"),
    ("luis", "agent", "1002", "Luis Agente"),
    ("sara", "supervisor", "2000", "Sara Supervisora"),
]
PASSWORD = "correct horse battery"


async def seed_users(app: web.Application) -> None:
    for username, role, ext, name in USERS:
        await add_user(app[DATABASE], username, role, PASSWORD, extension=ext, name=name)


async def login(client: Any, username: str, *, keep_cookie: bool = False) -> str:
    """A bearer token; the session cookie is dropped unless asked for, so requests say who."""
    resp = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    if not keep_cookie:
        client.session.cookie_jar.clear()
    token: str = (await resp.json())["token"]
    return token


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for a condition another task brings about (checked every 5 ms)."""
    for _ in range(int(within / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"condition not met within {within} s")
