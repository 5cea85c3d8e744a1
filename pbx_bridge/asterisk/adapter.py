"""The Asterisk adapter: the AMI link feeding the call tracker, whose events go on the bus.

The link calls `_on_message` synchronously in arrival order; the tracker is
pure and fast, so it runs right there, and the events it returns wait in one
FIFO for a single publisher task: call events reach the bus in the order the
PBX said them, and a slow bus slows this queue, never the socket reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from config import Settings
from kernel.bus import Bus
from kernel.events import Event, PbxOffline, PbxOnline, TeamChanged
from pbx_bridge.asterisk.link import AMILink
from pbx_bridge.asterisk.port import AsteriskPort
from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.asterisk.tracker import CallTracker

log = logging.getLogger("centralita.asterisk")


class AsteriskAdapter:
    name = "asterisk"

    def __init__(
        self, settings: Settings, bus: Bus, metrics: CollectorRegistry, **link_options: Any
    ) -> None:
        """`link_options` tune the AMI link (timeouts, back-off); tests shorten them."""
        assert settings.ami_host is not None
        self._bus = bus
        self.tracker = CallTracker(trunk_patterns=settings.ami_trunk_patterns)
        bus.subscribe("asterisk.team", self._on_team, [TeamChanged.topic])
        secret = settings.ami_secret.reveal() if settings.ami_secret else ""
        self.link = AMILink(
            settings.ami_host, settings.ami_port, settings.ami_username, secret,
            on_message=self._on_message, on_connect=self._resync, on_state=self._on_state,
            **link_options,
        )
        self.port = AsteriskPort(self.link, self.tracker, settings)
        self._outbox: asyncio.Queue[tuple[Event, float]] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None
        self._lag = Histogram(
            "centralita_ami_event_lag_seconds",
            "From an AMI frame's arrival to its call event on the bus",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5),
            registry=metrics,
        )
        self._events = Counter(
            "centralita_call_events_total", "Call events published", ["topic"], registry=metrics
        )

    @property
    def online(self) -> bool:
        return bool(self.link.online)

    async def start(self) -> None:
        self._publisher = asyncio.create_task(self._publish_loop(), name="asterisk-publisher")
        await self.link.start()

    async def close(self) -> None:
        await self.link.close()
        await self._outbox.join()
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher

    async def probe(self) -> tuple[bool, object]:
        """For /readyz: `{"asterisk": "online"}` or offline."""
        return self.online, {self.name: "online" if self.online else "offline"}

    async def _on_team(self, event: Event) -> None:
        if isinstance(event, TeamChanged):
            self.tracker.rules.know_agents(event.extensions)

    def _on_message(self, message: Message, received_at: float) -> None:
        for event in self.tracker.feed(message, received_at):
            self._outbox.put_nowait((event, received_at))

    async def _resync(self, link: AMILink) -> None:
        channels = await link.send_list_action("CoreShowChannels", {})
        bridges = await link.send_list_action("BridgeList", {})
        queues = await link.send_list_action("QueueStatus", {})
        now = time.time()
        for event in self.tracker.resync(channels, bridges, queues, now):
            self._outbox.put_nowait((event, now))

    def _on_state(self, online: bool, reason: str) -> None:
        event: Event = (
            PbxOnline(pbx=self.name) if online else PbxOffline(pbx=self.name, reason=reason)
        )
        self._outbox.put_nowait((event, time.time()))

    async def _publish_loop(self) -> None:
        while True:
            event, arrived = await self._outbox.get()
            try:
                await self._bus.publish(event)
                self._events.labels(event.topic).inc()
                self._lag.observe(time.time() - arrived)
            except Exception:
                log.exception("could not publish %s", event.topic)
            finally:
                self._outbox.task_done()
