"""R1 over TCP with the real streams: a connection dies mid-call, the next one resyncs.

Connection 1 plays `reconnect_resync_before` (three calls up) and is cut
without a Logoff. The adapter reconnects; connection 2 answers its Login and
its CoreShowChannels / BridgeList / QueueStatus with Asterisk's own recorded
answers (`reconnect_resync_after`, only the ActionIDs are ours), then plays the
rest: hangups of channels this connection never saw born. Each call must end
exactly once, as read by hand in the traces (tests/pbx_bridge/asterisk).
"""

from __future__ import annotations

import asyncio
import re

from prometheus_client import CollectorRegistry

from config import Secret, Settings
from kernel.bus import InProcessBus
from kernel.events import CallEnded, Event, PbxOffline, PbxOnline
from pbx_bridge.asterisk.adapter import AsteriskAdapter
from pbx_bridge.asterisk.protocol import Parser
from tests.integration.test_trace_replay_tcp import expected_plain, plain, play
from tests.pbx_bridge.asterisk.test_tracker_resync import CALLS_AFTER_RECONNECT
from tests.pbx_bridge.asterisk.test_tracker_traces import FIXTURES

ANSWERS = {"CoreShowChannels": "-2", "QueueStatus": "-4", "BridgeList": "-5"}


def after_connection() -> tuple[bytes, bytes, dict[str, bytes], bytes]:
    """Greeting, Login answer, each list's recorded answer, and the live rest."""
    data = (FIXTURES / "reconnect_resync_after.ami").read_bytes()
    cut = data.index(b"\r\n") + 2
    frames = [f + b"\r\n\r\n" for f in data[cut:].split(b"\r\n\r\n") if f]
    answers: dict[str, bytes] = {}
    for action, suffix in ANSWERS.items():
        marker = f"ActionID: reconnect_resync_after{suffix}\r\n".encode()
        answers[action] = b"".join(f for f in frames if marker in f)
    last_list = max(i for i, f in enumerate(frames) if b"ActionID: reconnect_resync" in f)
    return data[:cut], frames[0], answers, b"".join(frames[last_list + 1:])


async def second_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    greeting, login, answers, live = after_connection()
    writer.write(greeting)
    parser, pending = Parser(expect_greeting=False), set(ANSWERS)
    while pending:
        for action in parser.feed(await reader.read(4096)):
            name, aid = action.get("Action"), action.action_id.encode()
            recorded = login if name == "Login" else answers.get(name, b"")
            writer.write(re.sub(rb"ActionID: [^\r]*", b"ActionID: " + aid, recorded))
            pending.discard(name)
    writer.write(live)
    await writer.drain()


async def test_a_cut_connection_and_a_resync_end_each_call_once() -> None:
    connections = 0
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await play("reconnect_resync_before", reader, writer)
            writer.transport.abort()  # the socket dies: no Logoff, no goodbye
            return
        await second_connection(reader, writer)
        done.set()
        await reader.read()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    bus, seen = InProcessBus(), list[Event]()

    async def record(event: Event) -> None:
        seen.append(event)

    bus.subscribe("test", record, ["*"])
    settings = Settings(ami_host="127.0.0.1", ami_port=server.sockets[0].getsockname()[1],
                        ami_secret=Secret("not-a-secret"))
    adapter = AsteriskAdapter(settings, bus, CollectorRegistry(), backoff_initial=0.01)
    await adapter.start()
    async with asyncio.timeout(30):
        await done.wait()
    await adapter.close()
    await bus.drain()
    server.close()
    await bus.close()

    links = [type(e) for e in seen if isinstance(e, PbxOnline | PbxOffline)]
    assert links == [PbxOnline, PbxOffline, PbxOnline, PbxOffline]  # the last: our own close
    ended = sorted((plain(e) for e in seen if isinstance(e, CallEnded)), key=str)
    assert ended == sorted((expected_plain(r) for r in CALLS_AFTER_RECONNECT), key=str)
    assert connections == 2
