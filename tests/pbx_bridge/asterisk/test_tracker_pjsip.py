"""Streams as Asterisk sends them for real phones and trunks (no Local channels).

The recorded traces use Local channels only; these streams follow the same
event shapes (Asterisk 22, see tests/fixtures/ami/README.md) with
`PJSIP/1001-0000000a` phones and `PJSIP/trunk-...` lines, which is what a
production PBX sends.
"""

from __future__ import annotations

from typing import Any

from kernel.events import CallEnded, CallEvent, Event, OriginateResult
from pbx_bridge.asterisk.channels import endpoint
from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.asterisk.tracker import CallChannels, CallTracker
from tests.pbx_bridge.asterisk.test_tracker_traces import NEW_SESSION

Stream = list[tuple[float, Message]]


class Pbx:
    """Builds AMI messages for named channels, keeping their Uniqueid and Linkedid."""

    def __init__(self) -> None:
        self.chans: dict[str, dict[str, str]] = {}
        self.seq = 0

    def new(self, name: str, linked: str | None, state: int, cid: str, exten: str) -> Message:
        self.seq += 1
        uid = f"1800000000.{self.seq}"
        self.chans[name] = {"Channel": name, "ChannelState": str(state), "CallerIDNum": cid,
                            "ConnectedLineNum": "<unknown>", "Exten": exten,
                            "Context": "from-somewhere", "Uniqueid": uid,
                            "Linkedid": self.chans[linked]["Linkedid"] if linked else uid}
        return self.ev("Newchannel", name)

    def ev(self, event: str, name: str | None = None, dest: str | None = None,
           prefix: str = "Dest", **extra: str) -> Message:
        headers = [("Event", event)]
        if name is not None:
            headers += list(self.chans[name].items())
        if dest is not None:
            headers += [(prefix + k, v) for k, v in self.chans[dest].items()]
        return Message(headers + list(extra.items()))

    def fields(self, prefix: str, name: str) -> list[tuple[str, str]]:
        return [(prefix + k, v) for k, v in self.chans[name].items()]

    def state(self, name: str, state: int) -> Message:
        self.chans[name]["ChannelState"] = str(state)
        return self.ev("Newstate", name)

    def uid(self, name: str) -> str:
        return self.chans[name]["Uniqueid"]


def run(tracker: CallTracker, stream: Stream) -> list[Event]:
    return [e for now, m in stream for e in tracker.feed(m, now)]


def rows(events: list[Event]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, CallEvent):
            c = e.call
            out.append((e.topic, e.at, c.direction.value, c.caller, c.callee, c.agent, c.ringing,
                        c.disposition.value if c.disposition else None))
        elif isinstance(e, OriginateResult):
            out.append((e.topic, e.at, e.outcome, e.call_id))
    return out


TRUNK, PHONE, PHONE2 = "PJSIP/trunk-00000001", "PJSIP/1001-00000002", "PJSIP/1002-00000003"


def answered_call(pbx: Pbx, caller: str, callee: str, dial_string: str) -> Stream:
    return [
        (0.0, pbx.new(callee, caller, 0, "<unknown>", "s")),
        (0.0, pbx.ev("DialBegin", caller, callee, DialString=dial_string)),
        (0.1, pbx.state(callee, 5)),
        (0.1, pbx.ev("DialState", caller, callee, DialStatus="RINGING")),
        (3.0, pbx.state(callee, 6)),
        (3.0, pbx.ev("DialEnd", caller, callee, DialStatus="ANSWER")),
        (3.0, pbx.ev("BridgeEnter", callee, BridgeUniqueid="b1")),
        (3.0, pbx.ev("BridgeEnter", caller, BridgeUniqueid="b1")),
    ]


def hangup_all(pbx: Pbx, at: float, *names: str) -> Stream:
    stream = []
    for name in names:
        stream += [(at, pbx.ev("BridgeLeave", name, BridgeUniqueid="b1")),
                   (at, pbx.ev("Hangup", name, Cause="16"))]
    return stream


