"""The bare AMI-to-WebSocket relay the screen-pop is measured against.

The least a pop can cost on this stack: panoramisk hears `DialBegin` to an
agent leg, one indexed SQLite lookup of the caller, one JSON frame on that
agent's aiohttp WebSocket. No bus, no tracker, no access rules, no hub.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from panoramisk import Manager

AGENT_CONTEXT = "agent-answer"


class Relay:
    """Owns the AMI manager, the lookup connection and each agent's sockets."""

    def __init__(self, db_path: Path) -> None:
        self._db = sqlite3.connect(db_path, check_same_thread=False)
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self._manager: Any = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, ami: tuple[str, int], username: str, secret: str) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._socket)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        self._manager = Manager(host=ami[0], port=ami[1], username=username, secret=secret,
                                loop=asyncio.get_running_loop(), ping_delay=3600)
        self._manager.register_event("DialBegin", self._on_dial_begin)
        await self._manager.connect()
        await self._manager.authenticated_future

    async def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
        if self.runner is not None:
            await self.runner.cleanup()
        self._db.close()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        extension = request.query["ext"]
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets.setdefault(extension, set()).add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets[extension].discard(ws)
        return ws

    def _on_dial_begin(self, _manager: object, message: Any) -> None:
        if message.get("DestContext") != AGENT_CONTEXT:
            return
        caller = "+" + "".join(c for c in str(message.get("CallerIDNum", "")) if c.isdigit())
        row = self._db.execute(
            "SELECT contact_id, lead_id FROM phones WHERE number = ?", (caller,)).fetchone()
        card = {"number": caller, "contact_id": row[0] if row else None,
                "lead_id": row[1] if row else None}
        frame = json.dumps({"type": "screen_pop", "call_id": message.get("DestLinkedid"),
                            "card": card})
        for ws in self._sockets.get(str(message.get("DestExten")), ()):
            task = asyncio.create_task(ws.send_str(frame))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
