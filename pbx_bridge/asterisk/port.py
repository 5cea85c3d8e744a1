"""The PBX port on Asterisk: each call control is one or two AMI actions.

Calls are named by `call_id` (Asterisk's Linkedid, kept by every leg and by
transfer targets). The call tracker says which channels make up a call now;
this module only turns a request into actions on those channels.

Hold and resume rely on two dialplan contexts (names from settings):

    [centralita-hold]              ; ami_hold_context: the held customer
    exten => s,1,Answer()
     same => n,MusicOnHold(default)

    [centralita-wait]              ; ami_park_context: the agent meanwhile
    exten => s,1,Answer()
     same => n,Wait(3600)          ; silence until resume bridges them again

`hold` is one `Redirect` that moves both legs out of their bridge at once
(the customer with `Channel`, the agent with `ExtraChannel`), so neither
hangs up; `resume` puts them back together with the `Bridge` action.

An attended transfer (`Atxfer`) plays the `atxfer` feature code, so
features.conf must map it (the recordings use `atxfer => *2`); Asterisk
answers "Atxfer successfully queued" even when the transfer then fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Protocol

from config.settings import Settings
from kernel.errors import Conflict, NotFound, ValidationFailed
from pbx_bridge.asterisk.link import AMILink
from pbx_bridge.port import OriginateRequest, OriginateTicket, SpyMode, TransferMode

NUMBER = re.compile(r"\+?[0-9*#]{1,32}")
EXTENSION = re.compile(r"[0-9A-Za-z_*#+-]{1,40}")
DIALPLAN_NAME = re.compile(r"[0-9A-Za-z_+*#.-]{1,80}")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DTMF = re.compile(r"[0-9*#A-Da-d]{1,64}")
# ChanSpy options: q = no beep or channel name for the spy, E = leave when the
# spied-on channel hangs up; w = whisper to the agent, B = barge into both.
SPY_OPTIONS: dict[str, str] = {"listen": "qE", "whisper": "qEw", "barge": "qEB"}
DTMF_DURATION_MS = "250"


class CallChannels(Protocol):
    """The channels of a call as the tracker sees them."""

    @property
    def customer(self) -> str | None: ...

    @property
    def agent(self) -> str | None: ...

    @property
    def agent_device(self) -> str | None: ...


class ChannelDirectory(Protocol):
    """What the port needs from the call tracker."""

    def channels(self, call_id: str) -> CallChannels | None: ...


class AsteriskPort:
    """`pbx_bridge.port.PbxPort` over an AMI link."""

    name = "asterisk"

    def __init__(self, link: AMILink, tracker: ChannelDirectory, settings: Settings) -> None:
        self._link = link
        self._tracker = tracker
        self._settings = settings

    @property
    def online(self) -> bool:
        return self._link.online

    async def originate(self, request: OriginateRequest) -> OriginateTicket:
        """Agent first (click-to-call) or customer first (dialer); outcome comes later.

        `Async: true` makes Asterisk answer at once; the outcome arrives as an
        `OriginateResponse` event carrying the returned ActionID.
        """
        number = _checked(NUMBER, request.number, "number")
        fields: list[tuple[str, str]]
        if request.agent_extension is not None:
            extension = _checked(EXTENSION, request.agent_extension, "agent_extension")
            channel = self._settings.ami_originate_channel.format(extension=extension)
            fields = [
                ("Channel", channel),
                ("Context", self._settings.ami_originate_context),
                ("Exten", number),
            ]
            caller_id = request.caller_id or f'"Llamada a {number}" <{number}>'
        else:
            if not request.context or not request.exten:
                raise ValidationFailed(
                    "a customer-first originate needs the context and exten to connect to",
                    field="context",
                )
            fields = [
                ("Channel", self._settings.ami_dial_channel.format(number=number)),
                ("Context", _checked(DIALPLAN_NAME, request.context, "context")),
                ("Exten", _checked(DIALPLAN_NAME, request.exten, "exten")),
            ]
            caller_id = request.caller_id or number
        fields += [
            ("Priority", "1"),
            ("CallerID", _single_line(caller_id, "caller_id")),
            ("Timeout", str(int(request.timeout_s * 1000))),
            *_variables(request.variables or {}),
            ("Async", "true"),
        ]
        response = await self._link.send_action("Originate", fields)
        return OriginateTicket(action_id=response.action_id)

    async def hangup(self, call_id: str) -> None:
        legs = self._legs(call_id)
        channel = legs.customer or legs.agent
        if channel is None:
            raise Conflict(f"call {call_id} has no channel left to hang up")
        await self._link.send_action("Hangup", {"Channel": channel})

    async def transfer(self, call_id: str, to: str, mode: TransferMode = "blind") -> None:
        """Blind: the customer is sent on at once; attended: the agent consults first."""
        target = _checked(EXTENSION, to, "to")
        agent = self._agent(call_id)
        action = "BlindTransfer" if mode == "blind" else "Atxfer"
        await self._link.send_action(
            action,
            {"Channel": agent, "Context": self._settings.ami_transfer_context, "Exten": target},
        )

    async def hold(self, call_id: str) -> None:
        customer, agent = self._pair(call_id)
        await self._link.send_action(
            "Redirect",
            {
                "Channel": customer,
                "Context": self._settings.ami_hold_context,
                "Exten": "s",
                "Priority": "1",
                "ExtraChannel": agent,
                "ExtraContext": self._settings.ami_park_context,
                "ExtraExten": "s",
                "ExtraPriority": "1",
            },
        )

    async def resume(self, call_id: str) -> None:
        customer, agent = self._pair(call_id)
        await self._link.send_action(
            "Bridge", {"Channel1": agent, "Channel2": customer, "Tone": "no"}
        )

    async def mute(self, call_id: str, muted: bool) -> None:
        """Mute what the agent says (audio coming in from the agent's leg)."""
        agent = self._agent(call_id)
        await self._link.send_action(
            "MuteAudio",
            {"Channel": agent, "Direction": "in", "State": "on" if muted else "off"},
        )

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """Play the digits to the customer (an IVR on the far end hears them)."""
        tones = _checked(DTMF, digits, "digits")
        customer = self._customer(call_id)
        for digit in tones:  # PlayDTMF takes exactly one digit per action
            await self._link.send_action(
                "PlayDTMF", {"Channel": customer, "Digit": digit, "Duration": DTMF_DURATION_MS}
            )

    async def start_recording(self, call_id: str) -> str:
        """Record both directions while bridged; returns the file on the Asterisk host."""
        customer = self._customer(call_id)
        safe_id = re.sub(r"[^0-9A-Za-z._-]", "_", call_id)
        directory = self._settings.ami_recording_dir.rstrip("/")
        path = f"{directory}/centralita-{safe_id}-{int(time.time())}.wav"
        await self._link.send_action(
            "MixMonitor", {"Channel": customer, "File": path, "Options": "b"}
        )
        return path

    async def stop_recording(self, call_id: str) -> None:
        customer = self._customer(call_id)
        await self._link.send_action("StopMixMonitor", {"Channel": customer})

    async def spy(self, call_id: str, supervisor_extension: str, mode: SpyMode) -> None:
        """Ring the supervisor's phone; when answered it runs ChanSpy on the agent leg."""
        extension = _checked(EXTENSION, supervisor_extension, "supervisor_extension")
        agent = self._agent(call_id)
        await self._link.send_action(
            "Originate",
            [
                ("Channel", self._settings.ami_originate_channel.format(extension=extension)),
                ("Application", "ChanSpy"),
                ("Data", f"{agent},{SPY_OPTIONS[mode]}"),
                ("CallerID", f'"Supervisor" <{extension}>'),
                ("Timeout", "15000"),
                ("Async", "true"),
            ],
        )

    # -- channels of a call ------------------------------------------------

    def _legs(self, call_id: str) -> CallChannels:
        legs = self._tracker.channels(call_id)
        if legs is None:
            raise NotFound(f"no call {call_id} on Asterisk", field="call_id")
        return legs

    def _customer(self, call_id: str) -> str:
        channel = self._legs(call_id).customer
        if channel is None:
            raise Conflict(f"call {call_id} has no customer leg in a bridge")
        return channel

    def _agent(self, call_id: str) -> str:
        channel = self._legs(call_id).agent
        if channel is None:
            raise Conflict(f"call {call_id} has no agent leg in a bridge")
        return channel

    def _pair(self, call_id: str) -> tuple[str, str]:
        return self._customer(call_id), self._agent(call_id)


def _checked(pattern: re.Pattern[str], value: str, field: str) -> str:
    """Refuse anything that could change a dial string's meaning (`&`, `/`, `,`)."""
    if not pattern.fullmatch(value):
        raise ValidationFailed(f"{field} {value!r} is not allowed here", field=field)
    return value


def _single_line(value: str, field: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValidationFailed(f"{field} may not contain a line break", field=field)
    return value


def _variables(variables: Mapping[str, str]) -> list[tuple[str, str]]:
    """One `Variable: NAME=value` header per variable, as Asterisk expects."""
    out = []
    for name, value in variables.items():
        _checked(VARIABLE, name, "variables")
        out.append(("Variable", f"{name}={_single_line(value, 'variables')}"))
    return out
