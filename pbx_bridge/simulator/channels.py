"""The simulated PBX's state (channels, bridges, Local pairs) and the AMI events it emits.

Every helper here mirrors one Asterisk 22 event with the headers, in the order,
that the real traces in tests/fixtures/ami show; the call flows in `flows.py`
only decide *which* helpers run and when. Keeping the wire format in one place
means a field fixed here is fixed for every flow.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pbx_bridge.asterisk.protocol import Message

if TYPE_CHECKING:
    from pbx_bridge.simulator.flows import Leg
    from pbx_bridge.simulator.transfer import Consultation

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
CAUSE_TXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerted, no answer",
    26: "Answered elsewhere",
    34: "Circuit/channel congestion",
}
UNKNOWN = "<unknown>"

Emit = Callable[[Message], None]


@dataclass(eq=False)
class Channel:
    """One live channel, as CoreShowChannels and every event header describe it."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    state: int = 0
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    conn_num: str = UNKNOWN
    conn_name: str = UNKNOWN
    priority: int = 1
    application: str = ""
    app_data: str = ""
    partner: Channel | None = None
    bridge: Bridge | None = None
    created: float = field(default_factory=time.monotonic)
    gone: bool = False
    dialplan: bool = False  # runs dialplan itself (so it gets SoftHangupRequest)
    before_end: list[Callable[[], Any]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    music_stop: Callable[[], None] | None = None  # ends hold music when it leaves hold
    muted: str = ""  # MuteAudio direction in force: "", "in", "out" or "all"
    pending_callerid: tuple[str, str] | None = None  # queued for a Local ;2 (transfers)
    consultation: Consultation | None = None  # while this channel consults (Atxfer)
    dialing: list[Leg] = field(default_factory=list)  # its outgoing Dial legs
    hungup: asyncio.Event = field(default_factory=asyncio.Event)

    def fields(self, prefix: str = "") -> list[tuple[str, str]]:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.cid_num),
            (f"{prefix}CallerIDName", self.cid_name),
            (f"{prefix}ConnectedLineNum", self.conn_num),
            (f"{prefix}ConnectedLineName", self.conn_name),
            (f"{prefix}Language", "en"),
            (f"{prefix}AccountCode", ""),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]

    @property
    def device(self) -> str:
        """The device name Asterisk reports for a Local channel: no counter, no half."""
        return self.name.rsplit("-", 1)[0]


@dataclass(eq=False)
class Bridge:
    uniqueid: str
    members: list[Channel] = field(default_factory=list)
    bridge_type: str = "basic"
    technology: str = "simple_bridge"
    before_leave: list[Callable[[], None]] = field(default_factory=list)

    def fields(self, count: int | None = None) -> list[tuple[str, str]]:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", self.bridge_type),
            ("BridgeTechnology", self.technology),
            ("BridgeCreator", UNKNOWN),
            ("BridgeName", UNKNOWN),
            ("BridgeNumChannels", str(len(self.members) if count is None else count)),
            ("BridgeVideoSourceMode", "none"),
        ]


