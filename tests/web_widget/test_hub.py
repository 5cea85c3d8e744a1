"""The agent hub on its own: numbering, replay, multi-socket, withdrawal, heartbeats, resync."""

from __future__ import annotations

import asyncio
import json

from kernel.events import (
    CallAnswered,
    CallEnded,
    CallHeld,
    CallInfo,
    CallRinging,
    CallState,
    CallTransferred,
    Direction,
    Disposition,
    PbxOffline,
    PbxOnline,
    ScreenPop,
)
from web_widget.hub import AgentHub, Outbox, call_payload


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(outbox: Outbox) -> list[dict]:
    out = []
    while not outbox.queue.empty():
        item = outbox.queue.get_nowait()
        assert item is not None
        out.append(json.loads(item))
    return out


def buffered(hub: AgentHub, ext: str) -> list[dict]:
    """What a widget resuming from the start of the buffer would be given."""
    return [json.loads(text) for text in hub.channel(ext).buffer]


def ringing(call_id: str = "c1", exts: tuple[str, ...] = ("1001", "1002")) -> CallInfo:
    return CallInfo(call_id, Direction.INBOUND, "+34911000001", "900", CallState.RINGING,
                    ringing=exts, started_at=10.0)


def answered(call: CallInfo, agent: str) -> CallInfo:
    return CallInfo(call.call_id, call.direction, call.caller, call.callee, CallState.UP,
                    agent=agent, ringing=call.ringing, started_at=10.0, answered_at=12.0)


def stripped(messages: list[dict]) -> list[tuple]:
    """(seq, type) pairs: the order and numbering a widget sees."""
    return [(m.get("seq"), m["type"]) for m in messages]


async def test_messages_are_numbered_per_agent_and_every_socket_gets_each():
    hub = AgentHub()
    a1, a2, b = Outbox(), Outbox(), Outbox()
    hub.attach("1001", a1, last_seq=0, epoch=hub.epoch)
    hub.attach("1001", a2, last_seq=0, epoch=hub.epoch)
    hub.attach("1002", b, last_seq=0, epoch=hub.epoch)
    hub.flush_presence()  # both sign-ins in one presence message, seq 1 in each stream
    drain(a1), drain(a2), drain(b)
    hub.send("1001", {"type": "x"})
    hub.send("1001", {"type": "y"})
    hub.send("1002", {"type": "z"})
    assert drain(a1) == [{"seq": 2, "type": "x"}, {"seq": 3, "type": "y"}]
    assert drain(a2) == [{"seq": 2, "type": "x"}, {"seq": 3, "type": "y"}]
    assert drain(b) == [{"seq": 2, "type": "z"}]  # 1002's stream counts on its own


async def test_reconnect_replays_exactly_what_was_missed_in_order():
    hub = AgentHub()
    first = Outbox()
    hub.attach("1001", first, last_seq=0, epoch=hub.epoch)
    seen = drain(first)
    for i in range(3):
        hub.send("1001", {"type": "tick", "i": i})
    seen += drain(first)
    last = seen[-1]["seq"]
    hub.detach("1001", first)
    for i in range(3, 8):
        hub.send("1001", {"type": "tick", "i": i})
    again = Outbox()
    mode = hub.attach("1001", again, last_seq=last, epoch=hub.epoch)
    hub.send("1001", {"type": "tick", "i": 8})
    resumed = drain(again)
    assert mode == "replay"
    assert [m["i"] for m in seen + resumed if m["type"] == "tick"] == list(range(9))
    seqs = [m["seq"] for m in seen + resumed]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_resume_older_than_the_buffer_or_another_epoch_gets_a_resync():
    hub = AgentHub(buffer_size=4)
    box = Outbox()
    hub.attach("1001", box, last_seq=0, epoch=hub.epoch)
    hub.flush_presence()  # seq 1
    for i in range(10):
        hub.send("1001", {"type": "tick", "i": i})
    hub.detach("1001", box)
    late = Outbox()
    assert hub.attach("1001", late, last_seq=2, epoch=hub.epoch) == "resync"
    (resync,) = drain(late)
    assert resync == {"type": "resync", "seq": 11, "epoch": hub.epoch, "calls": [],
                      "team": [{"agent": "1001", "name": "1001", "status": "online",
                                "lagged": False, "widgets": 0}], "pbx": {}}
    other = Outbox()
    assert hub.attach("1001", other, last_seq=11, epoch="before-restart") == "resync"
    assert hub.attach("1001", Outbox(), last_seq=11, epoch=hub.epoch) == "replay"


