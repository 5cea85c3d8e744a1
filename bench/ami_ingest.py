"""AMI ingest on one core: parse speed against panoramisk, and end-to-end lag.

    .venv/bin/python bench/ami_ingest.py [--copies 20] [--rate 5000] [--seconds 3]

The stream is every recorded trace in tests/fixtures/ami, repeated `copies`
times with shifted Uniqueid/Linkedid, Local channel counters and ActionIDs,
and interleaved frame by frame so the copies are concurrent calls. It prints:
- messages per CPU second through our `Parser` and through panoramisk's own `AMIProtocol`
  parse (driven directly, no socket, empty callback), in the same run, for
  big reads (64 KiB) and typical ones (1500 B), and their ratio;
- messages/s through Parser + call tracker + in-process bus (when the
  tracker is there), the whole path an AMI frame takes in production;
- p50/p99 lag from a frame's arrival on the AMI link socket to its call
  event reaching a bus subscriber, with the frames sent at `rate` msgs/s
  over real TCP by a peer in another process (as Asterisk would be).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from kernel.bus import InProcessBus
from kernel.events import Event
from pbx_bridge.asterisk.link import AMILink
from pbx_bridge.asterisk.protocol import Message, Parser

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ami"
GREETING = b"Asterisk Call Manager/11.0.0\r\n"
UNIQUEID = re.compile(rb"\b(\d{10})\.(\d+)\b")
LOCAL_COUNTER = re.compile(rb"-([0-9a-f]{8});")
ACTION_ID = re.compile(rb"^ActionID: ([^\r\n]*)", re.MULTILINE)


def recorded_frames() -> list[list[bytes]]:
    """Each trace as its list of frames (CRLF, with the closing blank line)."""
    traces = []
    for path in sorted(FIXTURES.glob("*.ami")):
        body = path.read_bytes().partition(b"\r\n")[2]
        traces.append([f + b"\r\n\r\n" for f in body.split(b"\r\n\r\n") if f])
    return traces


def shifted(frame: bytes, copy: int) -> bytes:
    """The same frame as if from another, concurrent call."""
    if copy == 0:
        return frame
    frame = UNIQUEID.sub(lambda m: b"%s.%d" % (m[1], int(m[2]) + copy * 100_000), frame)
    frame = LOCAL_COUNTER.sub(lambda m: b"-%08x;" % (int(m[1], 16) + copy * 0x100000), frame)
    return ACTION_ID.sub(lambda m: b"ActionID: c%d-%s" % (copy, m[1]), frame)


def build_stream(copies: int) -> tuple[list[bytes], int]:
    """All traces, `copies` times, interleaved round-robin; frames and message count."""
    lanes = [[shifted(f, c) for trace in recorded_frames() for f in trace] for c in range(copies)]
    frames = [lane[i] for i in range(max(map(len, lanes))) for lane in lanes if i < len(lane)]
    return frames, len(frames)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def rates(runs: list[Callable[[], int]], repeat: int = 5) -> list[float]:
    """Messages per CPU second of each run, best of `repeat`, the runs interleaved.

    CPU time, not wall time, and interleaving keep other processes on a
    shared machine from tilting the comparison.
    """
    best = [0.0] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            start = time.process_time()
            count = run()
            best[i] = max(best[i], count / max(time.process_time() - start, 1e-9))
    return best


def ours(chunks: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        parser = Parser()
        return sum(len(parser.feed(chunk)) for chunk in chunks)

    return run


def panoramisk(chunks: list[bytes], total: int) -> Callable[[], int]:
    """panoramisk's parse: AMIProtocol.data_received with a no-op transport and dispatch.

    It hands out events only (responses with no waiting action are dropped), so
    the rate is over the stream's `total` messages, the same count as ours.
    """
    from panoramisk.ami_protocol import AMIProtocol

    class Factory:
        save_stream = None
        seen = 0

        def dispatch(self, message: Any) -> None:
            self.seen += 1

    class Transport:
        def write(self, data: bytes) -> None: ...

        def close(self) -> None: ...

    def run() -> int:
        protocol = AMIProtocol()
        protocol.connection_made(Transport())
        protocol.factory = factory = Factory()
        for chunk in chunks:
            protocol.data_received(chunk)
        assert factory.seen > 0
        return total

    return run


def tracker_factory() -> Callable[[], Any] | None:
    try:
        from pbx_bridge.asterisk.tracker import CallTracker
    except ImportError:
        return None
    return CallTracker


async def full_path(chunks: list[bytes], make_tracker: Callable[[], Any]) -> tuple[float, int]:
    """Parser + tracker + bus with one subscriber: messages/s and call events out."""
    bus = InProcessBus()
    delivered = 0

    async def subscriber(event: Event) -> None:
        nonlocal delivered
        delivered += 1

    bus.subscribe("bench", subscriber, ["*"])
    parser, tracker, count = Parser(), make_tracker(), 0
    start = time.process_time()
    for chunk in chunks:
        now = time.time()
        for message in parser.feed(chunk):
            count += 1
            for event in tracker.feed(message, now):
                await bus.publish(event)
    await bus.drain()
    elapsed = time.process_time() - start
    await bus.close()
    return count / elapsed, delivered


async def serve_paced(frames: list[bytes], per_second: float, seconds: float) -> asyncio.Server:
    """An AMI peer: accept the Login, then send frames at a steady rate."""
    budget = frames[: int(per_second * seconds)]

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(GREETING)
        login = Parser(expect_greeting=False)
        while not (actions := login.feed(await reader.read(4096))):
            pass
        writer.write(b"Response: Success\r\nActionID: %s\r\nMessage: Authentication accepted"
                     b"\r\n\r\n" % actions[0].action_id.encode())
        start, sent = time.perf_counter(), 0
        while sent < len(budget):
            due = min(len(budget), int((time.perf_counter() - start) * per_second) + 1)
            writer.write(b"".join(budget[sent:due]))
            sent = due
            await writer.drain()
            await asyncio.sleep(0.001)
        await reader.read()  # until the client hangs up

    return await asyncio.start_server(session, "127.0.0.1", 0)


def asterisk_process(copies: int, per_second: float, seconds: float, port_out: Connection) -> None:
    """The paced peer in its own process, as Asterisk is: it never shares our loop."""
    if hasattr(os, "sched_setaffinity"):  # off the core the measured side is pinned to
        others = set(range(os.cpu_count() or 1)) - os.sched_getaffinity(0)
        os.sched_setaffinity(0, others or os.sched_getaffinity(0))

    async def serve() -> None:
        frames, _ = build_stream(copies)
        server = await serve_paced(frames, per_second, seconds)
        port_out.send(server.sockets[0].getsockname()[1])
        await asyncio.sleep(seconds * 10 + 30)  # the parent terminates us first

    asyncio.run(serve())


async def paced_lag(
    port: int, make_tracker: Callable[[], Any], expected: int
) -> list[float]:
    """Arrival (link read) to subscriber, for every call event, at a steady rate."""
    bus, tracker = InProcessBus(), make_tracker()
    arrived: dict[int, float] = {}
    lags: list[float] = []
    outbox: asyncio.Queue[Event] = asyncio.Queue()
    seen = 0
    done = asyncio.Event()

    async def subscriber(event: Event) -> None:
        lags.append(time.time() - arrived.pop(id(event)))

    def on_message(message: Message, received_at: float) -> None:
        nonlocal seen
        seen += 1
        for event in tracker.feed(message, received_at):
            arrived[id(event)] = received_at
            outbox.put_nowait(event)
        if seen >= expected:
            done.set()

    async def publisher() -> None:
        while True:
            await bus.publish(await outbox.get())
            outbox.task_done()

    bus.subscribe("bench", subscriber, ["*"])
    link = AMILink("127.0.0.1", port, "bench", "bench", on_message=on_message)
    pump = asyncio.create_task(publisher())
    await link.start()
    await asyncio.wait_for(done.wait(), expected / 100 + 30)
    await outbox.join()
    await bus.drain()
    pump.cancel()
    await link.close()
    await bus.close()
    return lags


def measure_lag(args: argparse.Namespace, make_tracker: Callable[[], Any]) -> list[float]:
    receive, send = multiprocessing.Pipe(duplex=False)
    peer = multiprocessing.get_context("spawn").Process(
        target=asterisk_process, args=(args.copies, args.rate, args.seconds, send), daemon=True
    )
    peer.start()
    try:
        port = receive.recv()
        return asyncio.run(paced_lag(port, make_tracker, int(args.rate * args.seconds)))
    finally:
        peer.terminate()
        peer.join()


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else 0.0


def report(args: argparse.Namespace) -> None:
    frames, total = build_stream(args.copies)
    data = GREETING + b"".join(frames)
    print(f"stream: {total} messages, {len(data) / 1e6:.1f} MB, {args.copies} concurrent copies")
    for size in (65536, 1500):
        chunks = chunked(data, size)
        mine, theirs = rates([ours(chunks), panoramisk(chunks, total)])
        print(f"parse, {size:>5} B reads: ours {mine:>9,.0f} msgs/s   panoramisk "
              f"{theirs:>9,.0f} msgs/s   ratio {mine / theirs:.2f}x")
    make_tracker = tracker_factory()
    if make_tracker is None:
        print("call tracker: not present, skipped")
        return
    chunks = chunked(data, 65536)
    speed, delivered = asyncio.run(full_path(chunks, make_tracker))
    [alone] = rates([ours(chunks)])
    print(f"parse + tracker + bus: {speed:,.0f} msgs/s ({delivered} call events), "
          f"{speed / alone:.2f}x of parse alone")
    lags = measure_lag(args, make_tracker)
    print(f"lag at {args.rate:,.0f} msgs/s over TCP from another process ({len(lags)} call "
          f"events): p50 {p(lags, 0.5) * 1e3:.2f} ms  p99 {p(lags, 0.99) * 1e3:.2f} ms  "
          f"max {max(lags, default=0) * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as in production
    report(args)


if __name__ == "__main__":
    main()
