"""The Asterisk port: the actions it sends, checked against what real Asterisk was sent.

Each test replays a recording over TCP. Actions of the recording that are not
the port's (the test call's own Originate) are sent as recorded; the port's
action must then equal the recorded one header for header, ActionID aside.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from config.settings import Settings
from kernel.errors import AMIActionFailed, Conflict, NotFound, ValidationFailed
from pbx_bridge.asterisk.link import AMILink
from pbx_bridge.asterisk.port import AsteriskPort
from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.port import OriginateRequest, OriginateTicket, PbxPort
from tests.pbx_bridge.asterisk.replay_server import (
    Behaviour,
    Recorder,
    ReplayServer,
    load_script,
)

# The dial strings the recordings used (Local channels instead of SIP phones).
TRACE_SETTINGS = Settings(
    ami_originate_channel="Local/{extension}@agent-answer",
    ami_originate_context="outbound",
    ami_dial_channel="Local/{number}@pstn-out",
)


@dataclass(frozen=True)
class Legs:
    customer: str | None = None
    agent: str | None = None
    agent_device: str | None = None


class Directory:
    """The call tracker's `channels()` answer, fixed per test."""

    def __init__(self, calls: dict[str, Legs]) -> None:
        self.calls = calls

    def channels(self, call_id: str) -> Legs | None:
        return self.calls.get(call_id)


@dataclass
class Rig:
    server: ReplayServer
    link: AMILink
    port: AsteriskPort
    inbox: Recorder
    script: str

    @property
    def events(self) -> list[Message]:
        return self.inbox.messages

    async def send_recorded(self, index: int) -> Message:
        """Send step `index` of the recording exactly as it was sent."""
        recorded = load_script(self.script).steps[index].action
        fields = [(k, v) for k, v in recorded.headers if k not in ("Action", "ActionID")]
        return await self.link.send_action(recorded["Action"], fields)

    def sent(self, position: int = -1) -> list[tuple[str, str]]:
        """Headers of an action the server got, without the ActionID."""
        message = self.server.connections[0].received[position]
        return [(k, v) for k, v in message.headers if k != "ActionID"]

    def recorded(self, index: int) -> list[tuple[str, str]]:
        message = load_script(self.script).steps[index].action
        return [(k, v) for k, v in message.headers if k != "ActionID"]


@asynccontextmanager
async def rig(
    script: str,
    calls: dict[str, Legs] | None = None,
    settings: Settings = TRACE_SETTINGS,
    behaviour: Behaviour | None = None,
) -> AsyncIterator[Rig]:
    inbox = Recorder()
    async with ReplayServer([load_script(script)], [behaviour or Behaviour()]) as server:
        link = AMILink(
            "127.0.0.1", server.port, "centralita", "not-a-secret",
            on_message=inbox.on_message, rng=random.Random(3),
        )
        await link.start()
        try:
            assert await link.wait_online(5)
            yield Rig(server, link, AsteriskPort(link, Directory(calls or {}), settings), inbox,
                      script)
        finally:
            await link.close()


async def test_click_to_call_rings_the_agent_first_as_recorded() -> None:
    async with rig("click_to_call") as r:
        ticket = await r.port.originate(
            OriginateRequest(number="34987654321", agent_extension="1001", timeout_s=30)
        )
        assert r.sent() == r.recorded(1)
        await r.inbox.wait_for(lambda: any(m.event == "OriginateResponse" for m in r.events))
    outcome = next(m for m in r.events if m.event == "OriginateResponse")
    assert (outcome["Response"], outcome["Reason"]) == ("Success", "4")
    assert ticket == OriginateTicket(action_id=outcome.action_id)


