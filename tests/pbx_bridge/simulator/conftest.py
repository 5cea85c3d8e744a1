from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pbx_bridge.simulator import Simulator
from tests.pbx_bridge.simulator.client import Client


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    await Client.close_all()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator on a free loopback port, 40x faster than real time."""
    async with Simulator("centralita", "not-a-secret", speed=40) as simulator:
        await simulator.start()
        yield simulator
