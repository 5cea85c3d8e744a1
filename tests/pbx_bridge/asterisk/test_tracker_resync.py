"""A dropped AMI connection, a restart, and the dialer run, against the real traces.

`reconnect_resync_before` is the first connection (3 calls up, then the socket
dies); `reconnect_resync_after` is the next one: CoreShowChannels, Status,
QueueStatus and BridgeList, then the hangups of channels it never saw born.
Its clock starts about 6.39 s after the first one's: call 1 was answered at
2.005 s and talks 25 s (TALK=25), and its caller hangs up at 20.612 s of the
second recording.
"""

from __future__ import annotations

from typing import Any

from kernel.events import CallAnswered, CallEnded, CallEvent, QueueMemberChanged
from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.asterisk.tracker import CallChannels, CallTracker
from tests.pbx_bridge.asterisk.test_tracker_traces import (
    NEW_SESSION,
    brief,
    call,
    ended_calls,
    load,
)

OFFSET = 6.39
LISTS_END = 0.603  # BridgeListComplete of the second connection
C1, C2, C3 = "1795546861.170", "1795546861.174", "1795546861.178"


Timed = list[tuple[float, Message]]


def after() -> tuple[dict[str, list[Message]], Timed, Timed]:
    """The second connection: its resync lists, what came before them (Login, FullyBooted)
    and the live events after them, on the first connection's clock."""
    messages = load("reconnect_resync_after")
    lists: dict[str, list[Message]] = {"channels": [], "bridges": [], "queue": []}
    kinds = {"CoreShowChannel": "channels", "BridgeListItem": "bridges", "QueueParams": "queue",
             "QueueMember": "queue", "QueueEntry": "queue"}
    end = next(i for i, (_, m) in enumerate(messages) if m.event == "BridgeListComplete")
    opening = []
    for t, m in messages[:end]:
        if m.event in kinds:
            lists[kinds[m.event]].append(m)
        else:
            opening.append((t + OFFSET, m))
    return lists, opening, [(t + OFFSET, m) for t, m in messages[end + 1:]]


def reconnect(tracker: CallTracker) -> list[Any]:
    lists, opening, live = after()
    events = [e for now, m in opening for e in tracker.feed(m, now)]
    events += tracker.resync(lists["channels"], lists["bridges"], lists["queue"],
                             LISTS_END + OFFSET)
    return events + [e for now, m in live for e in tracker.feed(m, now)]


CALLS_AFTER_RECONNECT = [
    call(C3, "in", "34933333333", "912000010", "2001", (0.8, 4.31, 25.81), "answered",
         queue="ventas"),
    call(C1, "in", "34911111111", "912000001", "1001", (0.0, 2.0, 27.0), "answered"),
    call(C2, "in", "34922222222", "912000001", "1001", (0.4, 2.41, 27.41), "answered"),
]


def test_reconnect_keeps_the_calls_and_ends_each_once() -> None:
    tracker = CallTracker()
    before = [e for now, m in load("reconnect_resync_before") for e in tracker.feed(m, now)]
    assert [(c.call_id, c.state.value, c.agent) for c in tracker.live_calls()] == [
        (C1, "up", "1001"), (C2, "up", "1001"), (C3, "up", "2001")]
    assert ended_calls(before) == []
    assert ended_calls(reconnect(tracker)) == CALLS_AFTER_RECONNECT
    assert tracker.live_calls() == []


def test_drop_while_ringing_then_resync_sees_the_answers() -> None:
    """The link dies at 1 s (two calls ringing, one not queued yet); the lists show all answered."""
    tracker = CallTracker()
    for now, m in load("reconnect_resync_before"):
        if now < 1.0:
            tracker.feed(m, now)
    assert [(c.call_id, c.state.value) for c in tracker.live_calls()] == [
        (C1, "ringing"), (C2, "ringing")]
    events = reconnect(tracker)
    resync_at = round(LISTS_END + OFFSET, 2)
    answered = [brief(e) for e in events if isinstance(e, CallAnswered)]
    # Legs we saw ringing: answered by the resync. 2001's leg is new: its channel's Duration.
    assert answered == [
        ("call.answered", resync_at, C1, "up", "1001", ()),
        ("call.answered", resync_at, C2, "up", "1001", ()),
        ("call.answered", round(resync_at - 5, 2), C3, "up", "2001", ()),
    ]
    assert [(c["call_id"], c["agent"], c["disposition"]) for c in ended_calls(events)] == [
        (C3, "2001", "answered"), (C1, "1001", "answered"), (C2, "1001", "answered")]