def test_inbound_trunk_to_a_phone() -> None:
    pbx, tracker = Pbx(), CallTracker()
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001"))]
    stream += answered_call(pbx, TRUNK, PHONE, "1001")
    mid = run(tracker, stream)
    assert tracker.channels(pbx.uid(TRUNK)) == CallChannels(TRUNK, PHONE, PHONE)
    events = mid + run(tracker, hangup_all(pbx, 10.0, TRUNK, PHONE))
    assert rows(events) == [
        ("call.ringing", 0.0, "in", "34911111111", "912000001", None, ("1001",), None),
        ("call.answered", 3.0, "in", "34911111111", "912000001", "1001", (), None),
        ("call.ended", 10.0, "in", "34911111111", "912000001", "1001", (), "answered"),
    ]


def test_outbound_from_a_phone_through_the_trunk() -> None:
    pbx, tracker = Pbx(), CallTracker()
    stream = [(0.0, pbx.new(PHONE, None, 4, "1001", "34987654321"))]
    stream += answered_call(pbx, PHONE, TRUNK, "34987654321@trunk")
    stream += hangup_all(pbx, 8.0, TRUNK, PHONE)
    assert rows(run(tracker, stream)) == [
        ("call.ringing", 0.0, "out", "1001", "34987654321", "1001", (), None),
        ("call.answered", 3.0, "out", "1001", "34987654321", "1001", (), None),
        ("call.ended", 8.0, "out", "1001", "34987654321", "1001", (), "answered"),
    ]


def test_internal_call_not_answered_is_missed() -> None:
    pbx, tracker = Pbx(), CallTracker()
    stream = [
        (0.0, pbx.new(PHONE, None, 4, "1001", "1002")),
        (0.0, pbx.new(PHONE2, PHONE, 0, "<unknown>", "s")),
        (0.0, pbx.ev("DialBegin", PHONE, PHONE2, DialString="1002")),
        (0.1, pbx.state(PHONE2, 5)),
        (20.0, pbx.ev("DialEnd", PHONE, PHONE2, DialStatus="NOANSWER")),
        (20.0, pbx.ev("Hangup", PHONE2, Cause="0")),
        (20.1, pbx.ev("Hangup", PHONE, Cause="19")),
    ]
    assert rows(run(tracker, stream)) == [
        ("call.ringing", 0.0, "internal", "1001", "1002", "1001", ("1002",), None),
        ("call.ended", 20.1, "internal", "1001", "1002", "1001", (), "missed"),
    ]


def test_trunk_named_like_an_extension_needs_the_pattern() -> None:
    line = "PJSIP/5000-00000009"
    by_pattern = CallTracker(trunk_patterns=["PJSIP/5000-*"])
    for tracker, direction in ((by_pattern, "in"), (CallTracker(), "internal")):
        pbx = Pbx()
        stream = [(0.0, pbx.new(line, None, 4, "34911111111", "912000001"))]
        stream += answered_call(pbx, line, PHONE, "1001") + hangup_all(pbx, 5.0, line, PHONE)
        ended = [e.call for e in run(tracker, stream) if isinstance(e, CallEnded)]
        assert [(c.direction.value, c.agent) for c in ended] == [(direction, "1001")]


def test_ring_all_queue_of_phones_names_the_winner() -> None:
    pbx, tracker = Pbx(), CallTracker()
    members = {"PJSIP/2001-00000004": "PJSIP/2001", "PJSIP/2002-00000005": "PJSIP/2002"}
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000010")),
              (0.5, pbx.ev("QueueCallerJoin", TRUNK, Queue="ventas", Position="1"))]
    for leg, interface in members.items():
        stream += [(0.6, pbx.new(leg, TRUNK, 0, "<unknown>", "s")),
                   (0.6, pbx.ev("AgentCalled", TRUNK, leg, Queue="ventas", Interface=interface,
                                MemberName=f"Agent {interface[-4:]}")),
                   (0.6, pbx.ev("DialBegin", TRUNK, leg, DialString=interface[6:]))]
    winner, loser = list(members)
    stream += [(4.0, pbx.ev("DialEnd", TRUNK, loser, DialStatus="ANSWER")),
               (4.0, pbx.ev("DialEnd", TRUNK, winner, DialStatus="CANCEL")),
               (4.0, pbx.ev("Hangup", winner, Cause="26")),
               (4.0, pbx.ev("AgentConnect", TRUNK, loser, Queue="ventas", HoldTime="4")),
               (9.0, pbx.ev("AgentComplete", TRUNK, loser, Queue="ventas", Reason="caller"))]
    stream += hangup_all(pbx, 9.0, TRUNK, loser)
    assert rows(run(tracker, stream)) == [
        ("call.ringing", 0.6, "in", "34911111111", "912000010", None, ("2001",), None),
        ("call.ringing", 0.6, "in", "34911111111", "912000010", None, ("2001", "2002"), None),
        ("call.answered", 4.0, "in", "34911111111", "912000010", "2002", (), None),
        ("call.ended", 9.0, "in", "34911111111", "912000010", "2002", (), "answered"),
    ]


