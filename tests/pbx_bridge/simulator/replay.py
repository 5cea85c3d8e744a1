"""Drive the simulator with a trace's own actions over TCP and compare per channel role."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pbx_bridge.asterisk.protocol import Message, Parser
from pbx_bridge.simulator import Simulator

FIXTURES = Path(__file__).parents[2] / "fixtures" / "ami"
# QueueMemberStatus is left out: how often Asterisk repeats it per member differs
# from the simulator's (it is sent on every device-state change).
NOISE = {
    "VarSet",
    "Newexten",
    "DeviceStateChange",
    "FullyBooted",
    "SuccessfulAuth",
}
KEY_FIELDS = (
    "Digit",
    "Direction",
    "ChannelState",
    "Cause",
    "DialStatus",
    "Reason",
    "Queue",
    "BridgeType",
    "Response",
    "Result",
    "Status",
    "Paused",
    "Position",
    "OriginalPosition",
    "Count",
    "MemberName",
    "ListItems",
    "Application",
    "CallerIDNum",
    "ConnectedLineNum",
    "EventList",
)
CHANNEL_KEYS = ("Channel", "DestChannel", "LocalOneChannel", "SpyerChannel", "TransfererChannel")
LOCAL = re.compile(r"Local/[^ ,]+?-[0-9a-f]{8};[12]")


@dataclass
class TraceAction:
    at: float
    raw: str


def read_actions(name: str) -> list[TraceAction]:
    text = (FIXTURES / f"{name}.actions.txt").read_bytes().decode()
    out = []
    for chunk in text.split(">>> t=+")[1:]:
        stamp, _, body = chunk.partition("s\r\n")
        out.append(TraceAction(float(stamp), body))
    return out


def trace_messages(name: str) -> list[Message]:
    return Parser().feed((FIXTURES / f"{name}.ami").read_bytes())


def significant(messages: list[Message]) -> int:
    return sum(1 for m in messages if m.event not in NOISE)


def seen_before_actions(name: str) -> list[int]:
    """For each action, how many significant messages Asterisk had sent before it.

    The trace scripts reacted to events (MixMonitor on BridgeEnter, Hangup once
    the call is up); replaying on time alone races the sped-up simulator.
    """
    rows = (FIXTURES / f"{name}.rxtiming.tsv").read_text().splitlines()[1:]
    arrivals = [
        (float(t), int(offset) + int(size)) for t, offset, size in (r.split("\t") for r in rows)
    ]
    raw = (FIXTURES / f"{name}.ami").read_bytes()
    counts = []
    for action in read_actions(name):
        # Action times are rounded to the millisecond: only count what surely came first.
        upto = max((end for t, end in arrivals if t < action.at - 0.0005), default=0)
        counts.append(significant(Parser().feed(raw[:upto])))
    return counts


def channel_order(messages: list[Message]) -> list[str]:
    seen: dict[str, None] = {}
    for message in messages:
        for key in (*CHANNEL_KEYS, "LocalTwoChannel", "SpyeeChannel", "TransfereeChannel"):
            if LOCAL.fullmatch(message.get(key)):
                seen.setdefault(message.get(key))
    return list(seen)


def bridge_order(messages: list[Message]) -> list[str]:
    seen: dict[str, None] = {}
    for message in messages:
        if "BridgeUniqueid" in message:
            seen.setdefault(message["BridgeUniqueid"])
    return list(seen)


def _owner(message: Message) -> str:
    if message.event == "ExtensionStatus":
        return "hint:" + message["Exten"]
    if message.event == "OriginateResponse":
        return "originate:" + message.action_id
    for key in CHANNEL_KEYS:
        if key in message:
            return message[key]
    if "BridgeUniqueid" in message:
        return "bridge:" + message["BridgeUniqueid"]
    for key in ("Interface", "Location"):
        if key in message:
            return f"member:{message.get('Queue')}:{message[key]}"
    if "Queue" in message:
        return "queue:" + message["Queue"]
    return "global"


def roles(
    messages: list[Message], known: list[Message] | None = None
) -> dict[str, list[tuple[str, ...]]]:
    """Event sequence per role: channels and bridges renamed by order of appearance.

    `known`: messages seen earlier on another connection, whose order of
    appearance names the channels and bridges (a reconnect lists them in any order).
    """
    names = {c: f"chan{i}" for i, c in enumerate(channel_order(known or []))}
    names.update({f"bridge:{b}": f"bridge{i}" for i, b in enumerate(bridge_order(known or []))})
    out: dict[str, list[tuple[str, ...]]] = {}
    uid_role = {
        m["Uniqueid"]: names[m["Channel"]]
        for m in known or []
        if m.get("Channel") in names and "Uniqueid" in m
    }
    for message in messages:
        if not message.event:
            if message.response:
                reply = (message.response, message.get("Message"), message.get("EventList"))
                out.setdefault("response:" + message.action_id, []).append(reply)
            continue
        if message.event in NOISE:
            continue
        owner = _owner(message)
        if owner.startswith(("Local/", "bridge:")):
            kind = "chan" if owner.startswith("Local/") else "bridge"
            count = sum(1 for v in names.values() if v.startswith(kind))
            owner = names.setdefault(owner, f"{kind}{count}")
        fields = tuple(f"{k}={message[k]}" for k in KEY_FIELDS if k in message)
        if "Uniqueid" in message and owner.startswith("chan"):
            uid_role.setdefault(message["Uniqueid"], owner)
        if message.get("Linkedid") in uid_role:  # the call's first channel, as a role
            fields = (*fields, f"Linkedid={uid_role[message['Linkedid']]}")
        out.setdefault(owner, []).append((message.event, *fields))
    return out


MEANINGFUL_VARS = {
    "BRIDGEPEER",
    "DIALSTATUS",
    "MIXMONITOR_FILENAME",
    "BLINDTRANSFER",
    "ATTENDEDTRANSFER",
    "QAGENTS_ANSWER",
    "CAMPAIGN",
    "ENTRY",
    "TALK",
}


def variables(messages: list[Message]) -> dict[str, set[str]]:
    """Which meaningful channel variables each channel role had set (VarSet)."""
    names = {c: f"chan{i}" for i, c in enumerate(channel_order(messages))}
    out: dict[str, set[str]] = {}
    for message in messages:
        if message.event == "VarSet" and message.get("Variable") in MEANINGFUL_VARS:
            role = names.get(message["Channel"], message["Channel"])
            out.setdefault(role, set()).add(message["Variable"])
    return out


def shapes(messages: list[Message]) -> dict[str, set[tuple[str, ...]]]:
    """Header names, in order, of each kind of message (an event, or a response)."""
    out: dict[str, set[tuple[str, ...]]] = {}
    for message in messages:
        kind = message.event or f"Response:{message.response}"
        out.setdefault(kind, set()).add(tuple(key for key, _ in message.headers))
    return out


def all_trace_shapes() -> dict[str, set[tuple[str, ...]]]:
    union: dict[str, set[tuple[str, ...]]] = {}
    for path in FIXTURES.glob("*.ami"):
        for kind, seen in shapes(trace_messages(path.stem)).items():
            union.setdefault(kind, set()).update(seen)
    return union


def rename(raw: str, trace_order: list[str], live_order: list[str]) -> str:
    """Swap the trace's channel names in an action for the simulator's, by order seen."""
    mapping = dict(zip(trace_order, live_order, strict=False))
    return LOCAL.sub(lambda match: mapping[match.group(0)], raw)


async def until(condition: Callable[[], bool], deadline: float) -> None:
    """Wait for a condition on the simulator, polling the event loop, with a deadline."""
    loop = asyncio.get_running_loop()
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the simulator did not settle in time")
        await asyncio.sleep(0.005)


class Connection:
    """One AMI client connection that records every message it receives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.parser = Parser()
        self.received: list[Message] = []
        self.eof = asyncio.Event()
        self._pump = asyncio.create_task(self._read(reader))

    @classmethod
    async def open(cls, sim: Simulator) -> Connection:
        return cls(*await asyncio.open_connection(sim.host, sim.port))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            self.received.extend(self.parser.feed(data))
        self.eof.set()

    async def play(self, name: str, speed: float, order: list[str], seen: list[Message]) -> None:
        """Send the trace's actions at their scaled times, renaming channels as seen."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for action, needed in zip(read_actions(name), seen_before_actions(name), strict=True):
            await asyncio.sleep(max(0.0, start + action.at / speed - loop.time()))
            with contextlib.suppress(TimeoutError):
                await until(self._has_seen(needed), loop.time() + 2)
            live = channel_order([*seen, *self.received])
            self.writer.write(rename(action.raw, order, live).encode())

    def _has_seen(self, needed: int) -> Callable[[], bool]:
        return lambda: significant(self.received) >= needed

    async def flush(self, deadline: float) -> None:
        """Every byte the simulator wrote so far has arrived once a Ping is answered."""
        self.writer.write(b"Action: Ping\r\nActionID: replay-flush\r\n\r\n")
        await until(lambda: any(m.action_id == "replay-flush" for m in self.received), deadline)
        self.received = [m for m in self.received if m.action_id != "replay-flush"]

    def abort(self) -> None:
        self._pump.cancel()
        self.writer.transport.abort()
        self.writer.close()


async def replay(name: str, speed: float = 25.0, settle_s: float = 20.0) -> list[Message]:
    """Send the trace's actions with scaled timing; return every message received."""
    actions = read_actions(name)
    async with Simulator("centralita", "not-a-secret", speed=speed) as sim:
        await sim.start()
        conn = await Connection.open(sim)
        await conn.play(name, speed, channel_order(trace_messages(name)), [])
        deadline = asyncio.get_running_loop().time() + settle_s
        await until(lambda: len(sim.received) == len(actions), deadline)
        if "Action: Logoff" in actions[-1].raw:
            await asyncio.wait_for(conn.eof.wait(), settle_s)
            conn.abort()
            return conn.received
        await until(lambda: not (sim.live_channels() or sim.dialplan.tasks), deadline)
        await conn.flush(deadline)
        conn.abort()
        return conn.received


async def replay_reconnect(speed: float = 25.0) -> tuple[list[Message], list[Message]]:
    """`reconnect_resync_before` until its 3 calls are bridged, cut that socket
    abruptly, then `reconnect_resync_after` on a new one until the calls end."""
    before_order = channel_order(trace_messages("reconnect_resync_before"))
    async with Simulator("centralita", "not-a-secret", speed=speed) as sim:
        await sim.start()
        first = await Connection.open(sim)
        await first.play("reconnect_resync_before", speed, before_order, [])
        deadline = asyncio.get_running_loop().time() + 20
        await until(lambda: len(sim.pbx.bridges) == 3 and not sim.queues.waiting(), deadline)
        await first.flush(deadline)
        first.abort()
        second = await Connection.open(sim)
        await second.play("reconnect_resync_after", speed, before_order, first.received)
        await until(lambda: not (sim.live_channels() or sim.dialplan.tasks), deadline + 40)
        await second.flush(deadline + 40)
        second.abort()
        return first.received, second.received