def test_restart_adopts_live_calls_from_the_lists() -> None:
    tracker = CallTracker()
    lists, opening, live = after()
    now = LISTS_END + OFFSET
    assert [e for t, m in opening for e in tracker.feed(m, t)] == []
    events = tracker.resync(lists["channels"], lists["bridges"], lists["queue"], now)
    members = [brief(e) for e in events if isinstance(e, QueueMemberChanged)]
    assert members == [  # 2001 is on the queue call (2 = in use)
        ("queue.member", 6.99, "ventas", "2002", False, 1, False),
        ("queue.member", 6.99, "ventas", "2001", False, 2, False),
        ("queue.member", 6.99, "soporte", "2002", False, 1, False),
    ]
    adopted = [e for e in events if isinstance(e, CallEvent)]
    # Started and answered = now - the Duration Asterisk reports (whole seconds).
    assert [_adopted(e) for e in adopted] == [
        (C1, "in", "34911111111", "912000001", "1001", 0.99, 0.99, None),
        (C2, "in", "34922222222", "912000001", "1001", 0.99, 0.99, None),
        (C3, "in", "34933333333", "912000010", "2001", 1.99, 1.99, "ventas"),
    ]
    assert tracker.channels(C1) == CallChannels(
        "Local/912000001@from-pstn-00000055;2", "Local/1001@agent-answer-00000056;1",
        "Local/1001@agent-answer-00000056;2")
    assert tracker.channels(C3) == CallChannels(
        "Local/912000010@from-pstn-00000059;2", "Local/2001@queue-agents-0000005a;1",
        "Local/2001@queue-agents-0000005a;2")
    ended = [e for t, m in live for e in tracker.feed(m, t) if isinstance(e, CallEnded)]
    assert [(e.call.call_id, e.call.disposition, round(e.at, 2)) for e in ended] == [
        (C3, "answered", 25.81), (C1, "answered", 27.0), (C2, "answered", 27.41)]
    assert tracker.live_calls() == [] and tracker.channels(C1) is None


def test_calls_gone_while_away_end_at_the_resync() -> None:
    tracker = CallTracker()
    for now, m in load("reconnect_resync_before"):
        tracker.feed(m, now)
    tracker.feed(NEW_SESSION, 30.0)
    events = tracker.resync([], [], [], 30.0)
    assert [(c["call_id"], c["disposition"], c["ended_at"]) for c in ended_calls(events)] == [
        (C1, "answered", 30.0), (C2, "answered", 30.0), (C3, "answered", 30.0)]
    _, _, live = after()
    assert [e for now, m in live for e in tracker.feed(m, now) if isinstance(e, CallEvent)] == []
    tracker.feed(NEW_SESSION, 31.0)
    assert [e for e in tracker.resync([], [], [], 31.0) if isinstance(e, CallEvent)] == []


def _adopted(event: Any) -> tuple[Any, ...]:
    c = event.call
    return (c.call_id, c.direction.value, c.caller, c.callee, c.agent, round(c.started_at, 2),
            round(c.answered_at, 2), c.queue)


DIALER_EVENTS = [
    ("queue.member", 0.0, "ventas", "2002", True, 1, False),
    ("originate.result", 1.4, "dialer_outbound-7", "busy", "1795547616.14"),
    ("call.ended", 1.4, "1795547616.14", "ended", None, ()),
    ("originate.result", 1.71, "dialer_outbound-8", "congestion", "1795547616.16"),
    ("call.ended", 1.71, "1795547616.16", "ended", None, ()),
    ("originate.result", 2.51, "dialer_outbound-4", "answered", "1795547615.8"),
    ("call.ringing", 2.51, "1795547615.8", "ringing", None, ()),
    ("call.ringing", 2.51, "1795547615.8", "ringing", None, ("2001",)),
    ("queue.member", 2.51, "ventas", "2001", False, 2, False),
    ("originate.result", 2.81, "dialer_outbound-5", "answered", "1795547615.10"),
    ("call.ringing", 2.81, "1795547615.10", "ringing", None, ()),
    ("call.ringing", 4.01, "1795547616.18", "ringing", None, ()),
    ("originate.result", 4.01, "dialer_outbound-9", "answered", "1795547616.18"),
    ("call.answered", 5.51, "1795547615.8", "up", "2001", ()),
    ("originate.result", 9.11, "dialer_outbound-6", "no-answer", "1795547615.12"),
    ("call.ended", 9.11, "1795547615.12", "ended", None, ()),
    ("call.ended", 9.83, "1795547615.10", "ended", None, ()),
    ("call.ended", 12.53, "1795547615.8", "ended", "2001", ()),
    ("queue.member", 12.53, "ventas", "2001", False, 1, False),
    ("call.ringing", 13.02, "1795547616.18", "ringing", None, ("2001",)),
    ("queue.member", 13.02, "ventas", "2001", False, 2, False),
    ("call.answered", 16.02, "1795547616.18", "up", "2001", ()),
    ("call.ended", 29.04, "1795547616.18", "ended", "2001", ()),
    ("queue.member", 29.04, "ventas", "2001", False, 1, False),
    ("queue.member", 31.07, "ventas", "2002", False, 1, False),
]

