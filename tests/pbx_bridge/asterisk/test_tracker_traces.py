"""Every real Asterisk trace, replayed with its recorded timing, gives the calls we read in it.

The expectations below were written by reading each `.ami` file (see
tests/fixtures/ami/README.md for what each scenario did): who called whom,
who rang, who answered when, what ended it. Times are seconds since the
recording's TCP connect, rounded to 10 ms.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from kernel.events import (
    CallEnded,
    CallEvent,
    CallInfo,
    Event,
    OriginateResult,
    QueueMemberChanged,
)
from pbx_bridge.asterisk.protocol import Message, Parser
from pbx_bridge.asterisk.tracker import CallChannels, CallTracker

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ami"
MOH_FILE = "/opt/asterisk/var/spool/asterisk/monitor/centralita-recording-test.wav"
SPEECH_FILE = "/opt/asterisk/var/spool/asterisk/monitor/recording_speech-mix.wav"


# What every new AMI session starts with (after the Login response).
NEW_SESSION = Message([("Event", "FullyBooted"), ("Privilege", "system,all"),
                       ("Status", "Fully Booted")])


def load(name: str) -> list[tuple[float, Message]]:
    """The trace's messages, each stamped with the time its recv() chunk arrived."""
    data = (FIXTURES / f"{name}.ami").read_bytes()
    rows = (FIXTURES / f"{name}.rxtiming.tsv").read_text().splitlines()[1:]
    parser, out = Parser(), []
    for row in rows:
        t_rel, offset, length = row.split("\t")
        start = int(offset)
        for message in parser.feed(data[start:start + int(length)]):
            out.append((float(t_rel), message))
    return out


def replay(name: str, tracker: CallTracker | None = None) -> list[Event]:
    tracker = tracker or CallTracker()
    return [e for now, m in load(name) for e in tracker.feed(m, now)]


def brief(event: Event) -> tuple[Any, ...]:
    """One comparable row per event: what a consumer of it would look at."""
    if isinstance(event, CallEvent):
        call = event.call
        row: tuple[Any, ...] = (event.topic, round(event.at, 2), call.call_id, call.state.value,
                                call.agent, call.ringing)
        return row + tuple(getattr(event, k) for k in ("mode", "target", "digit", "path")
                           if hasattr(event, k))
    if isinstance(event, OriginateResult):
        return (event.topic, round(event.at, 2), event.action_id, event.outcome, event.call_id)
    assert isinstance(event, QueueMemberChanged)
    return (event.topic, round(event.at, 2), event.queue, event.member, event.paused,
            event.status, event.removed)


def call(call_id: str, direction: str, caller: str, callee: str, agent: str | None,
         times: tuple[float, float | None, float], disposition: str,
         queue: str | None = None, recording: str | None = None) -> dict[str, Any]:
    started, answered, ended = times
    return {"call_id": call_id, "direction": direction, "caller": caller, "callee": callee,
            "agent": agent, "started_at": started, "answered_at": answered, "ended_at": ended,
            "disposition": disposition, "queue": queue, "recording": recording}


def ended_calls(events: list[Event]) -> list[dict[str, Any]]:
    return [_plain(e.call) for e in events if isinstance(e, CallEnded)]


def _plain(info: CallInfo) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)
    return call(info.call_id, info.direction.value, info.caller, info.callee, info.agent,
                (r(info.started_at) or 0.0, r(info.answered_at), r(info.ended_at) or 0.0),
                info.disposition.value if info.disposition else "", info.queue, info.recording)


RING, UP, HELD, XFER, END = "ringing", "up", "held", "transferred", "ended"
A, B, C = "1795546590.0", "1795546605.4", "1795546616.8"