def test_dialer_through_a_trunk_and_a_busy_number() -> None:
    pbx, tracker = Pbx(), CallTracker()
    busy = "PJSIP/trunk-00000007"
    stream = [
        (0.0, pbx.new(busy, None, 0, "912000000", "s")),
        (0.0, pbx.ev("DialBegin", None, busy, DialString="34917000004@trunk")),
        (0.2, pbx.ev("DialEnd", None, busy, DialStatus="BUSY")),
        (0.2, pbx.ev("OriginateResponse", Response="Failure", ActionID="d-1",
                     Channel="PJSIP/34917000004@trunk", Reason="5", Uniqueid="<unknown>")),
        (0.2, pbx.ev("Hangup", busy, Cause="17")),
    ]
    assert rows(run(tracker, stream)) == [  # a dialled customer rings from the DialBegin
        ("call.ringing", 0.0, "out", "", "34917000004", None, (), None),
        ("originate.result", 0.2, "busy", pbx.uid(busy)),
        ("call.ended", 0.2, "out", "", "34917000004", None, (), "busy"),
    ]


def test_attended_transfer_between_two_calls_of_phones() -> None:
    """A phone consults on a call of its own (new Linkedid); the target joins the first call."""
    pbx, tracker = Pbx(), CallTracker()
    consult = "PJSIP/1001-00000008"
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001"))]
    stream += answered_call(pbx, TRUNK, PHONE, "1001")
    stream += [(4.0, pbx.ev("Hold", PHONE)), (4.0, pbx.ev("MusicOnHoldStart", TRUNK))]
    stream += [(5.0, pbx.new(consult, None, 4, "1001", "1002"))]
    stream += [(5.0 + t, m) for t, m in answered_call(pbx, consult, PHONE2, "1002")]
    stream += [
        (9.0, pbx.ev("MusicOnHoldStop", TRUNK)),
        (9.0, Message([("Event", "AttendedTransfer"), ("Result", "Success"),
                       ("TransfereeChannel", TRUNK), ("TransfereeLinkedid", pbx.uid(TRUNK)),
                       ("TransferTargetChannel", PHONE2),
                       ("TransferTargetUniqueid", pbx.uid(PHONE2)), ("DestType", "Bridge")])),
        (9.0, pbx.ev("Hangup", PHONE, Cause="16")),
        (9.0, pbx.ev("Hangup", consult, Cause="16")),
    ]
    stream += hangup_all(pbx, 30.0, TRUNK, PHONE2)
    events = run(tracker, stream)
    first = [r for r, e in zip(rows(events), events, strict=True)
             if isinstance(e, CallEvent) and e.call.call_id == pbx.uid(TRUNK)]
    assert first == [
        ("call.ringing", 0.0, "in", "34911111111", "912000001", None, ("1001",), None),
        ("call.answered", 3.0, "in", "34911111111", "912000001", "1001", (), None),
        ("call.held", 4.0, "in", "34911111111", "912000001", "1001", (), None),
        ("call.resumed", 9.0, "in", "34911111111", "912000001", "1001", (), None),
        ("call.transferred", 9.0, "in", "34911111111", "912000001", "1002", (), None),
        ("call.ended", 30.0, "in", "34911111111", "912000001", "1002", (), "answered"),
    ]
    ended = [(e.call.call_id, e.call.direction.value, e.call.disposition) for e in events
             if isinstance(e, CallEnded)]
    assert ended == [(pbx.uid(consult), "internal", "answered"),
                     (pbx.uid(TRUNK), "in", "answered")]


