"""The AMI link against a real TCP peer replaying recorded Asterisk answers."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from kernel.errors import AMIActionFailed, AMIActionTimeout, AMILinkLost, PBXUnavailable
from pbx_bridge.asterisk.link import AMILink, backoff_delay
from tests.pbx_bridge.asterisk.replay_server import (
    Behaviour,
    Recorder,
    ReplayServer,
    load_script,
)

SECRET = "not-a-secret"


@asynccontextmanager
async def linked(
    script: str,
    behaviours: list[Behaviour] | None,
    recorder: Recorder,
    **options: Any,
) -> AsyncIterator[tuple[ReplayServer, AMILink]]:
    """A replay server for `script` and a started link to it."""
    options.setdefault("backoff_initial", 0.01)
    options.setdefault("backoff_max", 0.05)
    async with ReplayServer([load_script(script)], behaviours) as server:
        link = AMILink(
            "127.0.0.1",
            server.port,
            "centralita",
            options.pop("secret", SECRET),
            on_message=recorder.on_message,
            on_state=recorder.on_state,
            rng=random.Random(7),
            **options,
        )
        await link.start()
        try:
            yield server, link
        finally:
            await link.close()


async def test_actions_answers_lists_and_errors_over_a_recorded_session() -> None:
    recorder = Recorder()
    async with linked("actions_misc", None, recorder) as (server, link):
        assert await link.wait_online(5)
        assert link.greeting == "Asterisk Call Manager/11.0.0"
        pong = await link.send_action("Ping")
        assert (pong.response, pong["Ping"]) == ("Success", "Pong")
        with pytest.raises(AMIActionFailed) as failed:
            await link.send_action("FooBarUnknown")
        assert "Invalid/unknown command: FooBarUnknown" in failed.value.message
        version = await link.send_action("Command", {"Command": "core show version"})
        assert version.getall("Output") == [
            "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on "
            "2026-11-24 18:49:06 UTC"
        ]
        channels = await link.send_action("Command", {"Command": "core show channels"})
        assert channels.getall("Output")[1:] == [
            "0 active channels", "0 active calls", "113 calls processed",
        ]
        hints = await link.send_list_action("ExtensionStateList")
        assert [(m.event, m["Exten"], m["Hint"]) for m in hints] == [
            ("ExtensionStatus", "1001", "Local/1001@agent-answer"),
            ("ExtensionStatus", "1002", "Local/1002@agent-answer"),
        ]
        devices = await link.send_list_action("DeviceStateList")
        assert devices and {m.event for m in devices} == {"DeviceStateChange"}
        assert (await link.send_action("CoreSettings"))["AsteriskVersion"] == "22.10.1"
        assert (await link.send_action("CoreStatus")).response == "Success"
        summary = await link.send_list_action("QueueSummary", {"Queue": "ventas"})
        assert [(m.event, m["Queue"], m["LoggedIn"]) for m in summary] == [
            ("QueueSummary", "ventas", "2"),
        ]
        assert (await link.send_action("Events", {"EventMask": "on"}))["Events"] == "On"
    login = server.connections[0].received[0]
    assert login.headers == [
        ("Action", "Login"), ("ActionID", login.action_id), ("Username", "centralita"),
        ("Secret", SECRET), ("Events", "on"),
    ]
    assert server.actions(0) == [s.action["Action"] for s in load_script("actions_misc").steps]
    # Only what no action consumed reaches on_message: list items never do.
    assert [m.event for m in recorder.messages] == [
        "FullyBooted", "SuccessfulAuth", "RequestBadFormat",
    ]
    assert recorder.states == [(True, "logged in"), (False, "link closed")]
    ids = [m.action_id for m in server.connections[0].received]
    assert len(set(ids)) == len(ids) and all(i.startswith("centralita-") for i in ids)


async def test_refused_login_is_logged_without_the_secret_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    caplog.set_level(logging.DEBUG, logger="centralita.ami")
    bad = {"secret": "wrong-secret"}
    async with linked("actions_misc_badlogin", None, recorder, **bad) as (server, link):
        await server.wait_for(lambda: len(server.connections) >= 3)
        assert not link.online
        with pytest.raises(PBXUnavailable):
            await link.send_action("Ping")
    assert recorder.states[:2] == [
        (False, "login refused: Authentication failed"),
        (False, "login refused: Authentication failed"),
    ]
    assert "AMI login refused for user centralita: Authentication failed" in caplog.messages
    assert not any("wrong-secret" in r.getMessage() for r in caplog.records)
    assert all(server.actions(i)[:1] == ["Login"] for i in range(3))


async def test_originate_outcomes_reach_on_message_and_a_sync_failure_raises() -> None:
    recorder = Recorder()
    async with linked("originate_failed", None, recorder) as (_server, link):
        assert await link.wait_online(5)
        ids = []
        for dial in ("Local/999@pstn-out", "Local/998@pstn-out",
                     "Local/555@no-such-context", "Local/1001@agent-noanswer"):
            queued = await link.send_action(
                "Originate",
                {"Channel": dial, "Application": "Wait", "Data": "5", "Async": "true"},
            )
            assert queued["Message"] == "Originate successfully queued"
            ids.append(queued.action_id)
        with pytest.raises(AMIActionFailed) as failed:
            await link.send_action("Originate", {"Channel": "Local/999@pstn-out"})
        assert failed.value.details == {"reason": "Originate failed"}
        await recorder.wait_for(lambda: len(recorder.events("OriginateResponse")) == 4)
    outcomes = [(m.action_id, m["Response"], m["Reason"], m["Channel"])
                for m in recorder.events("OriginateResponse")]
    assert outcomes == [
        (ids[0], "Failure", "8", "Local/999@pstn-out"),
        (ids[1], "Failure", "5", "Local/998@pstn-out"),
        (ids[2], "Failure", "0", "Local/555@no-such-context"),
        (ids[3], "Failure", "3", "Local/1001@agent-noanswer"),
    ]


async def test_unanswered_action_times_out_and_the_link_stays_up() -> None:
    recorder = Recorder()
    behaviour = Behaviour(silent=frozenset({"Hangup"}))
    async with linked("hangup_action", [behaviour], recorder) as (_server, link):
        assert await link.wait_online(5)
        with pytest.raises(AMIActionTimeout) as timed_out:
            await link.send_action("Hangup", {"Channel": "Local/1"}, timeout=0.2)
        assert timed_out.value.message == "Asterisk did not answer Hangup within 0.2 s"
        assert link.online and link._pending == {}


async def test_close_logs_off_and_fails_what_still_waits() -> None:
    recorder = Recorder()
    behaviour = Behaviour(silent=frozenset({"Hangup"}), generic=frozenset({"Logoff"}))
    async with linked("hangup_action", [behaviour], recorder) as (server, link):
        assert await link.wait_online(5)
        waiting = asyncio.create_task(link.send_action("Hangup", {"Channel": "PJSIP/1-1"}))
        await server.wait_for(lambda: server.actions(0)[-1:] == ["Hangup"])
        await link.close()
        with pytest.raises(AMILinkLost):
            await waiting
        assert not link.online
    assert server.actions(0) == ["Login", "Hangup", "Logoff"]


async def test_link_loss_fails_the_waiting_action_and_never_resends_it() -> None:
    recorder = Recorder()
    behaviours = [Behaviour(drop_on=frozenset({"Hangup"})), Behaviour()]
    async with linked("hangup_action", behaviours, recorder) as (server, link):
        assert await link.wait_online(5)
        with pytest.raises(AMILinkLost) as lost:
            await link.send_action("Hangup", {"Channel": "Local/1001@agent-answer-1;1"})
        assert "it was not re-sent" in lost.value.message
        await recorder.wait_for(lambda: len(recorder.states) >= 3)
        assert await link.wait_online(5)
        await link.send_action("Ping")  # TCP keeps order: a re-sent Hangup comes first
        assert server.actions(1) == ["Login", "Ping"]
    assert recorder.states == [
        (True, "logged in"), (False, "link lost"), (True, "logged in"), (False, "link closed"),
    ]
    assert link.connects == 2


async def test_unanswered_ping_drops_the_link_and_it_reconnects() -> None:
    recorder = Recorder()
    behaviours = [Behaviour(answer_pings=False), Behaviour()]
    fast = {"ping_interval": 0.05, "ping_timeout": 0.3}
    async with linked("hangup_action", behaviours, recorder, **fast) as (server, link):
        await server.wait_for(lambda: len(server.connections) >= 2)
        await server.wait_for(lambda: server.actions(1).count("Ping") >= 2)
        assert link.online
    assert server.actions(0) == ["Login", "Ping"]
    assert recorder.states[:3] == [(True, "logged in"), (False, "link lost"), (True, "logged in")]


async def test_on_connect_resyncs_with_lists_before_the_link_is_online() -> None:
    recorder = Recorder()
    seen: dict[str, int] = {}

    async def resync(link: AMILink) -> None:
        assert not link.online
        for action in ("CoreShowChannels", "Status", "QueueStatus", "BridgeList"):
            seen[action] = len(await link.send_list_action(action, timeout=2))

    hook = {"on_connect": resync}
    async with linked("reconnect_resync_after", None, recorder, **hook) as (_server, link):
        assert await link.wait_online(5)
    assert seen == {"CoreShowChannels": 12, "Status": 12, "QueueStatus": 5, "BridgeList": 3}
    assert not [m for m in recorder.messages if m.action_id.startswith("centralita-")]


async def test_refused_logins_are_retried_after_growing_jittered_delays() -> None:
    recorder = Recorder()
    backoff = {"backoff_initial": 0.05, "backoff_max": 0.4, "secret": "wrong-secret"}
    async with linked("actions_misc_badlogin", None, recorder, **backoff) as (server, _link):
        await server.wait_for(lambda: len(server.connections) >= 4)
    rng = random.Random(7)  # the link's own generator, same seed
    planned = [backoff_delay(attempt, 0.05, 0.4, rng) for attempt in (1, 2, 3)]
    opened = [c.opened_at for c in server.connections[:4]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(opened)]
    assert all(gap >= delay - 0.005 for gap, delay in zip(gaps, planned, strict=True)), (
        gaps, planned,
    )


async def test_a_list_answered_after_its_timeout_never_reaches_on_message() -> None:
    recorder = Recorder()
    behaviour = Behaviour(late=frozenset({"CoreShowChannels"}))
    async with linked("reconnect_resync_after", [behaviour], recorder) as (_server, link):
        assert await link.wait_online(5)
        with pytest.raises(AMIActionTimeout):
            await link.send_list_action("CoreShowChannels", timeout=0.1)
        statuses = await link.send_list_action("Status")
    assert len(statuses) == 12
    assert not [m for m in recorder.messages if m.action_id.startswith("centralita-")]


async def test_each_good_login_resets_the_backoff() -> None:
    recorder = Recorder()
    behaviours = [Behaviour(close_after_login=True)] * 6 + [Behaviour()]
    backoff = {"backoff_initial": 0.05, "backoff_max": 10.0}
    async with linked("hangup_action", behaviours, recorder, **backoff) as (server, link):
        await recorder.wait_for(lambda: link.connects >= 7 and link.online)
    assert len(server.connections) == 7
    # Same seed as the link: reset delays total 0.10 s; growing ones would be 2.4 s.
    rng = random.Random(7)
    reset = sum(backoff_delay(0, 0.05, 10.0, rng) for _ in range(6))
    elapsed = server.connections[6].opened_at - server.connections[0].opened_at
    assert reset - 0.01 <= elapsed < 1.2, (reset, elapsed)
    assert recorder.states.count((False, "link lost")) == 6


async def test_garbage_is_logged_with_its_place_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    behaviour = Behaviour(prelude=b"no colon here\r\n\r\nEvent: Hello\r\nWho: there\r\n\r\n")
    async with linked("hangup_action", [behaviour], recorder) as (_server, link):
        assert await link.wait_online(5)
        await recorder.wait_for(lambda: bool(recorder.events("Hello")))
        assert link.frame_errors == 1
    assert recorder.events("Hello")[0].headers == [("Event", "Hello"), ("Who", "there")]
    assert any(
        "AMI framing error at byte 30: line is not 'Key: Value'" in m for m in caplog.messages
    )


async def test_sending_while_offline_fails_at_once() -> None:
    link = AMILink("127.0.0.1", 1, "centralita", SECRET, on_message=lambda m, t: None)
    with pytest.raises(PBXUnavailable):
        await link.send_action("Ping")


def test_backoff_has_full_jitter_under_a_doubling_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (60, 30.0)]:
        delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2