EXPECTED_EVENTS: dict[str, list[tuple[Any, ...]]] = {
    "inbound_answered": [
        ("call.ringing", 0.0, A, RING, None, ("1001",)),
        ("call.answered", 2.01, A, UP, "1001", ()),
        ("originate.result", 2.01, "inbound_answered-2", "answered", A),
        ("call.ended", 5.01, A, END, "1001", ()),
    ],
    "inbound_missed": [
        ("call.ringing", 0.01, B, RING, None, ("1001",)),
        ("call.ended", 9.01, B, END, None, ()),
        ("originate.result", 9.01, "inbound_missed-2", "no-answer", B),
    ],
    "inbound_busy": [  # the OriginateResponse comes before the agent's channel exists
        ("originate.result", 0.0, "inbound_busy-2", "busy", C),
        ("call.ringing", 0.0, C, RING, None, ("1001",)),
        ("call.ended", 0.0, C, END, None, ()),
    ],
    "click_to_call": [  # the agent's phone rings first: no pop; the customer ringing is the call
        ("originate.result", 2.01, "click_to_call-2", "answered", "1795546618.12"),
        ("call.ringing", 2.01, "1795546618.12", RING, "1001", ()),
        ("call.answered", 4.01, "1795546618.12", UP, "1001", ()),
        ("call.ended", 9.51, "1795546618.12", END, "1001", ()),
    ],
    "originate_failed": [  # 999/998 are extension-like and an agent that never answers
        ("originate.result", 0.0, "originate_failed-2", "congestion", "1795546630.16"),
        ("originate.result", 0.5, "originate_failed-3", "busy", "1795546631.18"),
        ("originate.result", 1.0, "originate_failed-4", "failed", None),
        ("originate.result", 5.51, "originate_failed-5", "no-answer", "1795546632.22"),
    ],
    "queue_answered": [  # ring-all: both ring, 2001 wins, the CANCEL repeat changes nothing
        ("originate.result", 0.3, "queue_answered-3", "answered", "1795546639.26"),
        ("call.ringing", 0.8, "1795546639.26", RING, None, ("2001",)),
        ("queue.member", 0.8, "ventas", "2001", False, 2, False),
        ("call.ringing", 0.8, "1795546639.26", RING, None, ("2001", "2002")),
        ("queue.member", 0.8, "ventas", "2002", False, 2, False),
        ("call.answered", 3.81, "1795546639.26", UP, "2001", ()),
        ("queue.member", 3.81, "ventas", "2002", False, 1, False),
        ("queue.member", 10.31, "ventas", "2001", False, 1, False),
        ("call.ended", 10.31, "1795546639.26", END, "2001", ()),
    ],
    "queue_abandon": [
        ("originate.result", 0.3, "queue_abandon-3", "answered", "1795546651.32"),
        ("call.ringing", 0.8, "1795546651.32", RING, None, ("2001",)),
        ("call.ringing", 0.8, "1795546651.32", RING, None, ("2001", "2002")),
        ("queue.member", 0.8, "ventas", "2002", False, 2, False),
        ("queue.member", 0.8, "ventas", "2001", False, 2, False),
        ("queue.member", 7.3, "ventas", "2001", False, 1, False),
        ("call.ended", 7.3, "1795546651.32", END, None, ()),
        ("queue.member", 7.3, "ventas", "2002", False, 1, False),
    ],
    "blind_transfer": [
        ("call.ringing", 0.0, "1795546660.38", RING, None, ("1001",)),
        ("call.answered", 2.0, "1795546660.38", UP, "1001", ()),
        ("originate.result", 2.0, "blind_transfer-2", "answered", "1795546660.38"),
        ("call.transferred", 3.01, "1795546660.38", XFER, "1001", (), "blind", "1002"),
        ("call.ringing", 3.01, "1795546660.38", XFER, "1001", ("1002",)),
        ("call.answered", 5.01, "1795546660.38", UP, "1002", ()),
        ("call.ended", 14.01, "1795546660.38", END, "1002", ()),
    ],
    "redirect_transfer": [  # no transfer event: a new agent rings for the same caller channel
        ("call.ringing", 0.0, "1795546904.192", RING, None, ("1001",)),
        ("originate.result", 2.0, "redirect_transfer-2", "answered", "1795546904.192"),
        ("call.answered", 2.0, "1795546904.192", UP, "1001", ()),
        ("call.transferred", 3.01, "1795546904.192", XFER, "1001", (), "redirect", "1002"),
        ("call.ringing", 3.01, "1795546904.192", XFER, "1001", ("1002",)),
        ("call.answered", 5.01, "1795546904.192", UP, "1002", ()),
        ("call.ended", 14.02, "1795546904.192", END, "1002", ()),
    ],
    "attended_transfer": [  # *2 puts the caller on hold; 1002 rings for the consultation
        ("call.ringing", 0.0, "1795546764.66", RING, None, ("1001",)),
        ("call.answered", 2.0, "1795546764.66", UP, "1001", ()),
        ("originate.result", 2.0, "attended_transfer-2", "answered", "1795546764.66"),
        ("call.held", 3.27, "1795546764.66", HELD, "1001", ()),
        ("call.ringing", 3.51, "1795546764.66", HELD, "1001", ("1002",)),
        ("call.resumed", 7.01, "1795546764.66", UP, "1001", ()),
        ("call.transferred", 7.01, "1795546764.66", UP, "1002", (), "attended", "1002"),
        ("call.ended", 22.02, "1795546764.66", END, "1002", ()),
    ],
    "hold_moh": [
        ("call.ringing", 0.01, "1795546751.62", RING, None, ("1001",)),
        ("call.answered", 2.01, "1795546751.62", UP, "1001", ()),
        ("originate.result", 2.01, "hold_moh-2", "answered", "1795546751.62"),
        ("call.held", 3.51, "1795546751.62", HELD, "1001", ()),
        ("call.resumed", 6.51, "1795546751.62", UP, "1001", ()),
        ("call.ended", 10.01, "1795546751.62", END, "1001", ()),
    ],
    "recording": [  # the file name comes from MixMonitor's MIXMONITOR_FILENAME VarSet
        ("call.ringing", 0.0, "1795546716.48", RING, None, ("1001",)),
        ("call.answered", 2.01, "1795546716.48", UP, "1001", ()),
        ("originate.result", 2.01, "recording-2", "answered", "1795546716.48"),
        ("recording.started", 2.51, "1795546716.48", UP, "1001", ()),
        ("recording.ready", 5.51, "1795546716.48", UP, "1001", (), MOH_FILE),
        ("call.ended", 10.01, "1795546716.48", END, "1001", ()),
    ],
    "recording_speech": [
        ("call.ringing", 0.0, "1795547594.4", RING, None, ("1001",)),
        ("call.answered", 2.0, "1795547594.4", UP, "1001", ()),
        ("originate.result", 2.0, "recording_speech-2", "answered", "1795547594.4"),
        ("recording.started", 2.01, "1795547594.4", UP, "1001", ()),
        ("recording.ready", 12.95, "1795547594.4", UP, "1001", (), SPEECH_FILE),
        ("call.ended", 14.44, "1795547594.4", END, "1001", ()),
    ],
    "dtmf": [  # the caller's 1234#, once each; PlayDTMF's 5 on the agent side is not the caller's
        ("call.ringing", 0.0, "1795546742.58", RING, None, ("1001",)),
        ("call.answered", 2.0, "1795546742.58", UP, "1001", ()),
        ("originate.result", 2.0, "dtmf-2", "answered", "1795546742.58"),
        ("call.dtmf", 3.21, "1795546742.58", UP, "1001", (), "1"),
        ("call.dtmf", 3.56, "1795546742.58", UP, "1001", (), "2"),
        ("call.dtmf", 3.91, "1795546742.58", UP, "1001", (), "3"),
        ("call.dtmf", 4.26, "1795546742.58", UP, "1001", (), "4"),
        ("call.dtmf", 4.61, "1795546742.58", UP, "1001", (), "#"),
        ("call.ended", 6.86, "1795546742.58", END, "1001", ()),
    ],
    "supervisor_spy": [  # the supervisor's own ChanSpy call reaches nobody: not a call record
        ("call.ringing", 0.0, "1795546728.52", RING, None, ("1001",)),
        ("call.answered", 2.0, "1795546728.52", UP, "1001", ()),
        ("originate.result", 2.0, "supervisor_spy-2", "answered", "1795546728.52"),
        ("originate.result", 3.01, "supervisor_spy-3", "answered", "1795546731.56"),
        ("call.ended", 12.03, "1795546728.52", END, "1001", ()),
    ],
    "hangup_action": [
        ("call.ringing", 0.0, "1795546926.202", RING, None, ("1001",)),
        ("call.answered", 2.0, "1795546926.202", UP, "1001", ()),
        ("originate.result", 2.0, "hangup_action-2", "answered", "1795546926.202"),
        ("call.ended", 3.51, "1795546926.202", END, "1001", ()),
    ],
    "queue_member_ops": [  # added (4 = invalid device), paused, unpaused, penalty, removed
        ("queue.member", 0.0, "ventas", "2003", False, 4, False),
        ("queue.member", 0.5, "ventas", "2003", True, 4, False),
        ("queue.member", 1.0, "ventas", "2003", False, 4, False),
        ("queue.member", 1.5, "ventas", "2003", False, 4, False),
        ("queue.member", 2.5, "ventas", "2003", False, 4, True),
    ],
    "actions_misc": [],
    "actions_misc_badlogin": [],
}

