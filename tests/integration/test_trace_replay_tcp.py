"""Every recorded Asterisk stream, replayed byte for byte over TCP into the production adapter.

A tiny server plays a trace: the greeting, our Login answered with the
trace's own response (only the ActionID is ours), empty answers to the
adapter's resync lists, then every remaining byte in the trace's recv()
chunks at 20x the recorded pace. The calls that reach the bus must be the
ones written by hand from reading the trace (tests/pbx_bridge/asterisk).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from config import Secret, Settings
from kernel.bus import InProcessBus
from kernel.events import CallEnded, Event, PbxOnline
from pbx_bridge.asterisk.adapter import AsteriskAdapter
from pbx_bridge.asterisk.protocol import Parser
from tests.pbx_bridge.asterisk.test_tracker_resync import DIALER_CALLS
from tests.pbx_bridge.asterisk.test_tracker_traces import EXPECTED_CALLS, FIXTURES

SPEED = 20.0
LIST_COMPLETE = {
    "CoreShowChannels": "CoreShowChannelsComplete",
    "BridgeList": "BridgeListComplete",
    "QueueStatus": "QueueStatusComplete",
}
EXPECTED = {**EXPECTED_CALLS, "dialer_outbound": DIALER_CALLS}


def chunks(name: str) -> tuple[bytes, bytes, list[tuple[float, bytes]]]:
    """The greeting, the Login response, and the rest as timed recv() chunks."""
    data = (FIXTURES / f"{name}.ami").read_bytes()
    greeting_end = data.index(b"\r\n") + 2
    login_end = data.index(b"\r\n\r\n", greeting_end) + 4
    out: list[tuple[float, bytes]] = []
    rows = (FIXTURES / f"{name}.rxtiming.tsv").read_text().splitlines()[1:]
    for row in rows:
        t, offset, length = row.split("\t")
        start, end = max(int(offset), login_end), int(offset) + int(length)
        if end > start:
            out.append((float(t), data[start:end]))
    return data[:greeting_end], data[greeting_end:login_end], out


async def play(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               frames: list[tuple[float, bytes]] | None = None) -> None:
    """`name`'s recorded session, or its greeting and login followed by `frames`."""
    greeting, login, rest = chunks(name)
    rest = rest if frames is None else frames
    writer.write(greeting)
    parser = Parser(expect_greeting=False)
    pending = set(LIST_COMPLETE)
    while True:
        for action in parser.feed(await reader.read(4096)):
            name_ = action.get("Action")
            aid = action.action_id.encode()
            if name_ == "Login":
                writer.write(re.sub(rb"ActionID: [^\r]*", b"ActionID: " + aid, login))
                if login.startswith(b"Response: Error"):
                    pending.clear()  # refused: the adapter asks for nothing more
            elif name_ in LIST_COMPLETE:
                pending.discard(name_)
                writer.write(
                    b"Response: Success\r\nActionID: %s\r\nEventList: start\r\n"
                    b"Message: list will follow\r\n\r\nEvent: %s\r\nActionID: %s\r\n"
                    b"EventList: Complete\r\nListItems: 0\r\n\r\n"
                    % (aid, LIST_COMPLETE[name_].encode(), aid)
                )
        if not pending:
            break
    await writer.drain()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for t, chunk in rest:
        await asyncio.sleep(max(0.0, start + t / SPEED - loop.time()))
        writer.write(chunk)
        await writer.drain()


def plain(event: CallEnded) -> tuple[object, ...]:
    c = event.call
    return (c.call_id, c.direction.value, c.caller, c.callee, c.agent,
            c.disposition.value if c.disposition else "", c.queue, c.recording)


def expected_plain(row: dict[str, object]) -> tuple[object, ...]:
    return tuple(row[k] for k in ("call_id", "direction", "caller", "callee", "agent",
                                  "disposition", "queue", "recording"))


def traces() -> list[str]:
    names = sorted(p.name.removesuffix(".ami") for p in Path(FIXTURES).glob("*.ami"))
    return [n for n in names if not n.startswith("reconnect_resync")]


def test_every_single_connection_trace_is_replayed() -> None:
    assert set(traces()) == set(EXPECTED)


@pytest.mark.parametrize("name", traces())
async def test_trace_over_tcp_gives_the_calls_read_in_it(name: str) -> None:
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await play(name, reader, writer)
        done.set()
        await reader.read()  # keep the socket open until the adapter closes it

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus, seen = InProcessBus(), list[Event]()

    async def record(event: Event) -> None:
        seen.append(event)

    bus.subscribe("test", record, ["*"])
    settings = Settings(ami_host="127.0.0.1", ami_port=port, ami_secret=Secret("not-a-secret"))
    adapter = AsteriskAdapter(settings, bus, CollectorRegistry(), ping_interval=60.0)
    await adapter.start()
    async with asyncio.timeout(30):
        await done.wait()
    refused = name.endswith("badlogin")
    assert adapter.online is not refused
    await adapter.close()
    await bus.drain()
    server.close()
    await bus.close()
    assert any(isinstance(e, PbxOnline) for e in seen) is not refused
    ended = [e for e in seen if isinstance(e, CallEnded)]
    assert [plain(e) for e in ended] == [expected_plain(r) for r in EXPECTED[name]]
    for event, row in zip(ended, EXPECTED[name], strict=True):
        started, answered, finished = row["started_at"], row["answered_at"], row["ended_at"]
        assert isinstance(started, float) and isinstance(finished, float)
        call = event.call
        assert call.ended_at is not None
        # the stream ran at 20x: recorded spans shrink 20-fold, give or take scheduling
        assert abs((call.ended_at - call.started_at) - (finished - started) / SPEED) < 0.05
        if isinstance(answered, float):
            assert call.answered_at is not None
            assert abs((call.answered_at - call.started_at) - (answered - started) / SPEED) < 0.05
        else:
            assert call.answered_at is None
