"""The composition root: one aiohttp application from every package's `setup(app, deps)`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

import crm_core
import pbx_bridge
import web_widget
from centralita import health
from config import Settings
from kernel.bus import Bus, InProcessBus
from kernel.deps import Deps
from kernel.web import error_middleware

MAX_BODY = 2 * 1024 * 1024


def build_app(settings: Settings, *, bus: Bus | None = None) -> web.Application:
    deps = Deps(settings=settings, bus=bus or InProcessBus())
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[health.DEPS] = deps
    app.cleanup_ctx.append(_bus_lifetime(deps.bus))
    app.add_routes(health.routes)
    crm_core.setup(app, deps)
    pbx_bridge.setup(app, deps)
    web_widget.setup(app, deps)
    return app


def _bus_lifetime(bus: Bus):  # type: ignore[no-untyped-def]
    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        yield
        await bus.close()

    return lifetime