IN = "34912345678"
EXPECTED_CALLS: dict[str, list[dict[str, Any]]] = {
    "inbound_answered": [call(A, "in", IN, "912000001", "1001", (0.0, 2.01, 5.01), "answered")],
    "inbound_missed": [call(B, "in", IN, "912000002", None, (0.0, None, 9.01), "missed")],
    "inbound_busy": [call(C, "in", IN, "912000003", None, (0.0, None, 0.0), "busy")],
    "click_to_call": [call("1795546618.12", "out", "1001", "34987654321", "1001",
                           (0.0, 4.01, 9.51), "answered")],
    "originate_failed": [],
    "queue_answered": [call("1795546639.26", "in", IN, "912000010", "2001", (0.3, 3.81, 10.31),
                            "answered", queue="ventas")],
    "queue_abandon": [call("1795546651.32", "in", IN, "912000010", None, (0.3, None, 7.3),
                           "abandoned", queue="ventas")],
    "blind_transfer": [call("1795546660.38", "in", IN, "912000001", "1002", (0.0, 2.0, 14.01),
                            "answered")],
    "redirect_transfer": [call("1795546904.192", "in", IN, "912000001", "1002",
                               (0.0, 2.0, 14.02), "answered")],
    "attended_transfer": [call("1795546764.66", "in", IN, "912000006", "1002", (0.0, 2.0, 22.02),
                               "answered")],
    "hold_moh": [call("1795546751.62", "in", IN, "912000004", "1001", (0.01, 2.01, 10.01),
                      "answered")],
    "recording": [call("1795546716.48", "in", IN, "912000001", "1001", (0.0, 2.01, 10.01),
                       "answered", recording=MOH_FILE)],
    "recording_speech": [call("1795547594.4", "in", IN, "912000020", "1001", (0.0, 2.0, 14.44),
                              "answered", recording=SPEECH_FILE)],
    "dtmf": [call("1795546742.58", "in", IN, "912000001", "1001", (0.0, 2.0, 6.86), "answered")],
    "supervisor_spy": [call("1795546728.52", "in", IN, "912000001", "1001", (0.0, 2.0, 12.03),
                            "answered")],
    "hangup_action": [call("1795546926.202", "in", IN, "912000001", "1001", (0.0, 2.0, 3.51),
                           "answered")],
    "queue_member_ops": [],
    "actions_misc": [],
    "actions_misc_badlogin": [],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_EVENTS))