async def test_answer_withdraws_the_pop_from_the_other_ringing_agents():
    hub = AgentHub()
    boxes = {ext: Outbox() for ext in ("1001", "1002", "1003")}
    for ext, box in boxes.items():
        hub.attach(ext, box, last_seq=0, epoch=hub.epoch)
    for box in boxes.values():
        drain(box)
    call = ringing()
    card = {"name": "Ana García", "company": "Acme"}
    await hub.on_event(CallRinging(call=call))
    await hub.on_event(ScreenPop(call_id="c1", agents=("1001", "1002"), card=card))
    await hub.on_event(CallAnswered(call=answered(call, "1002")))
    got = {ext: [{k: v for k, v in m.items() if k != "seq"} for m in drain(box)]
           for ext, box in boxes.items()}
    ring = {"type": "call.ringing", "call": call_payload(call)}
    pop = {"type": "screen_pop", "call_id": "c1", "card": card}
    assert got["1001"] == [ring, pop, {"type": "call.answered_elsewhere", "call_id": "c1",
                                       "answered_by": "1002"}]
    assert got["1002"] == [ring, pop, {"type": "call.answered",
                                       "call": call_payload(answered(call, "1002"))}]
    assert got["1003"] == []
    # Later events of the call go to the answering agent only.
    await hub.on_event(CallHeld(call=answered(call, "1002")))
    assert drain(boxes["1001"]) == []
    assert [m["type"] for m in drain(boxes["1002"])] == ["call.held"]


async def test_unanswered_call_end_reaches_every_ringing_agent_and_clears_state():
    hub = AgentHub()
    call = ringing(exts=("1001", "1002"))
    await hub.on_event(CallRinging(call=call))
    ended = CallInfo("c1", Direction.INBOUND, call.caller, "900", CallState.ENDED,
                     ringing=call.ringing, disposition=Disposition.MISSED)
    await hub.on_event(CallEnded(call=ended))
    for ext in ("1001", "1002"):
        assert buffered(hub, ext) == [
            {"seq": 1, "type": "call.ringing", "call": call_payload(call)},
            {"seq": 2, "type": "call.ended", "call": call_payload(ended)},
        ]
    assert hub.live_call("c1") is None
    assert hub.involved("c1") == frozenset()


async def test_resync_carries_the_live_call_with_its_card():
    hub = AgentHub(buffer_size=2)
    call = ringing(exts=("1001",))
    await hub.on_event(CallRinging(call=call))
    await hub.on_event(ScreenPop(call_id="c1", agents=("1001",), card={"name": "Ana"}))
    await hub.on_event(PbxOffline(pbx="asterisk", reason="link lost"))
    snap = hub.snapshot("1001")
    assert snap["calls"] == [{"call": call_payload(call), "card": {"name": "Ana"}}]
    assert snap["pbx"] == {"asterisk": False}
    await hub.on_event(PbxOnline(pbx="asterisk"))
    assert hub.snapshot("1001")["pbx"] == {"asterisk": True}


async def test_pbx_offline_reaches_every_agent():
    hub = AgentHub()
    boxes = [Outbox(), Outbox()]
    hub.attach("1001", boxes[0], last_seq=0, epoch=hub.epoch)
    hub.attach("1002", boxes[1], last_seq=0, epoch=hub.epoch)
    drain(boxes[0]), drain(boxes[1])
    await hub.on_event(PbxOffline(pbx="asterisk", reason="link lost"))
    for box in boxes:
        (msg,) = drain(box)
        assert {k: v for k, v in msg.items() if k != "seq"} == {
            "type": "pbx.offline", "pbx": "asterisk", "reason": "link lost"}


async def test_late_heartbeat_marks_lagged_then_offline_only_after_the_sockets_are_gone():
    clock = Clock()
    hub = AgentHub(heartbeat_s=10, offline_after_s=60, clock=clock)
    watcher, agent = Outbox(), Outbox()
    hub.attach("2000", watcher, last_seq=0, epoch=hub.epoch, role="supervisor")
    hub.attach("1001", agent, last_seq=0, epoch=hub.epoch, name="Ana")
    hub.flush_presence()
    drain(watcher)
    clock.now += 15
    hub.heartbeat("2000")
    assert hub.check_heartbeats() == []
    clock.now += 10  # 25 s without a ping from 1001: two periods missed
    hub.heartbeat("2000")
    assert hub.check_heartbeats() == ["1001"]
    hub.flush_presence()
    presence = [{k: v for k, v in m.items() if k != "seq"} for m in drain(watcher)]
    assert presence == [{"type": "presence", "agents": [
        {"agent": "1001", "name": "Ana", "status": "online", "lagged": True, "widgets": 1}]}]
    assert hub.channel("1001").sockets == {agent}  # lagged, never logged out
    hub.heartbeat("1001")
    hub.flush_presence()
    assert drain(watcher)[-1]["agents"][0]["lagged"] is False
    hub.detach("1001", agent)
    clock.now += 59
    hub.heartbeat("2000")
    assert hub.check_heartbeats() == ["1001"]
    hub.flush_presence()
    assert drain(watcher)[-1]["agents"] == [
        {"agent": "1001", "name": "Ana", "status": "online", "lagged": True, "widgets": 0}]
    clock.now += 1
    hub.heartbeat("2000")
    assert hub.check_heartbeats() == ["1001"]
    hub.flush_presence()
    assert drain(watcher)[-1]["agents"][0]["status"] == "offline"


