"""What the roof hands every package's `setup(app, deps)`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from config import Settings
from kernel.bus import Bus

Probe = Callable[[], Awaitable[tuple[bool, Any]]]


@dataclass
class Deps:
    settings: Settings
    bus: Bus
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    probes: dict[str, Probe] = field(default_factory=dict)
    """Readiness checks by name ("database", "pbx"): each says (ok, detail)."""

    def add_probe(self, name: str, probe: Probe) -> None:
        if name in self.probes:
            raise ValueError(f"probe {name!r} registered twice")
        self.probes[name] = probe