async def test_dialer_originate_calls_the_customer_first_with_variables() -> None:
    async with rig("dialer_outbound") as r:
        await r.send_recorded(1)  # Setvar QAGENTS_ANSWER, as recorded
        await r.send_recorded(2)  # QueuePause of Agente 2002
        tickets = []
        for n in range(1, 7):
            request = OriginateRequest(
                number=f"3491700000{n}", caller_id=f'"c1 {n}" <3491700000{n}>',
                timeout_s=8 if n == 3 else 30, context="dialer-connect", exten="ventas",
                variables={"CAMPAIGN": "c1", "ENTRY": str(n)},
            )
            tickets.append(await r.port.originate(request))
            assert r.sent() == r.recorded(2 + n)
        await r.send_recorded(9)  # QueuePause off: the recording's last action
        await r.inbox.wait_for(
            lambda: sum(m.event == "OriginateResponse" for m in r.events) == 6, within=10
        )
    reasons = {m.action_id: m["Reason"] for m in r.events if m.event == "OriginateResponse"}
    assert [reasons[t.action_id] for t in tickets] == ["4", "4", "3", "5", "8", "4"]


async def test_hangup_ends_the_customer_leg() -> None:
    calls = {"c1": Legs(customer="Local/912000001@from-pstn-00000065;2",
                        agent="Local/1001@agent-answer-00000066;1")}
    async with rig("hangup_action", calls) as r:
        await r.send_recorded(1)
        await r.inbox.wait_for(lambda: any(m.event == "BridgeEnter" for m in r.events))
        await r.port.hangup("c1")
        assert r.sent() == [("Action", "Hangup"),
                            ("Channel", "Local/912000001@from-pstn-00000065;2")]


@pytest.mark.parametrize(
    ("script", "mode", "agent"),
    [
        ("blind_transfer", "blind", "Local/1001@agent-answer-00000014;1"),
        ("attended_transfer", "attended", "Local/1001@agent-answer-00000022;1"),
    ],
)
async def test_transfer_sends_the_recorded_action(script: str, mode: str, agent: str) -> None:
    async with rig(script, {"c1": Legs(customer="x;2", agent=agent)}) as r:
        await r.send_recorded(1)
        await r.port.transfer("c1", "1002", mode)  # type: ignore[arg-type]
        assert r.sent() == r.recorded(2)


async def test_supervisor_listens_in_through_chanspy_as_recorded() -> None:
    calls = {"c1": Legs(customer="x;2", agent="Local/1001@agent-answer-0000001b;1")}
    settings = dataclasses.replace(
        TRACE_SETTINGS, ami_originate_channel="Local/{extension}@supervisor-phone"
    )
    async with rig("supervisor_spy", calls, settings) as r:
        await r.send_recorded(1)
        await r.port.spy("c1", "3001", "listen")
        assert r.sent() == r.recorded(2)
        await r.inbox.wait_for(lambda: any(m.event == "ChanSpyStart" for m in r.events))


async def test_recording_starts_and_stops_on_the_customer_leg() -> None:
    customer = "Local/912000001@from-pstn-00000018;2"
    settings = dataclasses.replace(TRACE_SETTINGS, ami_recording_dir="/opt/monitor/")
    async with rig("recording", {"1795.7": Legs(customer=customer, agent="a;1")}, settings) as r:
        await r.send_recorded(1)
        path = await r.port.start_recording("1795.7")
        assert r.sent() == [
            ("Action", "MixMonitor"), ("Channel", customer), ("File", path), ("Options", "b"),
        ]
        assert path.startswith("/opt/monitor/centralita-1795.7-") and path.endswith(".wav")
        await r.port.stop_recording("1795.7")
        assert r.sent() == r.recorded(3)
        await r.inbox.wait_for(lambda: any(m.event == "MixMonitorStop" for m in r.events))


async def test_dtmf_is_played_to_the_customer_one_digit_per_action() -> None:
    customer = "Local/912000001@from-pstn-0000001d;2"
    behaviour = Behaviour(generic=frozenset({"PlayDTMF"}))
    async with rig("dtmf", {"c1": Legs(customer=customer, agent="a;1")}, behaviour=behaviour) as r:
        await r.send_recorded(1)
        await r.port.send_dtmf("c1", "5#")
        assert [r.sent(-2), r.sent(-1)] == [
            [("Action", "PlayDTMF"), ("Channel", customer), ("Digit", d), ("Duration", "250")]
            for d in "5#"
        ]