async def test_presence_is_broadcast_to_teammates_and_validated():
    hub = AgentHub()
    a, b = Outbox(), Outbox()
    hub.attach("1001", a, last_seq=0, epoch=hub.epoch, name="Ana")
    hub.attach("1002", b, last_seq=0, epoch=hub.epoch, name="Luis")
    hub.flush_presence()
    drain(a), drain(b)
    hub.set_presence("1001", "away")
    hub.set_presence("1001", "busy")  # within one batch: only the latest goes out
    assert drain(b) == []  # not yet: changes wait for the batch
    hub.flush_presence()
    expected = {"type": "presence", "agents": [
        {"agent": "1001", "name": "Ana", "status": "busy", "lagged": False, "widgets": 1}]}
    assert [{k: v for k, v in m.items() if k != "seq"} for m in drain(b)] == [expected]
    try:
        hub.set_presence("1001", "dancing")
    except ValueError as err:
        assert "online" in str(err)
    else:
        raise AssertionError("an unknown presence was accepted")


async def test_a_socket_that_stops_reading_is_cut_off_not_buffered_forever():
    hub = AgentHub()
    slow = Outbox(limit=3)
    hub.attach("1001", slow, last_seq=0, epoch=hub.epoch)
    for i in range(5):
        hub.send("1001", {"type": "tick", "i": i})
    assert slow.overflowed
    items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert items[-1] is None
    await asyncio.sleep(0)


async def test_a_resync_gives_each_agent_the_card_popped_for_them_only():
    hub = AgentHub()
    await hub.on_event(CallRinging(call=ringing(exts=("1001", "1002"))))
    await hub.on_event(ScreenPop(call_id="c1", agents=("1001",), card={"name": "Cliente privado"}))
    await hub.on_event(ScreenPop(call_id="c1", agents=("1002",), card={"name": ""}))
    assert [c["card"] for c in hub.snapshot("1001")["calls"]] == [{"name": "Cliente privado"}]
    assert [c["card"] for c in hub.snapshot("1002")["calls"]] == [{"name": ""}]
    assert hub.snapshot("1003")["calls"] == []


async def test_a_transfer_brings_the_target_into_the_call_and_ends_for_both():
    hub = AgentHub()
    call = answered(ringing(exts=("1001",)), "1001")
    await hub.on_event(CallAnswered(call=call))
    moved = CallInfo("c1", call.direction, call.caller, call.callee, CallState.TRANSFERRED,
                     agent="1001", ringing=("1001",), started_at=10.0, answered_at=12.0)
    await hub.on_event(CallTransferred(call=moved, mode="blind", target="1003"))
    ended = CallInfo("c1", call.direction, call.caller, call.callee, CallState.ENDED,
                     agent="1003", ringing=("1001",), started_at=10.0, answered_at=12.0,
                     ended_at=30.0, disposition=Disposition.ANSWERED)
    await hub.on_event(CallEnded(call=ended))
    seen = {ext: [(m["type"], m.get("target")) for m in buffered(hub, ext)]
            for ext in ("1001", "1003")}
    assert seen == {
        "1001": [("call.answered", None), ("call.transferred", "1003"), ("call.ended", None)],
        "1003": [("call.transferred", "1003"), ("call.ended", None)],
    }


async def test_a_reconnect_restores_the_presence_the_agent_chose():
    clock = Clock()
    hub = AgentHub(heartbeat_s=10, offline_after_s=60, clock=clock)
    first = Outbox()
    hub.attach("1001", first, last_seq=0, epoch=hub.epoch)
    hub.set_presence("1001", "away")
    hub.detach("1001", first)
    clock.now += 61
    hub.check_heartbeats()
    assert hub.channel("1001").presence == "offline"
    hub.attach("1001", Outbox(), last_seq=None)
    assert (hub.channel("1001").presence, hub.channel("1001").lagged) == ("away", False)
    hub.set_presence("1001", "offline")  # chosen offline stays offline across reconnects
    hub.attach("1001", Outbox(), last_seq=None)
    assert hub.channel("1001").presence == "offline"


async def test_a_shift_signing_in_costs_one_presence_message_per_agent_not_n_squared():
    hub = AgentHub(presence_batch_s=0.01)
    boxes = {f"1{n:03d}": Outbox() for n in range(300)}
    for key, box in boxes.items():
        hub.attach(key, box, last_seq=0, epoch=hub.epoch)
    text = await asyncio.wait_for(boxes["1000"].queue.get(), 5)  # the batch timer fired
    assert text is not None
    first = json.loads(text)
    assert first["type"] == "presence"
    assert [a["agent"] for a in first["agents"]] == list(boxes)
    for box in boxes.values():
        assert len(drain(box)) == (0 if box is boxes["1000"] else 1)
    hub.flush_presence()  # nothing changed since: nothing to send
    assert all(box.queue.empty() for box in boxes.values())