def test_inbound_call_that_never_reaches_an_agent_is_still_a_missed_call() -> None:
    pbx, tracker = Pbx(), CallTracker()
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001")),
              (0.0, pbx.state(TRUNK, 6)),  # the IVR answers, plays its menu; the caller leaves
              (12.0, pbx.ev("Hangup", TRUNK, Cause="16"))]
    assert rows(run(tracker, stream)) == [
        ("call.ended", 12.0, "in", "34911111111", "912000001", None, (), "missed"),
    ]


def queue_hop(pbx: Pbx, member: str) -> Stream:
    """FreePBX's way into a queue: Dial(Local/600@ext-queues); the queue rings `member`."""
    hop1, hop2 = "Local/600@ext-queues-0000000a;1", "Local/600@ext-queues-0000000a;2"
    ext = endpoint(member)
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001"))]
    stream += [(0.0, pbx.new(hop1, TRUNK, 0, "<unknown>", "600")),
               (0.0, pbx.new(hop2, TRUNK, 4, "<unknown>", "600")),
               (0.0, pbx.ev("DialBegin", TRUNK, hop1, DialString="Local/600@ext-queues")),
               (0.1, pbx.ev("DialEnd", TRUNK, hop1, DialStatus="ANSWER")),  # the queue answers
               (0.1, pbx.ev("QueueCallerJoin", hop2, Queue="ventas", Position="1")),
               (0.2, pbx.new(member, TRUNK, 0, "<unknown>", "s")),
               (0.2, pbx.ev("AgentCalled", hop2, member, Queue="ventas",
                            Interface=f"PJSIP/{ext}", MemberName="Ana")),
               (0.2, pbx.ev("DialBegin", hop2, member, DialString=ext)),
               (5.0, pbx.ev("DialEnd", hop2, member, DialStatus="ANSWER"))]
    return stream + hangup_all(pbx, 20.0, TRUNK, hop1, hop2, member)


def answered_by(ext: str) -> list[tuple[Any, ...]]:
    return [
        ("call.ringing", 0.2, "in", "34911111111", "912000001", None, (ext,), None),
        ("call.answered", 5.0, "in", "34911111111", "912000001", ext, (), None),
        ("call.ended", 20.0, "in", "34911111111", "912000001", ext, (), "answered"),
    ]


def test_known_agents_tell_a_queue_hop_from_a_person() -> None:
    """600 is internal but nobody; agent 2001 answers behind it."""
    tracker = CallTracker(agents={"2001", "2002"})
    assert rows(run(tracker, queue_hop(Pbx(), "PJSIP/2001-0000000b"))) == answered_by("2001")


def test_a_phone_missing_from_the_list_is_still_a_person() -> None:
    """A desk phone with no user behind it answers as itself, not as a queue."""
    tracker = CallTracker(agents={"2002"})
    assert rows(run(tracker, queue_hop(Pbx(), "PJSIP/2001-0000000b"))) == answered_by("2001")


def test_a_listed_extension_is_an_agent_whatever_its_length() -> None:
    tracker = CallTracker()
    tracker.rules.know_agents({"20015550"})  # eight digits: an outside number to the heuristic
    assert rows(run(tracker, queue_hop(Pbx(), "PJSIP/20015550-0000000b"))) == \
        answered_by("20015550")
    tracker.rules.know_agents(())  # no team known: back to "every extension-like number"
    assert tracker.rules.agents is None


def test_call_pickup_by_another_phone_answers_the_call() -> None:
    pbx, tracker = Pbx(), CallTracker()
    picker = "PJSIP/1003-0000000c"
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001")),
              (0.0, pbx.new(PHONE, TRUNK, 0, "<unknown>", "s")),
              (0.0, pbx.ev("DialBegin", TRUNK, PHONE, DialString="1001")),
              (2.0, pbx.new(picker, None, 4, "1003", "*8")),
              (2.5, pbx.ev("Pickup", picker, PHONE, prefix="Target")),
              (2.5, pbx.ev("DialEnd", TRUNK, PHONE, DialStatus="CANCEL")),
              (2.5, pbx.ev("Hangup", PHONE, Cause="26")),
              (2.5, pbx.ev("BridgeEnter", picker, BridgeUniqueid="b1")),
              (2.5, pbx.ev("BridgeEnter", TRUNK, BridgeUniqueid="b1"))]
    stream += hangup_all(pbx, 9.0, TRUNK, picker)
    assert rows(run(tracker, stream)) == [
        ("call.ringing", 0.0, "in", "34911111111", "912000001", None, ("1001",), None),
        ("call.answered", 2.5, "in", "34911111111", "912000001", "1003", (), None),
        ("call.ended", 9.0, "in", "34911111111", "912000001", "1003", (), "answered"),
    ]


