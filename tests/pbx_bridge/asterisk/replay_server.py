"""A real TCP AMI peer that answers actions with bytes recorded from Asterisk.

A recording (`<name>.ami` + `<name>.actions.txt`) is cut into one segment per
action: from the action's `Response` up to the next action's `Response`, so
the live events Asterisk sent in between come along. When the link sends the
n-th action, the server checks it is the recorded one, swaps the recorded
ActionID for the link's own and writes the segment back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbx_bridge.asterisk.protocol import Message, Parser

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ami"


@dataclass(frozen=True)
class Step:
    action: Message  # as recorded
    answer: bytes  # the recorded bytes, still carrying the recorded ActionID


@dataclass(frozen=True)
class Script:
    greeting: bytes
    steps: tuple[Step, ...]


def load_script(name: str) -> Script:
    raw = (FIXTURES / f"{name}.ami").read_bytes()
    greeting, _, body = raw.partition(b"\r\n")
    frames = [f + b"\r\n\r\n" for f in body.split(b"\r\n\r\n") if f]
    actions = _recorded_actions((FIXTURES / f"{name}.actions.txt").read_bytes())
    starts: list[int] = []
    for action in actions:
        marker = f"ActionID: {action.action_id}\r\n".encode()
        starts.append(
            next(
                i for i, f in enumerate(frames) if f.startswith(b"Response:") and marker in f
            )
        )
    starts.append(len(frames))
    steps = tuple(
        Step(action, b"".join(frames[starts[i] : starts[i + 1]]))
        for i, action in enumerate(actions)
    )
    return Script(greeting + b"\r\n", steps)


def _recorded_actions(text: bytes) -> list[Message]:
    blocks = [b.partition(b"\n")[2] for b in text.split(b">>> t=") if b.strip()]
    parser = Parser(expect_greeting=False)
    return [m for block in blocks for m in parser.feed(block)]


ACTION_ID = re.compile(rb"ActionID: ([^\r\n]*)\r\n")
PONG = b"Response: Success\r\nActionID: %s\r\nPing: Pong\r\nTimestamp: 1795546837.187828\r\n\r\n"


@dataclass
class Behaviour:
    """How one connection deviates from the recording."""

    silent: frozenset[str] = frozenset()  # actions never answered
    drop_on: frozenset[str] = frozenset()  # close the socket instead of answering
    answer_pings: bool = True
    prelude: bytes = b""  # written right after the greeting
    close_after_login: bool = False
    # Actions no recording holds an answer for: answered with a bare success.
    generic: frozenset[str] = frozenset()
    # Answered only when the next recorded action comes (too late for its timeout).
    late: frozenset[str] = frozenset()


@dataclass
class Connection:
    received: list[Message] = field(default_factory=list)
    opened_at: float = 0.0  # loop time of the accept
    cursor: int = 0
    ids: dict[bytes, bytes] = field(default_factory=dict)  # recorded ActionID -> the link's
    late: bytes = b""
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class ReplayServer:
    """Serve one script per connection (the last one repeats)."""

    def __init__(self, scripts: list[Script], behaviours: list[Behaviour] | None = None) -> None:
        self.scripts = scripts
        self.behaviours = behaviours or [Behaviour()]
        self.connections: list[Connection] = []
        self.changed = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> ReplayServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), within)

    def actions(self, index: int) -> list[str]:
        return [m["Action"] for m in self.connections[index].received]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.connections)
        conn = Connection(opened_at=asyncio.get_running_loop().time())
        self.connections.append(conn)
        self._writers.append(writer)
        script = self.scripts[min(index, len(self.scripts) - 1)]
        behaviour = self.behaviours[min(index, len(self.behaviours) - 1)]
        writer.write(script.greeting + behaviour.prelude)
        parser = Parser(expect_greeting=False)
        try:
            while chunk := await reader.read(65536):
                for action in parser.feed(chunk):
                    if not await self._answer(conn, action, script, behaviour, writer):
                        return
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            conn.closed.set()
            async with self.changed:
                self.changed.notify_all()

    async def _answer(
        self,
        conn: Connection,
        action: Message,
        script: Script,
        behaviour: Behaviour,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one action; False closes the connection."""
        conn.received.append(action)
        async with self.changed:
            self.changed.notify_all()
        name, action_id = action["Action"], action.action_id.encode()
        if name in behaviour.drop_on:
            return False
        if name in behaviour.silent:
            return True
        if name in behaviour.generic:
            writer.write(b"Response: Success\r\nActionID: %s\r\n\r\n" % action_id)
            return True
        step = script.steps[conn.cursor] if conn.cursor < len(script.steps) else None
        if name == "Ping" and (step is None or step.action["Action"] != "Ping"):
            if behaviour.answer_pings:
                writer.write(PONG % action_id)
            return True
        if name == "Logoff" and (step is None or step.action["Action"] != "Logoff"):
            writer.write(b"Response: Goodbye\r\nActionID: %s\r\n\r\n" % action_id)
            return False
        assert step is not None, f"{name} sent after the end of the recording"
        assert step.action["Action"] == name, f"expected {step.action['Action']}, got {name}"
        conn.cursor += 1
        conn.ids[step.action.action_id.encode()] = action_id
        # Later segments carry events of earlier actions (an OriginateResponse):
        # every recorded ActionID already sent is swapped, not just this one.
        answer = ACTION_ID.sub(
            lambda m: b"ActionID: " + conn.ids.get(m[1], m[1]) + b"\r\n", step.answer
        )
        late, conn.late = conn.late, b""
        if name in behaviour.late:
            conn.late = answer  # written just before the next action's answer
        else:
            writer.write(late + answer)
        await writer.drain()
        return not (name == "Login" and behaviour.close_after_login)


class Recorder:
    """Collects what the link hands out and lets a test wait for it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.states: list[tuple[bool, str]] = []
        self.changed = asyncio.Condition()

    def on_message(self, message: Message, received_at: float) -> None:
        assert received_at > 0
        self.messages.append(message)
        asyncio.get_running_loop().create_task(self._notify())

    def on_state(self, online: bool, reason: str) -> None:
        self.states.append((online, reason))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, predicate: Any, within: float = 5.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), within)

    def events(self, name: str) -> list[Message]:
        return [m for m in self.messages if m.event == name]
