"""The agent WebSocket hub and the embeddable call widget.

`setup(app, deps)` wires: the `AgentHub` on the bus (`HUB`), `/ws/agent`
behind the Origin guard, the call-control routes, `/widget.js`, the demo
CRM page `/` and `/login`. The PBX port is `pbx_bridge.PBX_PORT` (re-exported
here), which `pbx_bridge.setup` fills.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from kernel.deps import Deps
from pbx_bridge import PBX_PORT
from web_widget import calls, pages, sockets
from web_widget.calls import IDEMPOTENCY
from web_widget.control import DIAL_OPTIONS, HUB
from web_widget.cors import cors_middleware
from web_widget.guards import OriginGuard
from web_widget.hub import HUB_TOPICS, AgentHub
from web_widget.idempotency import IdempotencyStore
from web_widget.sockets import OPEN_SOCKETS, ORIGIN_GUARD

__all__ = ["HUB", "PBX_PORT", "AgentHub", "setup"]


def setup(app: web.Application, deps: Deps, *, hub: AgentHub | None = None) -> AgentHub:
    settings = deps.settings
    hub = hub or AgentHub()
    guard = OriginGuard(settings.public_url, settings.allowed_origins)
    app[HUB] = hub
    app[ORIGIN_GUARD] = guard
    app[OPEN_SOCKETS] = set()
    app.on_shutdown.append(sockets.close_sockets)
    app[IDEMPOTENCY] = IdempotencyStore()
    app[DIAL_OPTIONS] = {
        "region": settings.default_region,
        "national": settings.dial_national,
    }
    deps.bus.subscribe("agent-hub", hub.on_event, HUB_TOPICS)
    app.middlewares.append(cors_middleware(guard))
    app.cleanup_ctx.append(_heartbeat_sweeper(hub))
    app.add_routes(sockets.routes)
    app.add_routes(calls.routes)
    app.add_routes(pages.routes)
    return hub


def _heartbeat_sweeper(hub: AgentHub):  # type: ignore[no-untyped-def]
    """Marks late agents lagged twice per heartbeat period, for the app's lifetime."""

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(hub.heartbeat_s / 2)
            hub.check_heartbeats()

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sweep_forever(), name="hub-heartbeats")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return lifetime