def test_parked_call_retrieved_by_another_phone() -> None:
    pbx, tracker = Pbx(), CallTracker()
    retriever = "PJSIP/1003-0000000d"
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001"))]
    stream += answered_call(pbx, TRUNK, PHONE, "1001")
    stream += [(5.0, pbx.ev("ParkedCall", None, TRUNK, prefix="Parkee", ParkingSpace="701")),
               (5.0, pbx.ev("Hangup", PHONE, Cause="16")),
               (8.0, pbx.new(retriever, None, 4, "1003", "701")),
               (8.5, Message([("Event", "UnParkedCall"), *pbx.fields("Parkee", TRUNK),
                              *pbx.fields("Retriever", retriever)]))]
    stream += hangup_all(pbx, 20.0, TRUNK, retriever)
    assert rows(run(tracker, stream)) == [
        ("call.ringing", 0.0, "in", "34911111111", "912000001", None, ("1001",), None),
        ("call.answered", 3.0, "in", "34911111111", "912000001", "1001", (), None),
        ("call.transferred", 5.0, "in", "34911111111", "912000001", "1001", (), None),
        ("call.answered", 8.5, "in", "34911111111", "912000001", "1003", (), None),
        ("call.ended", 20.0, "in", "34911111111", "912000001", "1003", (), "answered"),
    ]


def test_restart_while_a_queue_call_rings_adopts_it_ringing() -> None:
    def item(name: str, uid: str, state: int, app: str, data: str, exten: str) -> Message:
        return Message([("Event", "CoreShowChannel"), ("Channel", name),
                        ("ChannelState", str(state)), ("CallerIDNum", "34911111111"),
                        ("Exten", exten), ("Uniqueid", uid), ("Linkedid", "9.1"),
                        ("Application", app), ("ApplicationData", data),
                        ("Duration", "00:00:12"), ("BridgeId", "")])

    member = "PJSIP/2001-0000000e"
    channels = [item(member, "9.2", 5, "AppQueue", "(Outgoing Line)", "s"),
                item(TRUNK, "9.1", 6, "Queue", "ventas,,,,60", "912000010")]
    queue = [Message([("Event", "QueueEntry"), ("Queue", "ventas"), ("Position", "1"),
                      ("Channel", TRUNK), ("Uniqueid", "9.1"), ("Wait", "12")])]
    tracker = CallTracker()
    adopted = rows(tracker.resync(channels, [], queue, 100.0))
    assert adopted == [("call.ringing", 100.0, "in", "34911111111", "912000010", None,
                        ("2001",), None)]
    assert [(c.queue, c.started_at) for c in tracker.live_calls()] == [("ventas", 88.0)]
    dial_end = Message([("Event", "DialEnd"), ("Channel", TRUNK), ("Uniqueid", "9.1"),
                        ("DestChannel", member), ("DestUniqueid", "9.2"), ("DialStatus", "ANSWER")])
    hangups = [Message([("Event", "Hangup"), ("Channel", n), ("Uniqueid", u), ("Cause", "16")])
               for n, u in ((member, "9.2"), (TRUNK, "9.1"))]
    events = tracker.feed(dial_end, 101.0) + [e for m in hangups for e in tracker.feed(m, 110.0)]
    assert rows(events) == [
        ("call.answered", 101.0, "in", "34911111111", "912000010", "2001", (), None),
        ("call.ended", 110.0, "in", "34911111111", "912000010", "2001", (), "answered"),
    ]