def test_trace_gives_the_events_read_in_it(name: str) -> None:
    assert [brief(e) for e in replay(name)] == EXPECTED_EVENTS[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_CALLS))
def test_trace_gives_the_calls_read_in_it(name: str) -> None:
    assert ended_calls(replay(name)) == EXPECTED_CALLS[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_EVENTS))
def test_every_message_twice_changes_nothing(name: str) -> None:
    """Except digits: Asterisk itself sends a repeated digit as two identical DTMFEnd
    (attended_transfer's "00"), so an identical DTMFEnd is a digit, never a duplicate."""
    tracker = CallTracker()
    doubled = [e for now, m in load(name) for e in tracker.feed(m, now) + tracker.feed(m, now)]
    digits = [r for r in EXPECTED_EVENTS[name] if r[0] == "call.dtmf"]
    assert [brief(e) for e in doubled if e.topic == "call.dtmf"] == [
        d for row in digits for d in (row, row)]
    assert [brief(e) for e in doubled if e.topic != "call.dtmf"] == [
        r for r in EXPECTED_EVENTS[name] if r[0] != "call.dtmf"]
    assert tracker.live_calls() == []


def test_every_trace_has_expectations() -> None:
    names = {p.name.removesuffix(".ami") for p in FIXTURES.glob("*.ami")}
    assert names - {"reconnect_resync_before", "reconnect_resync_after", "dialer_outbound"} == \
        set(EXPECTED_EVENTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_CALLS))
def test_late_duplicates_still_end_each_call_once(name: str) -> None:
    """Each message delivered again after the next one: no adjacent-repeat filter helps here."""
    tracker, messages, events = CallTracker(), load(name), []
    for i, (now, message) in enumerate(messages):
        events += tracker.feed(message, now)
        if i:
            events += tracker.feed(messages[i - 1][1], now)
    assert ended_calls(events) == EXPECTED_CALLS[name]
    results = [brief(e) for e in events if isinstance(e, OriginateResult)]
    assert [r[2:] for r in results] == [
        r[2:] for r in EXPECTED_EVENTS[name] if r[0] == "originate.result"
    ]
    assert tracker.live_calls() == []


