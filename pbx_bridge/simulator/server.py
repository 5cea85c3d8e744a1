"""An Asterisk stand-in on a real TCP port: AMI sessions plus a control API.

The AMI side (greeting, Login, events on/off, responses) follows the traces
byte for byte in shape; the actions themselves live in `actions.py`. The
control API (`inbound`, `queue_call`, `set_agent_behaviour`, `drop_clients`,
`run_load`) lets tests and the demo make calls happen without sending AMI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pbx_bridge.asterisk.protocol import Message, Parser, encode_message
from pbx_bridge.simulator import actions
from pbx_bridge.simulator.channels import Channel, Pbx
from pbx_bridge.simulator.dialplan import Dialplan, Did, Phone
from pbx_bridge.simulator.queues import Queues

log = logging.getLogger(__name__)
GREETING = b"Asterisk Call Manager/11.0.0\r\n"
BEHAVIOURS = ("answer", "noanswer", "busy")
SLOW_CLIENT_BYTES = 16 * 1024 * 1024


@dataclass(eq=False)
class Session:
    """One AMI connection: whether it logged in and wants events."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    number: int
    logged_in: bool = False
    events: bool = True
    username: str = ""
    challenge: str = ""  # set by Action: Challenge (MD5 login)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, message: Message) -> None:
        """Queue a message; a client that stops reading is cut, as Asterisk does."""
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > SLOW_CLIENT_BYTES:
            log.warning("AMI client %s stopped reading; disconnecting it", self.number)
            self.closed.set()
            self.writer.transport.abort()
            return
        self.writer.write(encode_message(message))

    def respond(self, request: Message, status: str = "Success", **fields: str) -> None:
        headers = [("Response", status)]
        if request.action_id:
            headers.append(("ActionID", request.action_id))
        headers.extend(fields.items())
        self.send(Message(headers))


@dataclass(frozen=True)
class ReceivedAction:
    """An action as it reached the PBX, for tests to assert on."""

    session: int
    message: Message

    @property
    def name(self) -> str:
        return self.message.get("Action")