def test_recording_path_told_by_the_port() -> None:
    """MixMonitor events carry no file name: the port says which file it asked for."""
    pbx, tracker = Pbx(), CallTracker()
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001"))]
    stream += answered_call(pbx, TRUNK, PHONE, "1001")
    run(tracker, stream)
    tracker.note_recording(pbx.uid(TRUNK), "/var/spool/asterisk/monitor/c1.wav")
    tracker.note_recording("no-such-call", "/tmp/x.wav")
    events = run(tracker, [(4.0, pbx.ev("MixMonitorStart", TRUNK)),
                           (6.0, pbx.ev("MixMonitorStop", TRUNK))])
    assert [(e.topic, e.call.recording, getattr(e, "path", None)) for e in events
            if isinstance(e, CallEvent)] == [
        ("recording.started", "/var/spool/asterisk/monitor/c1.wav", None),
        ("recording.ready", "/var/spool/asterisk/monitor/c1.wav",
         "/var/spool/asterisk/monitor/c1.wav"),
    ]


def originate_local(pbx: Pbx, local: str, cid: str) -> Stream:
    """An Originate to a Local channel: both halves, the dest-only dial of its ;1."""
    return [(0.0, pbx.new(f"{local};1", None, 0, cid, "s")),
            (0.0, pbx.new(f"{local};2", f"{local};1", 4, cid, "s")),
            (0.0, pbx.ev("DialBegin", None, f"{local};1",
                         DialString=local.partition("/")[2].rpartition("-")[0]))]


def test_click_to_call_through_a_local_hop_to_the_phone() -> None:
    """Originate Local/1001@from-internal: its ;2 rings PJSIP/1001, then ;1 dials the number."""
    pbx, tracker = Pbx(), CallTracker()
    local = "Local/1001@from-internal-00000010"
    stream = originate_local(pbx, local, "34987654321")
    stream += [(0.0, pbx.new(PHONE, f"{local};1", 0, "<unknown>", "s")),
               (0.0, pbx.ev("DialBegin", f"{local};2", PHONE, DialString="1001")),
               (0.1, pbx.state(PHONE, 5)),
               (3.0, pbx.ev("DialEnd", f"{local};2", PHONE, DialStatus="ANSWER")),
               (3.0, pbx.ev("DialEnd", None, f"{local};1", DialStatus="ANSWER"))]
    stream += [(3.0 + t, m) for t, m in answered_call(pbx, f"{local};1", TRUNK,
                                                      "34987654321@trunk")]
    events = run(tracker, stream)
    assert tracker.channels(pbx.uid(f"{local};1")) == CallChannels(TRUNK, f"{local};1", PHONE)
    events += run(tracker, hangup_all(pbx, 20.0, TRUNK, f"{local};1", f"{local};2", PHONE))
    assert rows(events) == [
        ("call.ringing", 3.0, "out", "1001", "34987654321", "1001", (), None),
        ("call.answered", 6.0, "out", "1001", "34987654321", "1001", (), None),
        ("call.ended", 20.0, "out", "1001", "34987654321", "1001", (), "answered"),
    ]


def test_dialer_through_a_local_channel_and_a_queue() -> None:
    """Originate Local/<customer>@dialer-out (caller id: the company's number): its ;2
    dials the customer's trunk; once they answer, ;1 queues them for an agent."""
    pbx, tracker = Pbx(), CallTracker()
    local, agent = "Local/34917000001@dialer-out-00000011", "PJSIP/2001-00000012"
    stream = originate_local(pbx, local, "912000000")
    stream += answered_call(pbx, f"{local};2", TRUNK, "34917000001@trunk")[:-2]
    stream += [(3.5, pbx.ev("QueueCallerJoin", f"{local};1", Queue="ventas", Position="1")),
               (3.6, pbx.new(agent, f"{local};1", 0, "<unknown>", "s")),
               (3.6, pbx.ev("AgentCalled", f"{local};1", agent, Queue="ventas",
                            Interface="PJSIP/2001", MemberName="Ana")),
               (6.0, pbx.ev("AgentConnect", f"{local};1", agent, Queue="ventas"))]
    stream += hangup_all(pbx, 30.0, TRUNK, f"{local};2", f"{local};1", agent)
    assert rows(run(tracker, stream)) == [
        ("call.ringing", 0.0, "out", "", "34917000001", None, (), None),
        ("call.ringing", 3.6, "out", "", "34917000001", None, ("2001",), None),
        ("call.answered", 6.0, "out", "2001", "34917000001", "2001", (), None),
        ("call.ended", 30.0, "out", "2001", "34917000001", "2001", (), "answered"),
    ]


