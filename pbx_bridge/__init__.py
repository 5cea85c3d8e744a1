"""PBX adapters: Asterisk (AMI) and Twilio turned into PBX-neutral call events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from kernel.deps import Deps
from pbx_bridge.port import NoPbx, PbxPort

PBX_PORT = web.AppKey("pbx_port", PbxPort)


def setup(app: web.Application, deps: Deps) -> None:
    """Open the configured PBX link for the app's lifetime and expose its port."""
    app[PBX_PORT] = NoPbx()
    if deps.settings.ami_host is None:
        return
    from pbx_bridge.asterisk.adapter import AsteriskAdapter

    adapter = AsteriskAdapter(deps.settings, deps.bus, deps.metrics)

    async def asterisk_lifetime(app: web.Application) -> AsyncIterator[None]:
        await adapter.start()
        app[PBX_PORT] = adapter.port
        yield
        await adapter.close()

    app.cleanup_ctx.append(asterisk_lifetime)
    deps.add_probe("pbx", adapter.probe)
