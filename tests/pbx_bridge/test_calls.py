"""The PBX-neutral call machine, table-driven: leg facts in, call events out."""

from __future__ import annotations

from typing import Any

import pytest

from kernel.events import CallEvent, Event, from_dict
from pbx_bridge.calls import (
    CallGone,
    CallMachine,
    CallPlaced,
    DtmfReceived,
    Fact,
    HoldChanged,
    LegAdded,
    LegAnswered,
    LegHungUp,
    LegRinging,
    Party,
    QueueAbandoned,
    QueueJoined,
    RecordingChanged,
    Transferred,
)

ID = "c1"
CUSTOMER, DID = Party("34911111111"), Party.service("912000001")


def add(at: float, leg: str, party: Party, origin: bool = False) -> Fact:
    return LegAdded(call_id=ID, at=at, leg=leg, party=party, origin=origin)


def ring(at: float, leg: str) -> Fact:
    return LegRinging(call_id=ID, at=at, leg=leg)


def answer(at: float, leg: str) -> Fact:
    return LegAnswered(call_id=ID, at=at, leg=leg)


def bye(at: float, leg: str, cause: int = 16) -> Fact:
    return LegHungUp(call_id=ID, at=at, leg=leg, cause=cause)


def placed(at: float, by_pbx: bool = False, dialed: Party | None = DID) -> Fact:
    return CallPlaced(call_id=ID, at=at, by_pbx=by_pbx, dialed=dialed)


def inbound(*agents: str) -> list[Fact]:
    facts = [add(0.0, "trunk", CUSTOMER, origin=True), placed(0.0)]
    for ext in agents:
        facts += [add(0.1, ext, Party.extension(ext)), ring(0.1, ext)]
    return facts


def row(event: Event) -> tuple[Any, ...]:
    assert isinstance(event, CallEvent)
    c = event.call
    extra = tuple(getattr(event, k) for k in ("mode", "target", "digit", "path")
                  if hasattr(event, k))
    return (event.topic, event.at, c.state.value, c.direction.value, c.caller, c.callee, c.agent,
            c.ringing, c.disposition.value if c.disposition else None, *extra)