async def test_hold_parks_both_legs_and_resume_bridges_them_again() -> None:
    legs = Legs(customer="PJSIP/trunk-00000001", agent="PJSIP/1001-00000002")
    behaviour = Behaviour(generic=frozenset({"Redirect", "Bridge", "MuteAudio"}))
    async with rig("hangup_action", {"c1": legs}, Settings(), behaviour) as r:
        await r.port.hold("c1")
        assert r.sent() == [
            ("Action", "Redirect"), ("Channel", "PJSIP/trunk-00000001"),
            ("Context", "centralita-hold"), ("Exten", "s"), ("Priority", "1"),
            ("ExtraChannel", "PJSIP/1001-00000002"), ("ExtraContext", "centralita-wait"),
            ("ExtraExten", "s"), ("ExtraPriority", "1"),
        ]
        await r.port.resume("c1")
        assert r.sent() == [
            ("Action", "Bridge"), ("Channel1", "PJSIP/1001-00000002"),
            ("Channel2", "PJSIP/trunk-00000001"), ("Tone", "no"),
        ]
        await r.port.mute("c1", True)
        await r.port.mute("c1", False)
        assert [r.sent(-2), r.sent(-1)] == [
            [("Action", "MuteAudio"), ("Channel", "PJSIP/1001-00000002"), ("Direction", "in"),
             ("State", state)]
            for state in ("on", "off")
        ]


async def test_a_refused_originate_raises_with_asterisk_s_reason() -> None:
    async with rig("originate_failed", settings=Settings()) as r:
        for step in range(1, 5):
            await r.send_recorded(step)
        with pytest.raises(AMIActionFailed) as failed:
            await r.port.originate(OriginateRequest(number="999", agent_extension="1001"))
        assert failed.value.message == "Originate refused by Asterisk: Originate failed"
        assert r.sent()[:2] == [("Action", "Originate"), ("Channel", "PJSIP/1001")]


async def test_bad_requests_are_refused_before_anything_is_sent() -> None:
    link = AMILink("127.0.0.1", 1, "centralita", "x", on_message=lambda m, t: None)
    port: PbxPort = AsteriskPort(  # mypy checks it really is a PbxPort
        link, Directory({"c1": Legs(customer="PJSIP/trunk-1")}), Settings()
    )
    with pytest.raises(NotFound) as missing:
        await port.hangup("nope")
    assert missing.value.to_json() == {
        "error": {"code": "not-found", "message": "no call nope on Asterisk", "field": "call_id"}
    }
    with pytest.raises(Conflict):
        await port.transfer("c1", "1002")
    for bad in ("600&PJSIP/700", "1,2", ""):
        with pytest.raises(ValidationFailed) as invalid:
            await port.originate(OriginateRequest(number=bad, agent_extension="1001"))
        assert invalid.value.field == "number"
    with pytest.raises(ValidationFailed) as no_target:
        await port.originate(OriginateRequest(number="600"))
    assert no_target.value.field == "context"
    with pytest.raises(ValidationFailed) as bad_var:
        await port.originate(
            OriginateRequest(number="600", agent_extension="1", variables={"A B": "1"})
        )
    assert bad_var.value.field == "variables"
    with pytest.raises(ValidationFailed):
        await port.send_dtmf("c1", "12x")
    assert not port.online


async def test_whisper_and_barge_add_their_chanspy_option_and_hangup_falls_back_to_agent(
) -> None:
    legs = {"c1": Legs(customer=None, agent="PJSIP/1001-0000000a")}
    behaviour = Behaviour(generic=frozenset({"Originate", "Hangup"}))
    async with rig("hangup_action", legs, Settings(), behaviour) as r:
        await r.port.spy("c1", "3001", "whisper")
        await r.port.spy("c1", "3001", "barge")
        assert [dict(r.sent(i))["Data"] for i in (-2, -1)] == [
            "PJSIP/1001-0000000a,qEw", "PJSIP/1001-0000000a,qEB",
        ]
        assert dict(r.sent())["Channel"] == "PJSIP/3001"
        await r.port.hangup("c1")
        assert r.sent() == [("Action", "Hangup"), ("Channel", "PJSIP/1001-0000000a")]
