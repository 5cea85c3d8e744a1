"""The production Asterisk adapter against the AMI simulator over real TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry

from config import Secret, Settings
from kernel.bus import InProcessBus
from kernel.events import CallEnded, CallEvent, Disposition, Event
from pbx_bridge.asterisk.adapter import AsteriskAdapter
from pbx_bridge.simulator.server import Simulator

FAST_LINK = {"backoff_initial": 0.01, "backoff_max": 0.05, "ping_interval": 5.0}


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, check: Callable[[list[Event]], bool], within: float = 10) -> None:
        async with asyncio.timeout(within):
            while not check(self.events):
                self._changed.clear()
                await self._changed.wait()

    def ended(self) -> list[CallEnded]:
        return [e for e in self.events if isinstance(e, CallEnded)]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator("centralita", "sim-secret", speed=10.0)
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def wired(sim: Simulator) -> AsyncIterator[tuple[AsteriskAdapter, Recorder]]:
    settings = Settings(ami_host=sim.host, ami_port=sim.port, ami_secret=Secret("sim-secret"))
    bus = InProcessBus()
    recorder = Recorder()
    bus.subscribe("test", recorder, ["*"])
    adapter = AsteriskAdapter(settings, bus, CollectorRegistry(), **FAST_LINK)
    await adapter.start()
    assert await adapter.link.wait_online(5)
    yield adapter, recorder
    await adapter.close()
    await bus.close()


async def test_an_inbound_call_rings_the_agent_then_ends_answered(
    sim: Simulator, wired: tuple[AsteriskAdapter, Recorder]
) -> None:
    adapter, recorder = wired
    assert await adapter.probe() == (True, {"asterisk": "online"})  # what /readyz shows
    await sim.inbound(caller="34912345678", did="912000001", talk=3)
    await recorder.wait_for(lambda ev: any(isinstance(e, CallEnded) for e in ev))
    topics = [e.topic for e in recorder.events if isinstance(e, CallEvent)]
    assert topics[0] == "call.ringing"
    assert "call.answered" in topics and topics[-1] == "call.ended"
    [ended] = recorder.ended()
    call = ended.call
    assert (call.direction.value, call.caller, call.agent, call.disposition) == (
        "in", "34912345678", "1001", Disposition.ANSWERED)
    assert call.duration_s is not None and 0.2 <= call.duration_s <= 0.5  # 3 s at 10x