def _ami(name: str, suffix: str) -> str:
    return f"Local/{name}-{suffix}"


CHANNELS_DURING: list[tuple[str, str, float, tuple[str | None, str | None, str | None]]] = [
    # customer's channel, agent's channel in the bridge with it, agent's phone
    ("blind_transfer", "1795546660.38", 1.0,
     (_ami("912000001@from-pstn", "00000013;2"), None, None)),
    ("blind_transfer", "1795546660.38", 2.5,
     (_ami("912000001@from-pstn", "00000013;2"), _ami("1001@agent-answer", "00000014;1"),
      _ami("1001@agent-answer", "00000014;2"))),
    ("blind_transfer", "1795546660.38", 4.0,  # the target still rings
     (_ami("912000001@from-pstn", "00000013;2"), None, None)),
    ("blind_transfer", "1795546660.38", 6.0,
     (_ami("912000001@from-pstn", "00000013;2"), _ami("1002@agent-answer", "00000015;1"),
      _ami("1002@agent-answer", "00000015;2"))),
    ("attended_transfer", "1795546764.66", 8.0,  # 1002 through its from-internal hop
     (_ami("912000006@from-pstn", "00000021;2"), _ami("1002@from-internal", "00000023;1"),
      _ami("1002@agent-answer", "00000024;2"))),
    ("click_to_call", "1795546618.12", 1.0, (None, None, None)),
    ("click_to_call", "1795546618.12", 5.0,
     (_ami("34987654321@pstn-out", "00000007;1"), _ami("1001@agent-answer", "00000006;1"),
      _ami("1001@agent-answer", "00000006;2"))),
    ("dialer_outbound", "1795547615.8", 6.0,
     (_ami("34917000001@pstn-out", "00000004;1"), _ami("2001@queue-agents", "0000000a;1"),
      _ami("2001@queue-agents", "0000000a;2"))),
    ("queue_answered", "1795546639.26", 1.0,
     (_ami("912000010@from-pstn", "0000000d;2"), None, None)),
]


@pytest.mark.parametrize(("name", "call_id", "at", "expected"), CHANNELS_DURING)
def test_channels_the_port_acts_on(name: str, call_id: str, at: float,
                                   expected: tuple[str | None, str | None, str | None]) -> None:
    tracker = CallTracker()
    for now, message in load(name):
        if now >= at:
            break
        tracker.feed(message, now)
    assert tracker.channels(call_id) == CallChannels(*expected)
    assert tracker.channels("no-such-call") is None


@pytest.mark.parametrize("name", sorted(EXPECTED_EVENTS))
def test_a_list_of_agents_files_the_traces_the_same(name: str) -> None:
    tracker = CallTracker(agents={"1001", "1002", "2001", "2002", "2003"})
    assert [brief(e) for e in replay(name, tracker)] == EXPECTED_EVENTS[name]


@pytest.mark.parametrize("seed", range(6))
def test_disordered_or_lost_messages_never_end_a_call_twice(seed: int) -> None:
    """Swapped neighbours, lost messages, a full shuffle: no crash, one CallEnded at most,
    and a resync showing nothing live leaves nothing behind."""
    rng = random.Random(seed)
    for path in sorted(FIXTURES.glob("*.ami")):
        messages = load(path.name.removesuffix(".ami"))
        if seed % 3 == 0:
            rng.shuffle(messages)
        elif seed % 3 == 1:
            for i in range(len(messages) - 1):
                if rng.random() < 0.3:
                    messages[i], messages[i + 1] = messages[i + 1], messages[i]
        else:
            messages = [m for m in messages if rng.random() > 0.1]
        tracker = CallTracker()
        events = [e for now, m in messages for e in tracker.feed(m, now)]
        tracker.feed(NEW_SESSION, 99.0)
        events += tracker.resync([], [], [], 99.0)
        ended = [e.call.call_id for e in events if isinstance(e, CallEnded)]
        assert len(ended) == len(set(ended)), path.name
        assert (tracker.live_calls(), tracker.chans, tracker.calls) == ([], {}, {}), path.name


@pytest.mark.parametrize("name", sorted(EXPECTED_CALLS))
def test_the_whole_trace_replayed_again_makes_no_new_call(name: str) -> None:
    tracker = CallTracker()
    replay(name, tracker)
    again = [brief(e) for e in replay(name, tracker) if not isinstance(e, QueueMemberChanged)]
    assert again == []