# Outbound to the customer; answered = connected to the agent (talk 7 s and 13 s).
DIALER_CALLS = [
    call("1795547616.14", "out", "", "34917000004", None, (1.4, None, 1.4), "busy"),
    call("1795547616.16", "out", "", "34917000005", None, (1.7, None, 1.71), "failed"),
    call("1795547615.12", "out", "", "34917000003", None, (1.1, None, 9.11), "missed"),
    call("1795547615.10", "out", "", "34917000002", None, (0.8, None, 9.83), "abandoned",
         queue="ventas"),
    call("1795547615.8", "out", "2001", "34917000001", "2001", (0.5, 5.51, 12.53), "answered",
         queue="ventas"),
    call("1795547616.18", "out", "2001", "34917000006", "2001", (2.01, 16.02, 29.04), "answered",
         queue="ventas"),
]


def test_dialer_run_outcomes_and_calls() -> None:
    tracker = CallTracker()
    events = [e for now, m in load("dialer_outbound") for e in tracker.feed(m, now)]
    assert [brief(e) for e in events] == DIALER_EVENTS
    assert ended_calls(events) == DIALER_CALLS


def test_dialer_run_twice_delivered_and_cut_mid_way() -> None:
    tracker, messages = CallTracker(), load("dialer_outbound")
    events = []
    for now, m in messages:
        if now < 10.0:
            events += tracker.feed(m, now) + tracker.feed(m, now)
    tracker.feed(NEW_SESSION, 40.0)
    events += tracker.resync([], [], [], 40.0)  # everything hung up while we were away
    calls = {c["call_id"]: (c["disposition"], c["agent"]) for c in ended_calls(events)}
    assert len(ended_calls(events)) == len(calls) == 6
    assert calls == {
        "1795547616.14": ("busy", None), "1795547616.16": ("failed", None),
        "1795547615.12": ("missed", None), "1795547615.10": ("abandoned", None),
        "1795547615.8": ("answered", "2001"), "1795547616.18": ("missed", None),
    }


def test_dialer_calls_carry_the_originate_variables_asked_for() -> None:
    tracker = CallTracker(variables=["CAMPAIGN", "ENTRY"])
    events = [e for now, m in load("dialer_outbound") for e in tracker.feed(m, now)]
    ended = {e.call.callee: e.call.variables for e in events if isinstance(e, CallEnded)}
    assert ended == {
        f"3491700000{n}": (("CAMPAIGN", "c1"), ("ENTRY", str(n))) for n in range(1, 7)
    }


def as_channel_list(tracker: CallTracker, now: float) -> list[Message]:
    """What CoreShowChannels would list for the channels a tracker knows."""
    return [Message([
        ("Event", "CoreShowChannel"), ("Channel", c.name), ("ChannelState", str(c.state)),
        ("CallerIDNum", c.cid), ("Exten", c.exten), ("Uniqueid", c.uniqueid),
        ("Linkedid", c.call_id), ("Application", "Dial" if c.active else "AppDial"),
        ("ApplicationData", ""), ("Duration", "00:00:01"), ("BridgeId", c.bridge)])
        for c in tracker.chans.values()]


def test_a_transfer_done_while_away_is_seen_on_resync() -> None:
    """Link lost at 2.5 s (1001 talking); back at 6 s, 1002 has the caller (blind transfer)."""
    messages, call_id = load("blind_transfer"), "1795546660.38"
    ours, pbx_view = CallTracker(), CallTracker()
    for now, m in messages:
        if now < 2.5:
            ours.feed(m, now)
        if now < 6.0:
            pbx_view.feed(m, now)
    ours.feed(NEW_SESSION, 6.0)
    events = ours.resync(as_channel_list(pbx_view, 6.0), [], [], 6.0)
    events += [e for now, m in messages if now >= 6.0 for e in ours.feed(m, now)]
    assert [brief(e) for e in events] == [  # answered "Duration: 1 s" before the resync
        ("call.transferred", 5.0, call_id, "up", "1001", (), "redirect", "1002"),
        ("call.answered", 5.0, call_id, "up", "1002", ()),
        ("call.ended", 14.01, call_id, "ended", "1002", ()),
    ]
