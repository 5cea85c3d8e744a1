"""The CRM core: the data, its services and its REST routes. Knows nothing of PBXs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from crm_core.callers import CardReader
from crm_core.calllog import CallLog
from crm_core.db import Database, is_sqlite, migrate
from crm_core.phones import PhoneDirectory
from crm_core.screenpop import ScreenPopper
from crm_core.team import Team
from kernel.deps import Deps
from kernel.events import Direction

DATABASE = web.AppKey("database", Database)


def setup(app: web.Application, deps: Deps) -> None:
    from crm_core.http.context import PHONES  # the routes import this module: not at the top

    url = deps.settings.database_url

    async def database_lifetime(app: web.Application) -> AsyncIterator[None]:
        if is_sqlite(url):
            # A single-node SQLite install upgrades itself; PostgreSQL clusters run
            # `centralita migrate` once, so two nodes never race on the schema.
            await migrate(url)
        db = Database(url)
        phones = PhoneDirectory(db)
        cards = CardReader(db, phones)
        app[DATABASE], app[PHONES] = db, phones
        team = Team(db, deps.bus)
        _listen(db, cards, team, deps)
        await team.refresh()  # before the PBX link opens: its first calls know the team
        watch = asyncio.create_task(team.watch(), name="team-watch")
        yield
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        phones.close()
        cards.close()
        await db.close()

    async def database_probe() -> tuple[bool, object]:
        ok = DATABASE in app and await app[DATABASE].ping()
        return ok, "up" if ok else "down"

    app.cleanup_ctx.append(database_lifetime)
    deps.add_probe("database", database_probe)

    # Imported here: the routes import `DATABASE` from this module.
    from crm_core.http import setup_routes

    setup_routes(app, deps.settings)


def _listen(db: Database, cards: CardReader, team: Team, deps: Deps) -> None:
    """The CRM's bus subscribers: the call log and the screen-pop."""
    settings = deps.settings
    leads_for = frozenset(
        d for d, on in ((Direction.INBOUND, settings.leads_on_inbound),
                        (Direction.OUTBOUND, settings.leads_on_outbound)) if on
    )
    region = settings.default_region
    # The pop first: the bus wakes subscribers in this order, so the card's query reaches
    # the database ahead of the call log's write for the same ringing event.
    ScreenPopper(db, deps.bus, region=region, leads_for=leads_for, metrics=deps.metrics,
                 reader=cards, team=team).subscribe(deps.bus)
    CallLog(db, region=region, create_leads=leads_for).subscribe(deps.bus)