class Pbx:
    """Live state plus event emission; flows drive it, the AMI server lists it."""

    def __init__(self, emit: Emit, speed: float = 1.0) -> None:
        self.emit_message = emit
        self.speed = speed
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.globals: dict[str, str] = {"QAGENTS_ANSWER": "1"}
        self.started = time.time()
        self._epoch = int(self.started)
        self._uid_seq = itertools.count()
        self._local_seq = itertools.count()
        self.calls_processed = 0
        self.hints = {"Local/1001@agent-answer": "1001", "Local/1002@agent-answer": "1002"}
        self._device_use: dict[str, int] = {}
        # Device states Asterisk had cached at boot (DeviceStateList lists the cache).
        self.devices: dict[str, str] = {
            "Queue:ventas": "NOT_INUSE",
            "Queue:ventas_pause_Local/2002@queue-agents/n": "NOT_INUSE",
            "Queue:ventas_avail": "NOT_INUSE",
            "Queue:ventas_pause_Local/2001@queue-agents/n": "NOT_INUSE",
        }

    async def sleep(self, seconds: float) -> None:
        """Every dialplan delay goes through here so `speed` scales them all."""
        if seconds > 0:
            await asyncio.sleep(seconds / self.speed)

    def event(self, name: str, privilege: str, headers: list[tuple[str, str]]) -> None:
        self.emit_message(Message([("Event", name), ("Privilege", privilege), *headers]))

    # -- channels ---------------------------------------------------------------

    def local_pair(
        self, exten: str, context: str, linkedid: str | None = None
    ) -> tuple[Channel, Channel]:
        """Create `Local/<exten>@<context>-xxxxxxxx;1/;2`: ;1 Down, ;2 Ring."""
        base = f"Local/{exten}@{context}-{next(self._local_seq):08x}"
        one_uid = f"{self._epoch}.{next(self._uid_seq)}"
        two_uid = f"{self._epoch}.{next(self._uid_seq)}"
        link = linkedid or one_uid
        if linkedid is None:
            self.calls_processed += 1
        one = Channel(f"{base};1", one_uid, link, context, exten, state=0)
        two = Channel(f"{base};2", two_uid, link, context, exten, state=4)
        one.partner, two.partner = two, one
        for chan in (one, two):
            self.channels[chan.name] = chan
            self.event("Newchannel", "call,all", chan.fields())
        self._use_device(one.device, 2)
        return one, two

    def _use_device(self, device: str, delta: int) -> None:
        """Device and hint state follow whether any channel of a device is up.

        Asterisk repeats DeviceStateChange for every channel change; only the
        transitions are sent here, and ExtensionStatus for the 1001/1002 hints.
        """
        before = self._device_use.get(device, 0)
        after = max(0, before + delta)
        self._device_use[device] = after
        if (before == 0) == (after == 0):
            return
        self.device_state(device, "INUSE" if after else "NOT_INUSE")
        if device in self.hints:
            self.extension_status(self.hints[device], 1 if after else 0)

    def caller_id(self, chan: Channel, num: str, name: str) -> None:
        chan.cid_num, chan.cid_name = num, name
        self.event(
            "NewCallerid",
            "call,all",
            [*chan.fields(), ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")],
        )

    def connected_line(self, chan: Channel, num: str, name: str) -> None:
        chan.conn_num, chan.conn_name = num, name
        self.event("NewConnectedLine", "call,all", chan.fields())

    def local_bridge(self, one: Channel, two: Channel, optimize: bool = True) -> None:
        self.event(
            "LocalBridge",
            "call,all",
            [
                *one.fields("LocalOne"),
                *two.fields("LocalTwo"),
                ("Context", one.context),
                ("Exten", one.exten),
                ("LocalOptimization", "Yes" if optimize else "No"),
            ],
        )

    def newstate(self, chan: Channel, state: int) -> None:
        chan.state = state
        self.event("Newstate", "call,all", chan.fields())

    def varset(self, chan: Channel, variable: str, value: str) -> None:
        chan.variables[variable] = value
        self.event(
            "VarSet", "dialplan,all", [*chan.fields(), ("Variable", variable), ("Value", value)]
        )

    def global_var(self, variable: str, value: str) -> None:
        """Set(GLOBAL(...)) / Setvar without a channel: VarSet on channel `none`."""
        self.globals[variable] = value
        fields = [("Channel", "none"), ("Uniqueid", "none"), ("Variable", variable)]
        self.event("VarSet", "dialplan,all", [*fields, ("Value", value)])

    def newexten(self, chan: Channel, context: str, exten: str, app: str, data: str) -> None:
        chan.context, chan.exten, chan.priority = context, exten, 1
        chan.application, chan.app_data = app, data
        self.event(
            "Newexten",
            "dialplan,all",
            [*chan.fields(), ("Extension", exten), ("Application", app), ("AppData", data)],
        )

    def hangup_request(self, chan: Channel, cause: int, soft: bool = False) -> None:
        name = "SoftHangupRequest" if soft else "HangupRequest"
        self.event(name, "call,all", [*chan.fields(), ("Cause", str(cause))])

    def hangup(self, chan: Channel, cause: int) -> None:
        if chan.gone:
            return
        chan.gone = True
        self.channels.pop(chan.name, None)
        self.event(
            "Hangup",
            "call,all",
            [*chan.fields(), ("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))],
        )
        chan.hungup.set()
        self._use_device(chan.device, -1)

    # -- dialling -----------------------------------------------------------------

    def _dial_fields(self, caller: Channel | None, dest: Channel) -> list[tuple[str, str]]:
        return [*(caller.fields() if caller else []), *dest.fields("Dest")]

    def dial_begin(self, caller: Channel | None, dest: Channel, dialstring: str) -> None:
        self.event(
            "DialBegin", "call,all", [*self._dial_fields(caller, dest), ("DialString", dialstring)]
        )

    def dial_state(self, caller: Channel | None, dest: Channel, status: str = "RINGING") -> None:
        self.event(
            "DialState", "call,all", [*self._dial_fields(caller, dest), ("DialStatus", status)]
        )

    def dial_end(self, caller: Channel | None, dest: Channel, status: str) -> None:
        self.event(
            "DialEnd", "call,all", [*self._dial_fields(caller, dest), ("DialStatus", status)]
        )

    # -- bridges ------------------------------------------------------------------

    def bridge_create(self) -> Bridge:
        bridge = Bridge(str(uuid.uuid4()))
        self.bridges[bridge.uniqueid] = bridge
        self.event("BridgeCreate", "call,all", bridge.fields())
        return bridge

    def bridge_enter(self, bridge: Bridge, chan: Channel) -> None:
        bridge.members.append(chan)
        chan.bridge = bridge
        self.event("BridgeEnter", "call,all", [*bridge.fields(), *chan.fields()])
        if len(bridge.members) == 2:  # BRIDGEPEER names the other party, as Asterisk sets it
            first, second = bridge.members
            self.varset(first, "BRIDGEPEER", second.name)
            self.varset(second, "BRIDGEPEER", first.name)

    def bridge_leave(self, bridge: Bridge, chan: Channel) -> None:
        if chan in bridge.members:
            bridge.members.remove(chan)
        chan.bridge = None
        self.event("BridgeLeave", "call,all", [*bridge.fields(), *chan.fields()])
        if chan.variables.get("BRIDGEPEER"):
            self.varset(chan, "BRIDGEPEER", "")

    def bridge_destroy(self, bridge: Bridge) -> None:
        if self.bridges.pop(bridge.uniqueid, None) is not None:
            self.event("BridgeDestroy", "call,all", bridge.fields(0))

    def dtmf(self, chan: Channel, digit: str, direction: str, duration_ms: int | None) -> None:
        """DTMFBegin (duration None) or DTMFEnd of one digit on one channel."""
        if duration_ms is None:
            extra = [("Digit", digit), ("Direction", direction)]
            self.event("DTMFBegin", "dtmf,all", [*chan.fields(), *extra])
        else:
            extra = [("Digit", digit), ("DurationMs", str(duration_ms)), ("Direction", direction)]
            self.event("DTMFEnd", "dtmf,all", [*chan.fields(), *extra])

    # -- devices ------------------------------------------------------------------

    def device_state(self, device: str, state: str) -> None:
        self.devices[device] = state
        self.event("DeviceStateChange", "call,all", [("Device", device), ("State", state)])

    def extension_status(self, exten: str, status: int) -> None:
        text = {0: "Idle", 1: "InUse", 8: "Ringing", 9: "InUse&Ringing"}.get(status, "Idle")
        self.event(
            "ExtensionStatus",
            "call,all",
            [
                ("Exten", exten),
                ("Context", "from-internal"),
                ("Hint", f"Local/{exten}@agent-answer"),
                ("Status", str(status)),
                ("StatusText", text),
            ],
        )
