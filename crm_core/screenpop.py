"""The screen-pop listener: who is calling, for each agent a call is ringing (T4, T5).

On `call.ringing` it finds the contact or lead that owns the outside number,
as each rung agent may see it (a private client never pops on a colleague's
screen), creates a lead when the number is unknown and the setting says so,
and publishes one `screen_pop` per newly rung agent. It must answer within a
ring, so it does the indexed lookup and a few small queries, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from crm_core.callers import CardReader
from crm_core.calllog import outside_party
from crm_core.db import Database
from crm_core.leads import lead_for_unknown
from crm_core.phones import normalise_or_none
from crm_core.team import Agent, Team
from kernel.bus import Bus
from kernel.events import CallEvent, CallInfo, CallRinging, Direction, Event, ScreenPop

log = logging.getLogger("centralita.screenpop")


class ScreenPopper:
    """Pops run side by side (up to `MAX_IN_FLIGHT`): one slow card never holds up the next
    ringing call, and the bound keeps a call storm from opening unbounded sessions."""

    MAX_IN_FLIGHT = 64

    def __init__(
        self, db: Database, bus: Bus, *, region: str, leads_for: frozenset[Direction],
        metrics: CollectorRegistry, reader: CardReader, team: Team,
    ) -> None:
        self._db, self._bus, self._region, self._leads_for = db, bus, region, leads_for
        self._reader, self._team = reader, team
        self._popped: dict[str, set[str]] = {}
        self._slots = asyncio.Semaphore(self.MAX_IN_FLIGHT)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._pops = Counter("centralita_screen_pops_total", "Screen pops sent", registry=metrics)
        self._latency = Histogram(
            "centralita_screen_pop_seconds", "From the ringing event to its pop on the bus",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0), registry=metrics,
        )

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe("crm.screenpop", self.on_call_event, ["call.ringing", "call.ended"])

    async def on_call_event(self, event: Event) -> None:
        if not isinstance(event, CallEvent):
            return
        call_id = event.call.call_id
        if not isinstance(event, CallRinging):
            self._popped.pop(call_id, None)
            return
        already = self._popped.setdefault(call_id, set())
        fresh = [ext for ext in event.call.ringing if ext not in already]
        if not fresh:
            return
        already.update(fresh)
        await self._slots.acquire()
        task = asyncio.create_task(self._pop(event, fresh), name=f"pop:{call_id}")
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    async def idle(self) -> None:
        """Wait for the pops under way (tests, and a clean shutdown)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("screen pop failed", exc_info=task.exception())

    async def _pop(self, event: CallRinging, extensions: list[str]) -> None:
        for agent in await self._team.agents(extensions):
            card = await self.card_for(event.call, agent)
            pop = ScreenPop(call_id=event.call.call_id, agents=(agent.extension,), card=card)
            await self._bus.publish(pop)
            self._pops.inc()
            self._latency.observe(max(0.0, time.time() - event.at))

    async def card_for(self, call: CallInfo, viewer: Agent | None) -> dict[str, Any]:
        number = outside_party(call)
        summary = {"call_id": call.call_id, "direction": call.direction.value,
                   "caller": call.caller, "callee": call.callee, "queue": call.queue}
        e164 = normalise_or_none(number, self._region)
        if e164 is None:
            return {"kind": "internal", "name": number, "number": number, "call": summary}
        card = await self._reader.identify(e164, viewer)
        if card is None and call.direction in self._leads_for:
            dialled = call.callee if call.direction == Direction.INBOUND else call.caller
            await lead_for_unknown(self._db, e164, dialled=dialled, direction=call.direction,
                                   region=self._region)
            card = await self._reader.identify(e164, viewer)
        if card is None:
            card = {"kind": "unknown", "name": "", "number": e164}
        return {**card, "call": summary}