def test_media_and_snoop_channels_are_not_parties() -> None:
    """ARI external media and ChanSpy snoops join the call's Linkedid but nobody is on them."""
    pbx, tracker = Pbx(), CallTracker()
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001"))]
    stream += answered_call(pbx, TRUNK, PHONE, "1001")
    stream += [(4.0, pbx.new("UnicastRTP/127.0.0.1:4000-0x7f01", TRUNK, 6, "", "s")),
               (4.0, pbx.new("Snoop/1800000000.1-00000001", TRUNK, 6, "", "s")),
               (4.5, pbx.ev("BridgeEnter", "UnicastRTP/127.0.0.1:4000-0x7f01",
                            BridgeUniqueid="b1"))]
    run(tracker, stream)
    assert tracker.channels(pbx.uid(TRUNK)) == CallChannels(TRUNK, PHONE, PHONE)
    events = run(tracker, hangup_all(pbx, 9.0, TRUNK, PHONE))
    assert rows(events) == [
        ("call.ended", 9.0, "in", "34911111111", "912000001", "1001", (), "answered")]
    assert tracker.chans == {} and tracker.calls == {}


def test_inbound_line_without_a_did_names_the_phone_it_rang() -> None:
    pbx, tracker = Pbx(), CallTracker()
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "s"))]
    stream += answered_call(pbx, TRUNK, PHONE, "1001") + hangup_all(pbx, 5.0, TRUNK, PHONE)
    ended = [e.call for e in run(tracker, stream) if isinstance(e, CallEnded)]
    assert [(c.direction.value, c.caller, c.callee, c.agent) for c in ended] == [
        ("in", "34911111111", "1001", "1001")]


def listed(pbx: Pbx, name: str) -> Message:
    """The CoreShowChannel item Asterisk would list for a channel."""
    fields = pbx.chans[name]
    return Message([("Event", "CoreShowChannel"), *fields.items(), ("Application", "Wait"),
                    ("ApplicationData", ""), ("Duration", "00:00:01"), ("BridgeId", "")])


def test_resync_racing_the_live_events_of_the_new_session() -> None:
    """Lists are taken while live events flow: a call born after CoreShowChannels is not
    ended for missing from it, a channel listed but hung up since is not adopted."""
    pbx, tracker = Pbx(), CallTracker()
    first = [(0.0, NEW_SESSION), (0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001"))]
    run(tracker, first + answered_call(pbx, TRUNK, PHONE, "1001"))
    fresh, late = "PJSIP/trunk-00000020", "PJSIP/trunk-00000021"
    pbx.new(late, None, 4, "34933333333", "912000001")  # listed, then hangs up, unseen born
    second = [(10.0, NEW_SESSION), (10.1, pbx.new(fresh, None, 4, "34922222222", "912000001")),
              (10.2, pbx.ev("Hangup", late, Cause="16"))]
    events = run(tracker, second) + tracker.resync([listed(pbx, late)], [], [], 10.3)
    assert rows(events) == [  # the first call ended while the link was down
        ("call.ended", 10.3, "in", "34911111111", "912000001", "1001", (), "answered")]
    assert sorted(c.name for c in tracker.chans.values()) == [fresh]
    events = run(tracker, [(15.0, pbx.ev("Hangup", fresh, Cause="16"))])
    assert rows(events) == [
        ("call.ended", 15.0, "in", "34922222222", "912000001", None, (), "missed")]


def test_a_repeated_digit_sent_as_two_identical_dtmf_ends_counts_twice() -> None:
    pbx, tracker = Pbx(), CallTracker()
    stream = [(0.0, pbx.new(TRUNK, None, 4, "34911111111", "912000001"))]
    stream += answered_call(pbx, TRUNK, PHONE, "1001")
    run(tracker, stream)
    zero = pbx.ev("DTMFEnd", TRUNK, Digit="0", DurationMs="120", Direction="Received")
    events = run(tracker, [(4.0, zero), (4.1, zero)])
    assert [(e.topic, getattr(e, "digit", None)) for e in events] == [
        ("call.dtmf", "0"), ("call.dtmf", "0")]
