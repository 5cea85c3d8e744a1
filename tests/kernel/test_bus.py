import asyncio
import logging

import pytest

from kernel.bus import InProcessBus, topic_matches
from kernel.events import (
    CallInfo,
    CallRinging,
    CallState,
    Direction,
    Event,
    PbxOffline,
    ScreenPop,
    TeamChanged,
    from_dict,
)


def ringing(n: int) -> CallRinging:
    info = CallInfo(f"call-{n}", Direction.INBOUND, "+34912345678", "1001", CallState.RINGING)
    return CallRinging(call=info)


def test_topic_patterns() -> None:
    assert topic_matches("*", "call.ringing")
    assert topic_matches("call.*", "call.ended")
    assert not topic_matches("call.*", "pbx.offline")
    assert topic_matches("pbx.offline", "pbx.offline")
    assert not topic_matches("pbx.offline", "pbx.online")


async def test_each_subscriber_sees_its_topics_in_publish_order() -> None:
    bus = InProcessBus()
    calls: list[str] = []
    links: list[str] = []

    async def on_call(event: Event) -> None:
        assert isinstance(event, CallRinging)
        calls.append(event.call.call_id)

    async def on_link(event: Event) -> None:
        links.append(event.topic)

    bus.subscribe("calls", on_call, ["call.*"])
    bus.subscribe("links", on_link, ["pbx.*"])
    for n in range(5):
        await bus.publish(ringing(n))
    await bus.publish(PbxOffline(reason="socket closed"))
    await bus.drain()
    assert calls == [f"call-{n}" for n in range(5)]
    assert links == ["pbx.offline"]
    await bus.close()


async def test_a_failing_subscriber_never_stops_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InProcessBus()
    seen: list[int] = []

    async def broken(event: Event) -> None:
        raise RuntimeError("boom")

    async def healthy(event: Event) -> None:
        assert isinstance(event, CallRinging)
        seen.append(int(event.call.call_id.split("-")[1]))

    bus.subscribe("broken", broken, ["*"])
    bus.subscribe("healthy", healthy, ["call.ringing"])
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            await bus.publish(ringing(n))
        await bus.drain()
    assert seen == [0, 1, 2]
    assert bus.stats()["broken"] == {"queued": 0, "delivered": 0, "failures": 3}
    assert bus.stats()["healthy"]["delivered"] == 3
    assert "subscriber broken failed on call.ringing" in caplog.text
    await bus.close()


async def test_no_event_lost_under_ten_thousand_publishes_with_back_pressure() -> None:
    bus = InProcessBus(queue_size=64)
    fast: list[str] = []
    slow: list[str] = []

    async def on_fast(event: Event) -> None:
        fast.append(event.call.call_id)  # type: ignore[attr-defined]

    async def on_slow(event: Event) -> None:
        await asyncio.sleep(0)  # yields on every event: the queue fills, publish must wait
        slow.append(event.call.call_id)  # type: ignore[attr-defined]

    bus.subscribe("fast", on_fast, ["call.*"])
    bus.subscribe("slow", on_slow, ["call.*"])
    publishers = [
        asyncio.create_task(_publish_range(bus, start, 2_500)) for start in range(0, 10_000, 2_500)
    ]
    await asyncio.gather(*publishers)
    await bus.drain()
    expected = {f"call-{n}" for n in range(10_000)}
    assert len(fast) == len(slow) == 10_000
    assert set(fast) == set(slow) == expected
    # per publisher, order is kept for each subscriber
    for start in range(0, 10_000, 2_500):
        mine = [c for c in slow if start <= int(c.split("-")[1]) < start + 2_500]
        assert mine == [f"call-{n}" for n in range(start, start + 2_500)]
    await bus.close()


async def _publish_range(bus: InProcessBus, start: int, count: int) -> None:
    for n in range(start, start + count):
        await bus.publish(ringing(n))


async def test_closed_bus_drains_then_drops() -> None:
    bus = InProcessBus()
    got: list[str] = []

    async def handler(event: Event) -> None:
        got.append(event.topic)

    bus.subscribe("h", handler, ["*"])
    await bus.publish(PbxOffline())
    await bus.close()
    await bus.publish(PbxOffline())
    assert got == ["pbx.offline"]
    with pytest.raises(RuntimeError):
        bus.subscribe("late", handler, ["*"])


def test_events_round_trip_through_their_wire_shape() -> None:
    events: list[Event] = [
        ringing(7),
        PbxOffline(reason="ping unanswered", at=1.5),
        ScreenPop(call_id="c", agents=("1001", "1002"), card={"name": "Ana"}, at=2.0),
        TeamChanged(extensions=("1001", "20015550"), at=3.0),
    ]
    for event in events:
        assert from_dict(event.to_dict()) == event
    assert ringing(1).to_dict()["call"]["direction"] == "in"
