"""The composition root: one aiohttp application from every package's `setup(app, deps)`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable

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
    app.on_startup.append(_quiet_collector)
    app.add_routes(health.routes)
    crm_core.setup(app, deps)
    pbx_bridge.setup(app, deps)
    web_widget.setup(app, deps)
    return app


async def _quiet_collector(_app: web.Application) -> None:
    """Keep full garbage collections rare and short once the server is up.

    A full collection walks every tracked object; with thousands of agent
    sockets it takes tens of milliseconds, and Python's default thresholds run
    one every few tens of thousands of allocations: a pop that meets one is late.
    What exists at start-up (modules, mappers, the schema) never becomes garbage,
    so it leaves the collector's view, and full collections wait for more churn.
    """
    gc.collect()
    gc.freeze()
    young, middle, _old = gc.get_threshold()
    gc.set_threshold(max(young, 10_000), middle, 100)


def _bus_lifetime(bus: Bus) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        yield
        await bus.close()

    return lifetime