class Simulator:
    """Owns the PBX state, the AMI listener and every connected session."""

    def __init__(self, username: str, secret: str, speed: float = 1.0) -> None:
        self.username, self.secret = username, secret
        self.pbx = Pbx(self._broadcast, speed)
        self.dialplan = Dialplan(self.pbx)
        self.queues = Queues(self.pbx, self.dialplan)
        self.dialplan.queues = self.queues
        self.sessions: list[Session] = []
        self.received: list[ReceivedAction] = []
        self.server: asyncio.AbstractServer | None = None
        self.host, self.port = "127.0.0.1", 0
        self._session_seq = 0
        self._background: set[asyncio.Task[Any]] = set()

    # -- lifecycle ----------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, host, port)
        self.host, self.port = self.server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        for task in [*self.dialplan.tasks, *self._background]:
            task.cancel()
        sessions = list(self.sessions)
        await self.drop_clients()
        for session in sessions:
            await session.finished.wait()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def __aenter__(self) -> Simulator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- AMI sessions -------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._session_seq += 1
        session = Session(reader, writer, self._session_seq)
        self.sessions.append(session)
        writer.write(GREETING)
        parser = Parser(expect_greeting=False)
        try:
            while not session.closed.is_set():
                data = await reader.read(65536)
                if not data:
                    break
                for request in parser.feed(data):
                    self.received.append(ReceivedAction(session.number, request))
                    await actions.handle(self, session, request)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.sessions.remove(session)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            session.finished.set()

    def _broadcast(self, message: Message) -> None:
        for session in self.sessions:
            if session.logged_in and session.events:
                session.send(message)

    async def drop_clients(self) -> None:
        """Cut every AMI connection at once, as a network failure would."""
        for session in list(self.sessions):
            session.closed.set()
            transport = session.writer.transport
            transport.abort()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- control API --------------------------------------------------------------

    @property
    def actions(self) -> list[Message]:
        """Every action received, parsed, in arrival order."""
        return [received.message for received in self.received]

    def live_channels(self) -> list[Channel]:
        return list(self.pbx.channels.values())

    def set_agent_behaviour(
        self, extension: str, behaviour: str, answer_after: float = 2.0
    ) -> None:
        """Make agent `extension` answer (after N s), never answer, or be busy."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}, not {behaviour!r}")
        phone = {
            "answer": Phone(ring=answer_after),
            "noanswer": Phone(ring=None),
            "busy": Phone(busy=True, ringing_tone=False),
        }[behaviour]
        self.dialplan.set_agent(extension, phone)
        for queue in self.queues.queues.values():
            for member in queue.members:
                if member.exten == extension:
                    member.valid = True

    def set_customer_behaviour(
        self, number: str, behaviour: str, answer_after: float = 2.0, talk: float = 5.0
    ) -> None:
        """How a `pstn-out` number (a customer the dialer or click-to-call dials) acts:
        answer after N s and hang up T s later, never answer, busy, or congestion."""
        phones = {
            "answer": Phone(ring=answer_after, talk=talk),
            "noanswer": Phone(ring=None),
            "busy": Phone(busy=True, ringing_tone=False),
            "congestion": Phone(congestion=True, ringing_tone=False),
        }
        if behaviour not in phones:
            raise ValueError(f"behaviour must be one of {sorted(phones)}, not {behaviour!r}")
        self.dialplan.customers[number] = phones[behaviour]

    async def inbound(
        self,
        caller: str = "34912345678",
        extension: str = "1001",
        answer_after: float | None = 2.0,
        talk: float = 3.0,
        give_up_after: float = 30.0,
        did: str | None = None,
    ) -> Channel:
        """A PSTN call to agent `extension` (or to a README DID), like the traces'
        `Originate` to `Local/<DID>@from-pstn`; returns the caller's ;2 channel."""
        variables = f"TALK={talk}"
        if did is None:
            # Each agent has a DID of its own that dials it, as a trunk's DID would:
            # the outside line is then a number, never the extension itself.
            did = f"9109{extension:0>5}"
            self.dialplan.dids.setdefault(did, Did(exten=extension))
            ring = "never" if answer_after is None else str(answer_after)
            variables += f",AGENT_RING={ring}"
        request = Message.of(
            Action="Originate",
            Channel=f"Local/{did}@from-pstn",
            Context="caller-script",
            Exten="talk",
            Priority="1",
            CallerID=f'"{caller}" <{caller}>',
            Timeout=str(int(give_up_after * 1000)),
            Variable=variables,
        )
        two, _ = await actions.start_originate(self, request, None)
        return two

    async def queue_call(
        self, caller: str = "34912345678", queue: str = "ventas", talk: float = 10.0
    ) -> Channel:
        """A PSTN call into a queue (DID 912000010 for ventas, 912000011 for soporte)."""
        did = {"ventas": "912000010", "soporte": "912000011"}[queue]
        return await self.inbound(caller=caller, did=did, talk=talk)

    async def run_load(
        self, calls_per_second: float, duration_s: float, mix: Mapping[str, float] | None = None
    ) -> dict[str, int]:
        """Start inbound calls at a steady rate; returns how many of each kind began."""
        mix = mix or {"answered": 0.7, "missed": 0.2, "busy": 0.1}
        kinds, weights = list(mix), list(mix.values())
        counts = dict.fromkeys(kinds, 0)
        rng = random.Random(7)
        loop = asyncio.get_running_loop()
        started = loop.time()
        total = int(calls_per_second * duration_s)
        for index in range(total):
            await asyncio.sleep(max(0.0, started + index / calls_per_second - loop.time()))
            kind = rng.choices(kinds, weights)[0]
            counts[kind] += 1
            did = {"answered": "912000001", "missed": "912000002", "busy": "912000003"}.get(kind)
            if did is None:
                await self.queue_call(caller=f"3460{index:07d}")
            else:
                give_up = 9.0 if kind == "missed" else 30.0  # the trace's missed call: 9 s
                await self.inbound(caller=f"3460{index:07d}", did=did, give_up_after=give_up)
        return counts


async def run_simulator(
    host: str,
    port: int,
    username: str,
    secret: str,
    speed: float = 1.0,
    demo_calls_every: float | None = None,
) -> Simulator:
    """Start a listening simulator (what `centralita simulate` runs)."""
    sim = Simulator(username, secret, speed)
    await sim.start(host, port)
    if demo_calls_every:
        sim.spawn(_demo_calls(sim, demo_calls_every))
    log.info("AMI simulator listening on %s:%s", sim.host, sim.port)
    return sim


async def _demo_calls(sim: Simulator, every: float) -> None:
    """A gentle mix of calls for the demo: answered, missed, queued."""
    dids = ["912000001", "912000010", "912000001", "912000002"]
    number = 0
    while True:
        await asyncio.sleep(every)
        number += 1
        await sim.inbound(
            caller=f"34600{number:06d}", did=dids[number % len(dids)], talk=20.0, give_up_after=15.0
        )
