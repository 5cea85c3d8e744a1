"""AMI sessions: login, responses, lists over live state, several clients, drops."""

from __future__ import annotations

import hashlib

from panoramisk import Manager

from pbx_bridge.simulator import Simulator
from tests.pbx_bridge.simulator.client import Client


async def test_wrong_secret_gets_the_traces_error_and_nothing_else(sim: Simulator) -> None:
    client = await Client.connect(sim)
    reply = await client.send("Login", ActionID="l1", Username="centralita", Secret="nope")
    assert client.parser.greeting == "Asterisk Call Manager/11.0.0"
    assert reply.headers == [
        ("Response", "Error"),
        ("ActionID", "l1"),
        ("Message", "Authentication failed"),
    ]
    ping = await client.send("Ping", ActionID="p1")
    assert ping.headers == [
        ("Response", "Error"),
        ("ActionID", "p1"),
        ("Message", "Permission denied"),
    ]


async def test_login_ping_unknown_and_logoff(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.send("Login", ActionID="l1", Username="centralita", Secret="not-a-secret")
    booted = await client.until(lambda m: m.event == "SuccessfulAuth")
    assert [m.event or m.response for m in client.messages] == [
        "Success",
        "FullyBooted",
        "SuccessfulAuth",
    ]
    assert booted.get("AccountID") == "centralita"
    ping = await client.send("Ping", ActionID="p1")
    assert [k for k, _ in ping.headers] == ["Response", "ActionID", "Ping", "Timestamp"]
    bad = await client.send("FooBarUnknown", ActionID="u1")
    assert bad.get("Message").startswith("Invalid/unknown command: FooBarUnknown.")
    await client.until(lambda m: m.event == "RequestBadFormat")
    bye = await client.send("Logoff", ActionID="o1")
    assert (bye.response, bye.get("Message")) == ("Goodbye", "Thanks for all the fish.")


async def test_lists_reflect_live_channels_and_bridges(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.send("Login", ActionID="l1", Username="centralita", Secret="not-a-secret")
    caller = await sim.inbound(caller="34911111111", extension="1001", answer_after=0.5, talk=600)
    await client.until(lambda m: m.event == "BridgeEnter" and m["Channel"] == caller.name)
    start = await client.send("CoreShowChannels", ActionID="c1")
    assert start.get("EventList") == "start"
    done = await client.until(lambda m: m.event == "CoreShowChannelsComplete")
    items = [m for m in client.messages if m.event == "CoreShowChannel"]
    assert sorted(m["Channel"] for m in items) == sorted(c.name for c in sim.live_channels())
    assert (done.action_id, done["EventList"], done["ListItems"]) == ("c1", "Complete", "4")
    await client.send("BridgeList", ActionID="b1")
    bridges = await client.until(lambda m: m.event == "BridgeListComplete")
    item = next(m for m in client.messages if m.event == "BridgeListItem")
    assert (bridges["ListItems"], item["BridgeNumChannels"], item.action_id) == ("1", "2", "b1")


async def test_a_dropped_client_does_not_stop_the_call(sim: Simulator) -> None:
    first = await Client.connect(sim)
    await first.send("Login", ActionID="l1", Username="centralita", Secret="not-a-secret")
    second = await Client.connect(sim)
    await second.send("Login", ActionID="l2", Username="centralita", Secret="not-a-secret")
    caller = await sim.inbound(extension="1001", answer_after=0.5, talk=40)
    await first.until(lambda m: m.event == "DialBegin")
    await sim.drop_clients()
    third = await Client.connect(sim)
    await third.send("Login", ActionID="l3", Username="centralita", Secret="not-a-secret")
    assert [session.number for session in sim.sessions] == [3]
    assert caller in sim.live_channels()
    hangup = await third.until(
        lambda m: m.event == "Hangup" and m["Channel"] == caller.name, wait_s=10
    )
    assert hangup["Cause"] == "16"
    assert sim.live_channels() == []


async def test_actions_are_recorded_and_agent_behaviour_applies(sim: Simulator) -> None:
    client = await Client.connect(sim)
    await client.send("Login", ActionID="l1", Username="centralita", Secret="not-a-secret")
    sim.set_agent_behaviour("1001", "busy")
    reply = await client.send(
        "Originate",
        ActionID="o1",
        Channel="Local/1001@from-pstn",
        Context="caller-script",
        Exten="talk",
        Priority="1",
        CallerID="<34900000001>",
        Async="true",
    )
    assert reply.get("Message") == "Originate successfully queued"
    result = await client.until(lambda m: m.event == "OriginateResponse")
    assert (result["Response"], result["Reason"], result["Uniqueid"]) == (
        "Failure",
        "5",
        "<unknown>",
    )
    assert [(m.get("Action"), m.get("Channel")) for m in sim.actions] == [
        ("Login", ""),
        ("Originate", "Local/1001@from-pstn"),
    ]


async def test_panoramisk_understands_the_simulator(sim: Simulator) -> None:
    manager = Manager(
        host=sim.host, port=sim.port, username="centralita", secret="not-a-secret", ping_delay=0
    )
    events: list[str] = []
    manager.register_event("*", lambda _, message: events.append(message.event))
    await manager.connect()
    try:
        pong = await manager.send_action({"Action": "Ping"})
        assert pong.ping == "Pong"
        await sim.inbound(extension="1001", answer_after=0.1, talk=0.2)
        channels = await manager.send_action({"Action": "CoreShowChannels"})
        assert channels[-1].event == "CoreShowChannelsComplete"
        assert "Newchannel" in events
    finally:
        manager.close()


async def test_load_generator_starts_calls_at_the_rate(sim: Simulator) -> None:
    counts = await sim.run_load(calls_per_second=50, duration_s=0.4, mix={"answered": 1.0})
    assert counts == {"answered": 20}
    assert len({c.linkedid for c in sim.live_channels()}) >= 1


async def test_md5_challenge_login_and_logoff_before_login(sim: Simulator) -> None:
    client = await Client.connect(sim)
    challenge = await client.send("Challenge", ActionID="c1", AuthType="MD5")
    key = hashlib.md5((challenge["Challenge"] + "not-a-secret").encode()).hexdigest()
    wrong = await client.send(
        "Login", ActionID="l0", AuthType="MD5", Username="centralita", Key="0" * 32
    )
    assert wrong.get("Message") == "Authentication failed"
    reply = await client.send(
        "Login", ActionID="l1", AuthType="MD5", Username="centralita", Key=key
    )
    assert reply.get("Message") == "Authentication accepted"
    other = await Client.connect(sim)
    bye = await other.send("Logoff", ActionID="o1")
    assert (bye.response, bye.get("Message")) == ("Goodbye", "Thanks for all the fish.")
