"""The control API (inbound, queue_call, agent behaviour, load, demo) and call actions."""

from __future__ import annotations

import asyncio

from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.simulator import Simulator, run_simulator
from tests.pbx_bridge.simulator.client import Client


def _events(client: Client, name: str) -> list[Message]:
    return [m for m in client.messages if m.event == name]


async def test_inbound_to_an_agent_who_never_answers_ends_when_the_caller_gives_up(
    sim: Simulator,
) -> None:
    client = await Client.connect(sim)
    await client.login()
    caller = await sim.inbound(
        caller="34600111222", extension="1007", answer_after=None, talk=5, give_up_after=4
    )
    hangup = await client.until(lambda m: m.event == "Hangup" and m["Channel"] == caller.name)
    begin = next(m for m in _events(client, "DialBegin") if m.get("Channel") == caller.name)
    assert (begin["DestChannel"].rsplit("-", 1)[0], begin["DialString"]) == (
        "Local/1007@agent-answer",
        "Local/1007@agent-answer",
    )
    assert [m["DialStatus"] for m in _events(client, "DialEnd")] == ["CANCEL"]
    assert (hangup["Cause"], hangup["CallerIDNum"]) == ("19", "34600111222")
    assert sim.live_channels() == []


async def test_agent_answering_after_a_delay_talks_then_the_caller_hangs_up(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    caller = await sim.inbound(
        caller="34600111333", extension="1005", answer_after=1, talk=2, give_up_after=3600
    )
    await client.until(lambda m: m.event == "Hangup" and m["Channel"] == caller.name)
    assert [m["DialStatus"] for m in _events(client, "DialEnd")] == ["ANSWER", "ANSWER"]
    entered = [m["Channel"].rsplit("-", 1)[0] for m in _events(client, "BridgeEnter")]
    assert entered == ["Local/1005@agent-answer", "Local/910901005@from-pstn"]
    assert {m["Cause"] for m in _events(client, "Hangup")} == {"16"}


async def test_busy_agent_and_queue_call_waiting_show_in_queue_lists(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    await client.send("Setvar", ActionID="s1", Variable="QAGENTS_ANSWER", Value="0")
    caller = await sim.queue_call(caller="34600999000", talk=30)
    await client.until(lambda m: m.event == "AgentCalled" and "2002" in m["Interface"])
    await client.send("QueueStatus", ActionID="q1", Queue="ventas")
    await client.until(lambda m: m.event == "QueueStatusComplete")
    entry = next(m for m in client.messages if m.event == "QueueEntry")
    members = {m["Name"]: m["Status"] for m in client.messages if m.event == "QueueMember"}
    assert (entry["Channel"], entry["Position"], entry["CallerIDNum"]) == (
        caller.name,
        "1",
        "34600999000",
    )
    assert members == {"Agente 2001": "2", "Agente 2002": "2"}
    await client.send("QueueSummary", ActionID="q2")
    summary = await client.until(lambda m: m.event == "QueueSummary" and m["Queue"] == "ventas")
    assert (summary["Callers"], summary["Available"], summary["LoggedIn"]) == ("1", "0", "2")


async def test_events_off_gets_responses_but_no_events(sim: Simulator) -> None:
    quiet = await Client.connect(sim)
    reply = await quiet.send(
        "Login", ActionID="l1", Username="centralita", Secret="not-a-secret", Events="off"
    )
    loud = await Client.connect(sim)
    await loud.login()
    caller = await sim.inbound(extension="1001", answer_after=0.2, talk=0.2)
    await loud.until(lambda m: m.event == "Hangup" and m["Channel"] == caller.name)
    pong = await quiet.send("Ping", ActionID="p1")
    assert reply.get("Message") == "Authentication accepted"
    assert [m.event or m.response for m in quiet.messages] == ["Success", "FullyBooted", "Success"]
    assert pong.get("Ping") == "Pong"


async def test_sync_originate_answers_only_once_the_agent_is_up(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    reply = await client.send(
        "Originate",
        ActionID="o1",
        Channel="Local/1001@agent-answer",
        Context="outbound",
        Exten="34987654321",
        Priority="1",
        CallerID='"Llamada" <34987654321>',
    )
    up = [m for m in client.messages if m.event == "Newstate" and m["ChannelState"] == "6"]
    assert (reply.response, reply.get("Message")) == ("Success", "Originate successfully queued")
    assert up[0]["Channel"].startswith("Local/1001@agent-answer-")
    assert _events(client, "OriginateResponse") == []


async def test_hangup_mute_and_bridge_actions(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    first = await sim.inbound(caller="34600000001", extension="1001", answer_after=0.1, talk=60)
    second = await sim.inbound(caller="34600000002", extension="1002", answer_after=0.1, talk=60)
    await client.until(lambda m: m.event == "BridgeEnter" and m["Channel"] == second.name)
    missing = await client.send("Hangup", ActionID="h0", Channel="Local/nobody@x-00000000;1")
    assert (missing.response, missing.get("Message")) == ("Error", "No such channel")
    no_state = await client.send("MuteAudio", ActionID="m0", Channel=first.name, Direction="in")
    assert no_state.get("Message") == "State not specified"
    muted = await client.send(
        "MuteAudio", ActionID="m1", Channel=first.name, Direction="in", State="on"
    )
    assert (muted.headers, first.muted) == ([("Response", "Success"), ("ActionID", "m1")], "in")
    bridged = await client.send("Bridge", ActionID="b1", Channel1=first.name, Channel2=second.name)
    assert bridged.get("Message") == "Channels have been bridged"
    assert first.bridge is second.bridge and first.bridge is not None
    hung = await client.send("Hangup", ActionID="h1", Channel=first.name)
    assert hung.get("Message") == "Channel Hungup"
    await client.until(lambda m: m.event == "Hangup" and m["Channel"] == second.name)
    assert sim.live_channels() == []


async def test_load_generator_runs_its_mix_to_the_end() -> None:
    # 10x: callers give up after 30 simulated seconds, which must stay far off
    # even when the machine is busy.
    async with Simulator("centralita", "not-a-secret", speed=10) as sim:
        await sim.start()
        client = await Client.connect(sim)
        await client.login()
        mix = {"answered": 3, "busy": 1}
        counts = await sim.run_load(calls_per_second=40, duration_s=0.5, mix=mix)
        assert sum(counts.values()) == 20 and set(counts) == {"answered", "busy"}
        # Every call is two Local pairs (caller and agent): 80 channels hang up in the end.
        await client.until(lambda _: len(_events(client, "Hangup")) == 80, wait_s=10)
        agent_dials = [m for m in _events(client, "DialEnd") if "Channel" in m]
        statuses = sorted(m["DialStatus"] for m in agent_dials)
        assert statuses == ["ANSWER"] * counts["answered"] + ["BUSY"] * counts["busy"]
        assert sim.live_channels() == []


async def test_run_simulator_serves_demo_calls() -> None:
    sim = await run_simulator(
        "127.0.0.1", 0, "demo", "demo-secret", speed=50, demo_calls_every=0.05
    )
    try:
        client = await Client.connect(sim)
        reply = await client.send("Login", ActionID="l1", Username="demo", Secret="demo-secret")
        assert reply.response == "Success"
        joined = await client.until(
            lambda m: m.event in ("QueueCallerJoin", "AgentConnect"), wait_s=10
        )
        assert joined["Queue"] == "ventas"
    finally:
        await sim.close()
    await asyncio.sleep(0)
    assert sim.sessions == []


async def test_per_call_agent_timing_does_not_change_the_agent_for_later_calls(
    sim: Simulator,
) -> None:
    client = await Client.connect(sim)
    await client.login()
    first = await sim.inbound(extension="1001", answer_after=None, give_up_after=1)
    await client.until(lambda m: m.event == "Hangup" and m["Channel"] == first.name)
    second = await sim.inbound(did="912000001", talk=0.5, give_up_after=3600)
    await client.until(lambda m: m.event == "Hangup" and m["Channel"] == second.name)
    agent_dials = [m for m in _events(client, "DialEnd") if "Channel" in m]
    statuses = [(m["Channel"] == second.name, m["DialStatus"]) for m in agent_dials]
    assert statuses == [(False, "CANCEL"), (True, "ANSWER")]


async def test_redirect_with_extra_channel_moves_both_parties(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    caller = await sim.inbound(caller="34600000077", extension="1001", answer_after=0.1, talk=60)
    await client.until(lambda m: m.event == "BridgeEnter" and m["Channel"] == caller.name)
    agent = next(c for c in caller.bridge.members if c is not caller) if caller.bridge else None
    assert agent is not None
    reply = await client.send(
        "Redirect",
        ActionID="r1",
        Channel=caller.name,
        Context="from-pstn",
        Exten="912000010",
        Priority="1",
        ExtraChannel=agent.name,
        ExtraContext="from-internal",
        ExtraExten="1002",
        ExtraPriority="1",
    )
    assert reply.get("Message") == "Redirect successful"
    joined = await client.until(lambda m: m.event == "QueueCallerJoin")
    dialled = await client.until(
        lambda m: m.event == "DialBegin" and m.get("Channel") == agent.name
    )
    assert (joined["Channel"], joined["Uniqueid"], joined["Queue"]) == (
        caller.name,
        caller.uniqueid,
        "ventas",
    )
    assert dialled["DestChannel"].startswith("Local/1002@agent-answer-")
    left = {m["Channel"] for m in _events(client, "BridgeLeave")}
    hung = {m["Channel"] for m in _events(client, "Hangup")}
    assert left == {caller.name, agent.name} and hung.isdisjoint(left)


async def test_a_message_without_action_is_refused(sim: Simulator) -> None:
    client = await Client.connect(sim)
    client.writer.write(b"ActionID: x1\r\nFoo: bar\r\n\r\n")
    reply = await client.until(lambda m: m.action_id == "x1")
    assert reply.headers == [
        ("Response", "Error"),
        ("ActionID", "x1"),
        ("Message", "Missing action in request"),
    ]


async def test_soporte_rings_its_member_round_robin_until_the_caller_abandons(
    sim: Simulator,
) -> None:
    client = await Client.connect(sim)
    await client.login()
    caller = await sim.queue_call(caller="34600555000", queue="soporte", talk=3600)
    # 4 s ring, no answer, 1 s retry, ring again; then the caller gives up.
    await client.until(lambda _: len(_events(client, "AgentCalled")) == 2)
    await client.send(
        "Hangup", ActionID="h1", Channel=caller.partner.name if caller.partner else ""
    )
    await client.until(lambda m: m.event == "Hangup" and m["Channel"] == caller.name)
    queue_events = [
        (m.event, m.get("MemberName"), m.get("RingTime"))
        for m in client.messages
        if m.event in ("AgentCalled", "AgentRingNoAnswer", "QueueCallerAbandon")
    ]
    assert queue_events == [
        ("AgentCalled", "Agente 2002", ""),
        ("AgentRingNoAnswer", "Agente 2002", "4"),
        ("AgentCalled", "Agente 2002", ""),
        ("QueueCallerAbandon", "", ""),
    ]
    abandon = _events(client, "QueueCallerAbandon")[0]
    assert (abandon["Queue"], abandon["Position"], abandon["OriginalPosition"]) == (
        "soporte",
        "1",
        "1",
    )
    assert sim.live_channels() == []


async def test_getvar_reads_globals_and_the_bridge_peer(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    await client.send("Setvar", ActionID="s1", Variable="QAGENTS_ANSWER", Value="0")
    caller = await sim.inbound(extension="1001", answer_after=0.1, talk=60)
    await client.until(lambda m: m.event == "BridgeEnter" and m["Channel"] == caller.name)
    agent = next(c for c in caller.bridge.members if c is not caller) if caller.bridge else None
    glob = await client.send("Getvar", ActionID="g1", Variable="QAGENTS_ANSWER")
    peer = await client.send("Getvar", ActionID="g2", Channel=caller.name, Variable="BRIDGEPEER")
    assert (glob["Variable"], glob["Value"]) == ("QAGENTS_ANSWER", "0")
    assert agent is not None and peer["Value"] == agent.name


async def test_dialer_customers_and_added_agents_follow_their_behaviour(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    sim.set_customer_behaviour("34911000001", "answer", answer_after=0.5, talk=3)
    sim.set_customer_behaviour("34911000002", "congestion")
    sim.set_agent_behaviour("2003", "answer", answer_after=1)
    await client.send(
        "QueuePause", ActionID="p1", Interface="Local/2002@queue-agents/n", Paused="true"
    )
    await client.send(
        "QueuePause", ActionID="p2", Interface="Local/2001@queue-agents/n", Paused="true"
    )
    added = await client.send(
        "QueueAdd",
        ActionID="a1",
        Queue="ventas",
        Interface="Local/2003@queue-agents/n",
        MemberName="Agente 2003",
    )
    assert added.get("Message") == "Added interface to queue"
    for n, number in enumerate(("34911000001", "34911000002"), 1):
        await client.send(
            "Originate",
            ActionID=f"o{n}",
            Channel=f"Local/{number}@pstn-out",
            Context="dialer-connect",
            Exten="ventas",
            Priority="1",
            CallerID=f'"c1 {n}" <{number}>',
            Async="true",
        )
    complete = await client.until(lambda m: m.event == "AgentComplete")
    await client.until(lambda _: len(_events(client, "OriginateResponse")) == 2)
    reasons = {m.action_id: m["Reason"] for m in _events(client, "OriginateResponse")}
    connect = _events(client, "AgentConnect")
    status = [m["Status"] for m in _events(client, "QueueMemberAdded")]
    assert (reasons, status) == ({"o1": "4", "o2": "8"}, ["1"])
    assert [(m["MemberName"], m["CallerIDNum"]) for m in connect] == [
        ("Agente 2003", "34911000001")
    ]
    assert complete["Reason"] == "caller"


async def test_hold_by_redirect_and_resume_by_bridge_as_the_adapter_does(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    customer = await sim.inbound(caller="34600000088", extension="1001", answer_after=0.1, talk=60)
    await client.until(lambda m: m.event == "BridgeEnter" and m["Channel"] == customer.name)
    agent = (
        next(c for c in customer.bridge.members if c is not customer) if customer.bridge else None
    )
    assert agent is not None
    await client.send(
        "Redirect",
        ActionID="h1",
        Channel=customer.name,
        Context="centralita-hold",
        Exten="s",
        Priority="1",
        ExtraChannel=agent.name,
        ExtraContext="centralita-wait",
        ExtraExten="s",
        ExtraPriority="1",
    )
    held = await client.until(lambda m: m.event == "MusicOnHoldStart")
    assert (held["Channel"], held["Class"]) == (customer.name, "default")
    assert customer.bridge is None and agent.bridge is None and not agent.gone
    resumed = await client.send(
        "Bridge", ActionID="r1", Channel1=agent.name, Channel2=customer.name, Tone="no"
    )
    assert resumed.get("Message") == "Channels have been bridged"
    stop = await client.until(lambda m: m.event == "MusicOnHoldStop")
    entered = [m["Channel"] for m in _events(client, "BridgeEnter")[-2:]]
    assert stop["Channel"] == customer.name and entered == [agent.name, customer.name]
    await client.send("Hangup", ActionID="x1", Channel=customer.name)
    await client.until(lambda m: m.event == "Hangup" and m["Channel"] == agent.name)
    assert len(_events(client, "MusicOnHoldStop")) == 1


async def test_sip_dial_strings_map_to_agent_phones_and_pstn_customers(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.login()
    sim.set_customer_behaviour("34917000009", "busy")
    for n, channel in enumerate(("PJSIP/1001", "PJSIP/34917000009@trunk"), 1):
        await client.send(
            "Originate",
            ActionID=f"o{n}",
            Channel=channel,
            Context="caller-script",
            Exten="talk",
            Priority="1",
            CallerID="<34900000000>",
            Async="true",
        )
    await client.until(lambda _: len(_events(client, "OriginateResponse")) == 2)
    results = {
        m.action_id: (m["Reason"], m["Channel"]) for m in _events(client, "OriginateResponse")
    }
    assert results["o2"] == ("5", "PJSIP/34917000009@trunk")
    assert results["o1"][0] == "4" and results["o1"][1].startswith("Local/1001@agent-answer-")
