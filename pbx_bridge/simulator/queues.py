"""app_queue as the traces show it: `ventas` (ringall) and `soporte` (rrmemory).

Members are Local channels into `queue-agents`; whether 2001 answers is read
from the global QAGENTS_ANSWER when it is called, like the real dialplan. The
member events (`QueueMemberStatus`, `QueueMemberPause`, ...) and the list
items of `QueueStatus`/`QueueSummary` are built here from the same state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pbx_bridge.simulator import flows
from pbx_bridge.simulator.channels import Channel, Pbx
from pbx_bridge.simulator.flows import ANSWER, CANCEL, Leg

if TYPE_CHECKING:
    from pbx_bridge.simulator.dialplan import Dialplan


@dataclass(eq=False)
class Member:
    interface: str
    name: str
    membership: str = "static"
    penalty: int = 0
    paused: bool = False
    reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = field(default_factory=lambda: int(time.time()))
    current: Channel | None = None
    ringing: bool = False
    valid: bool = True  # its extension exists in queue-agents (else device state 4)

    @property
    def exten(self) -> str:
        return self.interface.split("/", 1)[1].split("@", 1)[0]

    @property
    def status(self) -> int:
        """Device state: 4 invalid extension, 2 in use (also while ringing), 1 free."""
        if not self.valid:
            return 4
        busy = self.ringing or (self.current is not None and not self.current.gone)
        return 2 if busy else 1

    def fields(
        self, name_key: str = "MemberName", iface_key: str = "Interface"
    ) -> list[tuple[str, str]]:
        return [
            (name_key, self.name),
            (iface_key, self.interface),
            ("StateInterface", self.interface),
            ("Membership", self.membership),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "1" if self.current is not None and not self.current.gone else "0"),
            ("Status", str(self.status)),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.reason),
        ]


@dataclass(eq=False)
class Queue:
    name: str
    strategy: str
    ring_timeout: float
    members: list[Member]
    callers: list[Channel] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def member(self, interface: str) -> Member | None:
        return next((m for m in self.members if m.interface == interface), None)

    def free_members(self) -> list[Member]:
        return [m for m in self.members if not m.paused and m.status == 1]


def default_queues() -> dict[str, Queue]:
    agent_2001 = Member("Local/2001@queue-agents/n", "Agente 2001")
    agent_2002 = Member("Local/2002@queue-agents/n", "Agente 2002")
    soporte_2002 = Member("Local/2002@queue-agents/n", "Agente 2002")
    return {
        "ventas": Queue("ventas", "ringall", 15.0, [agent_2001, agent_2002]),
        "soporte": Queue("soporte", "rrmemory", 4.0, [soporte_2002]),
    }


class Queues:
    """The queues plus the two applications that watch calls: Queue and ChanSpy."""

    def __init__(self, pbx: Pbx, dialplan: Dialplan) -> None:
        self.pbx = pbx
        self.dialplan = dialplan
        self.queues = default_queues()

    def all_callers(self) -> list[Channel]:
        return [caller for queue in self.queues.values() for caller in queue.callers]

    def waiting(self) -> int:
        """How many callers wait in any queue (none once every call is connected)."""
        return sum(len(queue.callers) for queue in self.queues.values())

    def member_event(self, name: str, queue: Queue, member: Member) -> None:
        self.pbx.event(
            name,
            "agent,all",
            [("Queue", queue.name), *member.fields(), ("Ringinuse", "0"), ("Wrapuptime", "0")],
        )

    def _touch(self, queue: Queue, member: Member) -> None:
        """A member's device changed: every queue holding that interface reports it."""
        for other in self.queues.values():
            same = member if other is queue else other.member(member.interface)
            if same is not None:
                same.ringing, same.current = member.ringing, member.current
                self.member_event("QueueMemberStatus", other, same)
            other.changed.set()

    async def enter(self, caller: Channel, name: str) -> None:
        """Queue(name): wait on hold music until a member answers or the caller goes."""
        pbx, queue = self.pbx, self.queues[name]
        queue.callers.append(caller)
        caller.application, caller.app_data = "Queue", f"{name},,,,60"
        joined = time.monotonic()
        pbx.event(
            "QueueCallerJoin",
            "agent,all",
            [
                *caller.fields(),
                ("Queue", name),
                ("Position", str(len(queue.callers))),
                ("Count", str(len(queue.callers))),
            ],
        )
        pbx.event("MusicOnHoldStart", "call,all", [*caller.fields(), ("Class", "default")])
        original = len(queue.callers)
        caller.before_end.append(lambda: self._abandon(queue, caller, joined, original))
        while not caller.gone:
            free = queue.free_members() if queue.callers and queue.callers[0] is caller else []
            if not free:
                queue.changed.clear()
                await self._wait_change(queue, caller)
                if not caller.gone and queue.free_members():
                    await pbx.sleep(0.5)
                continue
            if queue.strategy != "ringall":
                free = free[:1]
            if await self._ring(queue, caller, free, joined):
                return

    async def _wait_change(self, queue: Queue, caller: Channel) -> None:
        waits = [
            asyncio.ensure_future(queue.changed.wait()),
            asyncio.ensure_future(caller.hungup.wait()),
        ]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()

    async def _ring(
        self, queue: Queue, caller: Channel, members: list[Member], joined: float
    ) -> bool:
        pbx = self.pbx
        legs: dict[Leg, Member] = {}
        ring_started = time.monotonic()
        for member in members:
            called = self._agent_called(queue, caller, member)
            leg = flows.new_leg(
                pbx,
                caller,
                member.exten,
                "queue-agents",
                (caller.cid_num, caller.cid_name),
                before_dial=called,
                connected_on_ring=True,
            )
            member.ringing = True
            legs[leg] = member
            self.dialplan.start_far_end(leg)
            self._touch(queue, member)
        winner = await self._first_answer(list(legs), caller, queue.ring_timeout)
        if winner is None:
            if caller.gone:
                return True
            for leg, member in legs.items():
                member.ringing = False
                pbx.event(
                    "AgentRingNoAnswer",
                    "agent,all",
                    [
                        *caller.fields(),
                        *leg.one.fields("Dest"),
                        ("Queue", queue.name),
                        ("Interface", member.interface),
                        ("MemberName", member.name),
                        ("RingTime", str(int(queue.ring_timeout))),
                    ],
                )
                flows.end_leg(pbx, leg, CANCEL, 0)
            await pbx.sleep(1.0)
            return False
        ring_time = round((time.monotonic() - ring_started) * pbx.speed)
        self._connect(queue, caller, legs, winner, (joined, ring_time))
        return True

    def _agent_called(self, queue: Queue, caller: Channel, member: Member) -> Callable[[Leg], None]:
        def called(leg: Leg) -> None:
            self.pbx.event(
                "AgentCalled",
                "agent,all",
                [
                    *caller.fields(),
                    *leg.one.fields("Dest"),
                    ("Queue", queue.name),
                    ("Interface", member.interface),
                    ("MemberName", member.name),
                ],
            )

        return called

    async def _first_answer(self, legs: list[Leg], caller: Channel, ring_s: float) -> Leg | None:
        waits: list[asyncio.Future[Any]] = [leg.outcome for leg in legs]
        gone = asyncio.ensure_future(caller.hungup.wait())
        try:
            deadline = time.monotonic() + ring_s / self.pbx.speed
            while True:
                for leg in legs:
                    if leg.outcome.done() and leg.outcome.result() == ANSWER:
                        return leg
                left = deadline - time.monotonic()
                pending = [w for w in waits if not w.done()]
                if caller.gone or left <= 0 or not pending:
                    return None
                await asyncio.wait(
                    [*pending, gone], timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            gone.cancel()

    def _connect(
        self,
        queue: Queue,
        caller: Channel,
        legs: dict[Leg, Member],
        winner: Leg,
        times: tuple[float, int],
    ) -> None:
        """A member answered: cancel the others, leave the queue, bridge, and on the
        first BridgeLeave report AgentComplete (it precedes the bridge events)."""
        pbx = self.pbx
        member = legs[winner]
        caller.before_end.clear()
        pbx.dial_end(caller, winner.one, ANSWER)
        for leg, other in legs.items():
            other.ringing = False
            if leg is not winner:
                flows.end_leg(pbx, leg, CANCEL, 26, twice=True)
                self._touch(queue, other)
        if winner in caller.dialing:
            caller.dialing.remove(winner)
        joined, ring_time = times
        hold = str(round((time.monotonic() - joined) * pbx.speed))
        self._leave(queue, caller)
        member.current = winner.one
        agent = [
            *caller.fields(),
            *winner.one.fields("Dest"),
            ("Queue", queue.name),
            ("Interface", member.interface),
            ("MemberName", member.name),
            ("HoldTime", hold),
        ]
        pbx.event("AgentConnect", "agent,all", [*agent, ("RingTime", str(ring_time))])
        bridge = pbx.bridge_create()
        pbx.bridge_enter(bridge, winner.one)
        pbx.bridge_enter(bridge, caller)
        bridge.before_leave.append(self._completion(queue, member, agent))
        winner.one.before_end.append(lambda: self.dialplan.spawn(self._released(queue, member)))

    def _leave(self, queue: Queue, caller: Channel) -> None:
        """Hold music stops and the caller leaves the queue for an agent."""
        self.pbx.event("MusicOnHoldStop", "call,all", caller.fields())
        queue.callers.remove(caller)
        fields = [("Queue", queue.name), ("Position", "1"), ("Count", str(len(queue.callers)))]
        self.pbx.event("QueueCallerLeave", "agent,all", [*caller.fields(), *fields])

    def _completion(
        self, queue: Queue, member: Member, agent: list[tuple[str, str]]
    ) -> Callable[[], None]:
        """AgentComplete for when the bridged call ends, with the talk time so far."""
        pbx, started = self.pbx, time.monotonic()

        def complete() -> None:
            talk = str(round((time.monotonic() - started) * pbx.speed))
            fields = [*agent, ("TalkTime", talk), ("Reason", "caller")]
            pbx.event("AgentComplete", "agent,all", fields)
            queue.completed += 1
            member.calls_taken += 1
            member.last_call = int(time.time())

        return complete

    async def _released(self, queue: Queue, member: Member) -> None:
        await asyncio.sleep(0)
        self._touch(queue, member)

    def _abandon(self, queue: Queue, caller: Channel, joined: float, original: int) -> None:
        pbx = self.pbx
        pbx.event("MusicOnHoldStop", "call,all", caller.fields())
        for leg in list(caller.dialing):
            flows.end_leg(pbx, leg, CANCEL, 0, twice=True)
        for member in queue.members:
            if member.ringing:
                member.ringing = False
                self._touch(queue, member)
        position = queue.callers.index(caller) + 1 if caller in queue.callers else 1
        held = str(round((time.monotonic() - joined) * pbx.speed))
        pbx.event(
            "QueueCallerAbandon",
            "agent,all",
            [
                *caller.fields(),
                ("Queue", queue.name),
                ("Position", str(position)),
                ("OriginalPosition", str(original)),
                ("HoldTime", held),
            ],
        )
        if caller in queue.callers:
            queue.callers.remove(caller)
        queue.abandoned += 1
        pbx.event(
            "QueueCallerLeave",
            "agent,all",
            [
                *caller.fields(),
                ("Queue", queue.name),
                ("Position", str(position)),
                ("Count", str(len(queue.callers))),
            ],
        )
        queue.changed.set()

    async def spy(self, spyer: Channel, data: str) -> None:
        """ChanSpy(<channel>,opts): listen until the spied call ends, then hang up."""
        pbx = self.pbx
        target = pbx.channels.get(data.split(",", 1)[0])
        if target is not None:
            pbx.event("ChanSpyStart", "call,all", [*spyer.fields("Spyer"), *target.fields("Spyee")])
            waits = [
                asyncio.ensure_future(target.hungup.wait()),
                asyncio.ensure_future(spyer.hungup.wait()),
            ]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
            if not spyer.gone:
                pbx.event(
                    "ChanSpyStop", "call,all", [*spyer.fields("Spyer"), *target.fields("Spyee")]
                )
        if not spyer.gone:
            flows.teardown(pbx, spyer, cause=0, how="done")