IN = ("in", "34911111111", "912000001")
CASES: dict[str, tuple[list[Fact], list[tuple[Any, ...]]]] = {
    "ring-all answered by one, the other withdrawn": (
        [*inbound("2001", "2002"), answer(3.0, "2002"), bye(3.0, "2001", 26),
         bye(9.0, "trunk"), bye(9.0, "2002")],
        [("call.ringing", 0.1, "ringing", *IN, None, ("2001",), None),
         ("call.ringing", 0.1, "ringing", *IN, None, ("2001", "2002"), None),
         ("call.answered", 3.0, "up", *IN, "2002", (), None),
         ("call.ended", 9.0, "ended", *IN, "2002", (), "answered")],
    ),
    "nobody answers: missed": (
        [*inbound("1001"), bye(6.0, "1001", 0), bye(9.0, "trunk", 19)],
        [("call.ringing", 0.1, "ringing", *IN, None, ("1001",), None),
         ("call.ended", 9.0, "ended", *IN, None, (), "missed")],
    ),
    "the agent is busy": (
        [*inbound("1001"), bye(0.2, "1001", 17), bye(0.3, "trunk", 17)],
        [("call.ringing", 0.1, "ringing", *IN, None, ("1001",), None),
         ("call.ended", 0.3, "ended", *IN, None, (), "busy")],
    ),
    "an unreachable phone still leaves a missed call": (
        [*inbound("1001"), bye(0.2, "1001", 20), bye(0.3, "trunk", 16)],
        [("call.ringing", 0.1, "ringing", *IN, None, ("1001",), None),
         ("call.ended", 0.3, "ended", *IN, None, (), "missed")],
    ),
    "an outbound call into congestion fails": (
        [add(0.0, "phone", Party.extension("1001"), origin=True),
         add(0.0, "line", Party("34987654321")), placed(0.0, dialed=Party("34987654321")),
         ring(0.0, "line"), bye(0.1, "line", 34), bye(0.2, "phone")],
        [("call.ringing", 0.0, "ringing", "out", "1001", "34987654321", "1001", (), None),
         ("call.ended", 0.2, "ended", "out", "1001", "34987654321", "1001", (), "failed")],
    ),
    "queue caller gives up: abandoned": (
        [add(0.0, "trunk", CUSTOMER, origin=True), placed(0.0),
         QueueJoined(call_id=ID, at=0.5, queue="ventas"), add(0.6, "2001", Party.extension("2001")),
         ring(0.6, "2001"), QueueAbandoned(call_id=ID, at=7.0, queue="ventas"),
         bye(7.0, "2001", 0), bye(7.0, "trunk")],
        [("call.ringing", 0.6, "ringing", *IN, None, ("2001",), None),
         ("call.ended", 7.0, "ended", *IN, None, (), "abandoned")],
    ),
    "click-to-call: the agent's phone first, then the customer": (
        [add(0.0, "phone", Party.extension("1001"), origin=True), ring(0.0, "phone"),
         answer(2.0, "phone"), add(2.0, "line", Party("34987654321")),
         placed(2.0, by_pbx=True, dialed=Party("34987654321")), ring(2.0, "line"),
         answer(4.0, "line"), bye(9.5, "line"), bye(9.5, "phone")],
        [("call.ringing", 2.0, "ringing", "out", "1001", "34987654321", "1001", (), None),
         ("call.answered", 4.0, "up", "out", "1001", "34987654321", "1001", (), None),
         ("call.ended", 9.5, "ended", "out", "1001", "34987654321", "1001", (), "answered")],
    ),
    "dialer: the customer never answers": (
        [add(0.0, "line", Party("34917000003"), origin=True),
         placed(0.0, by_pbx=True, dialed=None), ring(0.0, "line"), bye(8.0, "line", 19)],
        [("call.ringing", 0.0, "ringing", "out", "", "34917000003", None, (), None),
         ("call.ended", 8.0, "ended", "out", "", "34917000003", None, (), "missed")],
    ),
    "hold and resume only while talking": (
        [*inbound("1001"), HoldChanged(call_id=ID, at=0.5, held=True), answer(2.0, "1001"),
         HoldChanged(call_id=ID, at=3.0, held=True), HoldChanged(call_id=ID, at=3.1, held=True),
         HoldChanged(call_id=ID, at=6.0, held=False), HoldChanged(call_id=ID, at=6.1, held=False),
         CallGone(call_id=ID, at=8.0)],
        [("call.ringing", 0.1, "ringing", *IN, None, ("1001",), None),
         ("call.answered", 2.0, "up", *IN, "1001", (), None),
         ("call.held", 3.0, "held", *IN, "1001", (), None),
         ("call.resumed", 6.0, "up", *IN, "1001", (), None),
         ("call.ended", 8.0, "ended", *IN, "1001", (), "answered")],
    ),
    "blind transfer: the target rings, then answers": (
        [*inbound("1001"), answer(2.0, "1001"),
         Transferred(call_id=ID, at=3.0, mode="blind", target=Party.extension("1002")),
         bye(3.0, "1001"), add(3.0, "1002", Party.extension("1002")), ring(3.0, "1002"),
         answer(5.0, "1002"), bye(14.0, "trunk"), bye(14.0, "1002")],
        [("call.ringing", 0.1, "ringing", *IN, None, ("1001",), None),
         ("call.answered", 2.0, "up", *IN, "1001", (), None),
         ("call.transferred", 3.0, "transferred", *IN, "1001", (), None, "blind", "1002"),
         ("call.ringing", 3.0, "transferred", *IN, "1001", ("1002",), None),
         ("call.answered", 5.0, "up", *IN, "1002", (), None),
         ("call.ended", 14.0, "ended", *IN, "1002", (), "answered")],
    ),
    "attended transfer to an outside number the agent consulted": (
        [*inbound("1001"), answer(2.0, "1001"), add(3.0, "mobile", Party("612345678")),
         ring(3.0, "mobile"), answer(5.0, "mobile"),
         Transferred(call_id=ID, at=6.0, mode="attended", target=Party("612345678")),
         bye(6.0, "1001"), bye(30.0, "trunk"), bye(30.0, "mobile")],
        [("call.ringing", 0.1, "ringing", *IN, None, ("1001",), None),
         ("call.answered", 2.0, "up", *IN, "1001", (), None),
         ("call.transferred", 6.0, "up", *IN, "1001", (), None, "attended", "612345678"),
         ("call.ended", 30.0, "ended", *IN, "1001", (), "answered")],
    ),
    "recording still on at the end is ready before the call ends": (
        [*inbound("1001"), answer(2.0, "1001"),
         RecordingChanged(call_id=ID, at=2.5, active=True, path="/r/a.wav"),
         DtmfReceived(call_id=ID, at=3.0, digit="5"), bye(5.0, "trunk"), bye(5.0, "1001")],
        [("call.ringing", 0.1, "ringing", *IN, None, ("1001",), None),
         ("call.answered", 2.0, "up", *IN, "1001", (), None),
         ("recording.started", 2.5, "up", *IN, "1001", (), None),
         ("call.dtmf", 3.0, "up", *IN, "1001", (), None, "5"),
         ("recording.ready", 5.0, "up", *IN, "1001", (), None, "/r/a.wav"),
         ("call.ended", 5.0, "ended", *IN, "1001", (), "answered")],
    ),
    "an agent's call that reaches nobody is no call record": (
        [add(0.0, "spy", Party.extension("3001"), origin=True), ring(0.0, "spy"),
         answer(0.1, "spy"), bye(9.0, "spy", 0)],
        [],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_facts_give_events(name: str) -> None:
    facts, expected = CASES[name]
    machine = CallMachine()
    assert [row(e) for f in facts for e in machine.apply(f)] == expected
    assert machine.live_calls() == []


@pytest.mark.parametrize("name", list(CASES))
def test_each_fact_twice_gives_the_same_events(name: str) -> None:
    facts, expected = CASES[name]
    machine = CallMachine()
    events = [row(e) for f in facts for e in machine.apply(f) + machine.apply(f)]
    dtmf_free = [r for r in events if r[0] != "call.dtmf"]
    assert dtmf_free == [r for r in expected if r[0] != "call.dtmf"]


def test_facts_after_the_end_are_ignored() -> None:
    machine = CallMachine()
    for fact in [*inbound("1001"), answer(1.0, "1001"), CallGone(call_id=ID, at=2.0)]:
        machine.apply(fact)
    late = [bye(3.0, "trunk"), add(3.0, "x", Party("1")), ring(3.0, "1001"),
            CallGone(call_id=ID, at=4.0)]
    assert [e for f in late for e in machine.apply(f)] == []
    assert machine.has_ended(ID) and not machine.is_live(ID)


def test_live_calls_and_the_legs_the_port_acts_on() -> None:
    machine = CallMachine()
    for fact in [*inbound("2001", "2002"), answer(3.0, "2001")]:
        machine.apply(fact)
    (info,) = machine.live_calls()
    assert (info.call_id, info.state.value, info.agent, info.answered_at) == (ID, "up", "2001", 3.0)
    assert (machine.customer_leg(ID), machine.agent_leg(ID)) == ("trunk", "2001")
    assert machine.snapshot("nope") is None and machine.agent_leg("nope") is None


def test_ended_event_survives_the_redis_wire_shape() -> None:
    machine = CallMachine()
    facts = [*inbound("1001"), answer(2.0, "1001"), bye(5.0, "trunk"), bye(5.0, "1001")]
    ended = [e for f in facts for e in machine.apply(f)][-1]
    assert from_dict(ended.to_dict()) == ended
