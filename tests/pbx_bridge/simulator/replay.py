"""Drive the simulator with a trace's own actions over TCP and compare per channel role."""

from __future__ import annotations

import asyncio
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
    "QueueMemberStatus",
    "VarSet",
    "Newexten",
    "DeviceStateChange",
    "ExtensionStatus",
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


def channel_order(messages: list[Message]) -> list[str]:
    seen: dict[str, None] = {}
    for message in messages:
        for key in (*CHANNEL_KEYS, "LocalTwoChannel", "SpyeeChannel", "TransfereeChannel"):
            if LOCAL.fullmatch(message.get(key)):
                seen.setdefault(message.get(key))
    return list(seen)


def _owner(message: Message) -> str:
    if message.event == "OriginateResponse":
        return "originate:" + message.action_id
    for key in CHANNEL_KEYS:
        if key in message:
            return message[key]
    if "BridgeUniqueid" in message:
        return "bridge:" + message["BridgeUniqueid"]
    if message.event == "OriginateResponse":
        return "originate:" + message.action_id
    if "Interface" in message:
        return "member:" + message["Interface"]
    return "global"


def roles(messages: list[Message]) -> dict[str, list[tuple[str, ...]]]:
    """Event sequence per role: channels and bridges renamed by order of appearance."""
    names: dict[str, str] = {}
    out: dict[str, list[tuple[str, ...]]] = {}
    for message in messages:
        if not message.event or message.event in NOISE:
            continue
        owner = _owner(message)
        if owner.startswith(("Local/", "bridge:")):
            kind = "chan" if owner.startswith("Local/") else "bridge"
            count = sum(1 for v in names.values() if v.startswith(kind))
            owner = names.setdefault(owner, f"{kind}{count}")
        fields = tuple(f"{k}={message[k]}" for k in KEY_FIELDS if k in message)
        out.setdefault(owner, []).append((message.event, *fields))
    return out


def rename(raw: str, trace_order: list[str], live_order: list[str]) -> str:
    """Swap the trace's channel names in an action for the simulator's, by order seen."""
    mapping = dict(zip(trace_order, live_order, strict=False))
    return LOCAL.sub(lambda match: mapping[match.group(0)], raw)


async def _until(condition: Callable[[], bool], deadline: float) -> None:
    """Wait for a condition on the simulator, polling the event loop, with a deadline."""
    loop = asyncio.get_running_loop()
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the simulator did not settle in time")
        await asyncio.sleep(0.005)


async def replay(name: str, speed: float = 25.0, settle_s: float = 20.0) -> list[Message]:
    """Send the trace's actions with scaled timing; return every message received."""
    trace_order = channel_order(trace_messages(name))
    async with Simulator("centralita", "not-a-secret", speed=speed) as sim:
        await sim.start()
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        parser = Parser()
        received: list[Message] = []

        async def pump() -> None:
            while data := await reader.read(65536):
                received.extend(parser.feed(data))

        pumping = asyncio.create_task(pump())
        loop = asyncio.get_running_loop()
        start = loop.time()
        for action in read_actions(name):
            await asyncio.sleep(max(0.0, start + action.at / speed - loop.time()))
            writer.write(rename(action.raw, trace_order, channel_order(received)).encode())
        deadline = loop.time() + settle_s
        await _until(lambda: len(sim.received) == len(read_actions(name)), deadline)
        await _until(lambda: not (sim.live_channels() or sim.dialplan.tasks), deadline)
        writer.write(b"Action: Ping\r\nActionID: replay-flush\r\n\r\n")
        await _until(lambda: any(m.action_id == "replay-flush" for m in received), deadline)
        writer.close()
        pumping.cancel()
        return received
