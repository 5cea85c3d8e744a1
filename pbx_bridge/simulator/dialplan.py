"""The dialplan of the recorded Asterisk (fixtures README), as coroutines.

Each far end (`agent-answer`, `pstn-out`, the DIDs in `from-pstn`, ...) is a
program run on the ;2 half of the Local leg that reaches it; what an
originated ;1 does once answered (`caller-script`, `outbound`, ChanSpy) is a
program too. Agents' behaviour can be changed at run time, so tests and the
demo can make 1001 busy or absent without a new dialplan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pbx_bridge.simulator import flows
from pbx_bridge.simulator.channels import Channel, Pbx
from pbx_bridge.simulator.flows import ANSWER, BUSY, CONGESTION, NOANSWER, Leg

if TYPE_CHECKING:
    from pbx_bridge.simulator.queues import Queues


@dataclass(frozen=True)
class Phone:
    """How a far end behaves when dialled."""

    ring: float | None = 2.0  # seconds ringing before answering; None: never answers
    busy: bool = False
    congestion: bool = False
    ringing_tone: bool = True
    talk: float | None = None  # the far end hangs up after this long; None: stays up
    hold_music: float = 0.0  # MusicOnHold(default, n) right after answering
    busy_shown_late: bool = False  # pstn-out 998: Newstate Busy only after DialEnd


@dataclass(frozen=True)
class Did:
    """What a number in `from-pstn` does: dial an agent or join a queue."""

    exten: str = "1001"
    context: str = "agent-answer"
    timeout: float | None = None
    queue: str | None = None


DIDS = {
    "912000001": Did(),
    "912000002": Did(context="agent-noanswer", timeout=6.0),
    "912000003": Did(context="agent-busy"),
    "912000004": Did(context="agent-hold"),
    "912000006": Did(),
    "912000007": Did(),
    "912000010": Did(queue="ventas"),
    "912000011": Did(queue="soporte"),
    "912000020": Did(context="agent-speak"),
}

AGENT_CONTEXTS = {
    "agent-answer": Phone(),
    "agent-noanswer": Phone(ring=None),
    "agent-busy": Phone(busy=True, ringing_tone=False),
    "agent-hold": Phone(hold_music=3.0),
    "agent-speak": Phone(),
    "supervisor-phone": Phone(ring=0.0, ringing_tone=False),
}

DIALER_CUSTOMERS = {
    "34917000001": Phone(talk=10.0),
    "34917000002": Phone(talk=7.0),
    "34917000003": Phone(ring=None),
    "34917000004": Phone(busy=True, ringing_tone=False),
    "34917000005": Phone(congestion=True, ringing_tone=False),
    "34917000006": Phone(talk=25.0),
}

log = logging.getLogger(__name__)

# Contexts the Asterisk adapter's hold uses (settings ami_hold_context/ami_park_context).
HOLD_CONTEXTS = ("centralita-hold", "centralita-wait")

KNOWN_CONTEXTS = {
    "from-pstn",
    "from-internal",
    "pstn-out",
    "queue-agents",
    "outbound",
    "caller-script",
    "caller-speech",
    "dialer-connect",
    *AGENT_CONTEXTS,
}


class Dialplan:
    """Resolves `exten@context` to a program and runs it as a task."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.agents: dict[str, Phone] = {}
        self.customers: dict[str, Phone] = {}  # pstn-out numbers set at run time
        self.dids: dict[str, Did] = dict(DIDS)  # the README's DIDs plus those added at run time
        self.queues: Queues  # wired by the simulator (each needs the other)
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """Forget the task; a crashed flow is logged, never silently lost."""
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call flow failed", exc_info=task.exception())

    def set_agent(self, exten: str, phone: Phone) -> None:
        self.agents[exten] = phone

    def phone_for(self, exten: str, context: str) -> Phone:
        if context == "agent-answer" and exten in self.agents:
            return self.agents[exten]
        if context in AGENT_CONTEXTS:
            return AGENT_CONTEXTS[context]
        if context == "queue-agents":
            answers = exten == "2001" and self.pbx.globals.get("QAGENTS_ANSWER") == "1"
            return self.agents.get(exten) or Phone(ring=3.0 if answers else None)
        if exten in self.customers:
            return self.customers[exten]
        if exten == "999":
            return Phone(congestion=True, ringing_tone=False)
        if exten == "998":
            return Phone(busy=True, ringing_tone=False, busy_shown_late=True)
        return DIALER_CUSTOMERS.get(exten, Phone(talk=5.0))

    def start_far_end(self, leg: Leg, phone: Phone | None = None) -> None:
        """Run what answers `leg`: a DID, an internal extension, or a phone."""
        context, exten = leg.two.context, leg.two.exten
        if phone is not None:
            self.spawn(self.phone(leg, phone))
        elif context == "from-pstn":
            self.spawn(self.did(leg, self.dids.get(exten) or Did(exten=exten)))
        elif context == "from-internal":
            self.spawn(self.did(leg, Did(exten=exten)))
        else:
            self.spawn(self.phone(leg, self.phone_for(exten, context)))

    async def phone(self, leg: Leg, phone: Phone) -> None:
        """A phone: ring, then answer, refuse, or ring until the dialler gives up."""
        pbx = self.pbx
        if phone.busy or phone.congestion:
            status = BUSY if phone.busy else CONGESTION
            flows.refuse(pbx, leg, status, late=leg.caller is None and phone.busy_shown_late)
            return
        if phone.ringing_tone:
            flows.ringing(pbx, leg)
        if phone.ring is None:
            return
        await pbx.sleep(phone.ring)
        if leg.settled:
            return
        flows.answer(pbx, leg)
        leg.two.application, leg.two.app_data = "Wait", "3600"
        if phone.hold_music:
            pbx.event("MusicOnHoldStart", "call,all", [*leg.two.fields(), ("Class", "default")])
            await pbx.sleep(phone.hold_music)
            if not leg.two.gone:
                pbx.event("MusicOnHoldStop", "call,all", leg.two.fields())
        if phone.talk is not None:
            await pbx.sleep(phone.talk - phone.hold_music)
            if not leg.two.gone:
                flows.teardown(pbx, leg.two)

    async def did(self, leg: Leg, did: Did) -> None:
        """A DID or internal extension on the ;2 half: Dial the agent or Queue."""
        pbx, caller = self.pbx, leg.two
        if did.queue is not None:
            flows.answer(pbx, leg)
            await self.queues.enter(caller, did.queue)
            return
        ring = caller.variables.get("AGENT_RING")  # set by Simulator.inbound, per call
        phone = None if ring is None else Phone(ring=None if ring == "never" else float(ring))
        await self.dial(caller, did.exten, did.context, did.timeout, upstream=leg, phone=phone)

    async def dial(
        self,
        caller: Channel,
        exten: str,
        context: str,
        dial_timeout: float | None,
        upstream: Leg | None = None,
        phone: Phone | None = None,
    ) -> str:
        """Dial(Local/exten@context) from `caller`; bridge on answer."""
        pbx = self.pbx
        # The dialled leg's caller ID number is the number dialled (README).
        cid, conn = (caller.exten, caller.cid_name), (caller.cid_num, caller.cid_name)
        leg = flows.new_leg(pbx, caller, exten, context, cid, conn)
        limit = "" if dial_timeout is None else f",{dial_timeout:g}"
        caller.application, caller.app_data = "Dial", f"Local/{exten}@{context}{limit}"
        if upstream is not None:
            leg.on_ringing = lambda: flows.ringing(pbx, upstream)
        self.start_far_end(leg, phone)
        outcome = await flows.wait_outcome(pbx, leg, dial_timeout)
        if outcome == ANSWER:
            flows.connect(pbx, leg, upstream)
        elif outcome == NOANSWER:
            flows.end_leg(pbx, leg, NOANSWER, 0)
        elif outcome in (BUSY, CONGESTION):
            flows.end_leg(pbx, leg, outcome, 17 if outcome == BUSY else 34)
            if upstream is not None:
                flows.refuse(pbx, upstream, outcome, late=False)
        return outcome

    async def run_at(self, chan: Channel, context: str, exten: str) -> None:
        """An answered channel sent to `context,exten` (Redirect, blind transfer)."""
        pbx = self.pbx
        if context == "from-internal":
            pbx.newexten(chan, context, exten, "Dial", f"Local/{exten}@agent-answer")
            await self.dial(chan, exten, "agent-answer", None)
        elif context == "from-pstn" and exten in self.dids:
            did = self.dids[exten]
            if did.queue is not None:
                pbx.newexten(chan, context, exten, "Queue", did.queue)
                await self.queues.enter(chan, did.queue)
            else:
                pbx.newexten(chan, context, exten, "Dial", f"Local/{did.exten}@{did.context}")
                await self.dial(chan, did.exten, did.context, did.timeout)
        elif context == "dialer-connect":
            pbx.newexten(chan, context, exten, "Queue", exten)
            await self.queues.enter(chan, exten)
        elif context in HOLD_CONTEXTS:
            self.park(chan, context, exten)
            return
        if chan.bridge is None and not chan.gone and chan not in self.queues.all_callers():
            flows.teardown(pbx, chan)  # unanswered, or no such extension: the dialplan ends

    def park(self, chan: Channel, context: str, exten: str) -> None:
        """Centralita's hold: the customer hears music, the agent waits in silence,
        each until a Bridge action joins them again (or they hang up)."""
        pbx = self.pbx
        if context == "centralita-wait":
            pbx.newexten(chan, context, exten, "Wait", "3600")
            return
        pbx.newexten(chan, context, exten, "MusicOnHold", "default")
        pbx.event("MusicOnHoldStart", "call,all", [*chan.fields(), ("Class", "default")])

        def stop() -> None:
            pbx.event("MusicOnHoldStop", "call,all", chan.fields())

        chan.music_stop = stop
        chan.before_end.append(stop)

    async def after_answer(self, one: Channel, request: dict[str, str]) -> None:
        """What an originated ;1 runs once answered: its Context/Exten or Application."""
        pbx = self.pbx
        app, data = request.get("Application", ""), request.get("Data", "")
        context, exten = request.get("Context", ""), request.get("Exten", "")
        if app:
            one.application, one.app_data = app, data
        else:
            one.context, one.exten = context, exten
        if app.lower() == "chanspy":
            await self.queues.spy(one, data)
        elif app.lower() == "wait":
            await self._hang_up_after(one, float(data or 0))
        elif context == "caller-script" and exten == "dtmf":
            await self._send_dtmf(one, "1234#", 250)
        elif context == "caller-speech":
            # Plays its sentence between silences, then hangs up (~12.4 s after answer).
            await self._hang_up_after(one, 12.4)
        elif context == "caller-script":
            await self._hang_up_after(one, float(request.get("TALK", "3")))
        elif context == "outbound":
            await self.dial(one, exten, "pstn-out", None)
            if one.bridge is None:
                flows.teardown(pbx, one)
        elif context == "from-internal":
            await self.dial(one, exten, "agent-answer", None)
        elif context == "dialer-connect":
            await self.queues.enter(one, exten)

    async def _send_dtmf(self, handset: Channel, digits: str, millis: int) -> None:
        """caller-script `dtmf`: Wait(1), SendDTMF(digits,millis), Wait(2), Hangup.

        The handset ;1 shows nothing; each digit is seen on the caller ;2
        (Received), the agent ;1 (Sent) and the agent ;2 (Received).
        """
        pbx = self.pbx
        await pbx.sleep(1.0)
        for digit in digits:
            path = self._dtmf_path(handset)
            for chan, direction in path:
                pbx.dtmf(chan, digit, direction, None)
            await pbx.sleep(millis / 1000)
            for chan, direction in self._dtmf_path(handset):
                pbx.dtmf(chan, digit, direction, millis)
            await pbx.sleep(0.1)
        await self._hang_up_after(handset, 2.0)

    @staticmethod
    def _dtmf_path(handset: Channel) -> list[tuple[Channel, str]]:
        caller = handset.partner
        if caller is None or caller.gone:
            return []
        path = [(caller, "Received")]
        peers = [c for c in caller.bridge.members if c is not caller] if caller.bridge else []
        for peer in peers:
            path.append((peer, "Sent"))
            if peer.partner is not None and not peer.partner.gone:
                path.append((peer.partner, "Received"))
        return path

    async def _hang_up_after(self, chan: Channel, seconds: float) -> None:
        chan.application, chan.app_data = "Wait", f"{seconds:g}"
        try:
            await asyncio.wait_for(chan.hungup.wait(), seconds / self.pbx.speed)
        except TimeoutError:
            flows.teardown(self.pbx, chan)
