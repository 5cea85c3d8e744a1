"""The call log from bus events: idempotent, never backwards; who sees which call; timelines."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_core import callers, calllog, contacts, leads, notes, timeline
from crm_core.access import encode_cursor
from crm_core.callers import CardReader
from crm_core.calllog import CallLog
from crm_core.db import Database
from crm_core.models import Call, Lead
from crm_core.phones import PhoneDirectory
from kernel.bus import InProcessBus
from kernel.errors import NotFound, ValidationFailed
from kernel.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallInfo,
    CallRinging,
    CallState,
    CallTransferred,
    Direction,
    Disposition,
    RecordingReady,
)
from tests.crm_core.team import ADMIN, ANA, BEN, SUE, Someone, team_database

REGION = "ES"
T0 = 1_780_000_000.0


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with team_database(database_url) as database:
        yield database


def _inbound(call_id: str = "1780000000.1", caller: str = "612345678") -> list[CallEvent]:
    """ringing -> answered by ANA (ext 1002) -> ended after 42 s, as an adapter publishes it."""
    ringing = CallInfo(call_id=call_id, direction=Direction.INBOUND, caller=caller,
                       callee="+34910000000", state=CallState.RINGING, started_at=T0,
                       ringing=("1002", "1003"), queue="sales")
    up = replace(ringing, state=CallState.UP, agent="1002", answered_at=T0 + 5, ringing=())
    ended = replace(up, state=CallState.ENDED, ended_at=T0 + 47,
                    disposition=Disposition.ANSWERED)
    return [CallRinging(call=ringing, at=T0), CallAnswered(call=up, at=T0 + 5),
            CallEnded(call=ended, at=T0 + 47)]


async def _rows(db: Database) -> list[dict[str, Any]]:
    async with db.session() as session:
        return [calllog.call_json(c) for c in await session.scalars(select(Call))]


async def _replay(db: Database, log: CallLog, events: list[CallEvent]) -> None:
    bus = InProcessBus()
    log.subscribe(bus)
    for ev in events:
        await bus.publish(ev)
    await asyncio.wait_for(bus.drain(), 10)
    await bus.close()


ENDED_ROW = {
    "id": "1780000000.1", "direction": "in", "caller": "612345678", "callee": "+34910000000",
    "agent": "1002", "agent_user_id": ANA.user_id, "status": "ended", "disposition": "answered",
    "started_at": "2026-05-28T20:26:40+00:00", "answered_at": "2026-05-28T20:26:45+00:00",
    "ended_at": "2026-05-28T20:27:27+00:00", "duration_s": 42.0, "recording_url": None,
    "transcript_status": None, "contact_id": None, "lead_id": None, "queue": "sales",
    "pbx": "asterisk",
}


async def test_a_call_is_written_once_whatever_the_order_or_repetition(db: Database) -> None:
    ringing, answered, ended = _inbound()
    log = CallLog(db, region=REGION)
    await _replay(db, log, [ringing, answered, ringing, ended, answered, ended, ringing])
    assert await _rows(db) == [ENDED_ROW]
    await _replay(db, log, [ended, answered, ringing])  # a replay after a reconnect
    assert await _rows(db) == [ENDED_ROW]


async def test_an_end_seen_first_is_not_reopened_by_late_events(db: Database) -> None:
    ringing, answered, ended = _inbound()
    await _replay(db, CallLog(db, region=REGION), [ended, ringing, answered])
    assert await _rows(db) == [ENDED_ROW]


async def test_concurrent_writers_of_one_call_make_one_row(db: Database) -> None:
    log = CallLog(db, region=REGION)
    await asyncio.gather(*[log.on_call_event(ev) for ev in _inbound() * 3])
    assert await _rows(db) == [ENDED_ROW]


async def test_the_outside_number_links_the_contact_and_the_recording_lands(
    db: Database
) -> None:
    client = await contacts.create_contact(db, ANA, {"first_name": "Eva",
                                                     "phones": ["+34612345678"]}, region=REGION)
    events = _inbound()
    recording = RecordingReady(call=events[-1].call, path="/rec/1780000000.1.wav", at=T0 + 50)
    await _replay(db, CallLog(db, region=REGION), [*events, recording])
    assert await _rows(db) == [{**ENDED_ROW, "contact_id": client["id"],
                                "recording_url": "/rec/1780000000.1.wav"}]


async def test_unknown_callers_become_leads_when_configured(db: Database) -> None:
    log = CallLog(db, region=REGION, create_leads=[Direction.INBOUND])
    await _replay(db, log, _inbound() + _inbound("1780000000.9"))
    async with db.session() as session:
        lead = (await session.scalars(select(Lead))).one()
        assert await session.scalar(select(func.count()).select_from(Call)) == 2
    assert (lead.source, lead.source_tags) == ("call", {"dialled": "+34910000000",
                                                        "direction": "in"})
    assert [row["lead_id"] for row in await _rows(db)] == [lead.id, lead.id]


async def _three_calls(db: Database) -> dict[str, int]:
    """A private client of BEN's called; ANA answered one; an unknown caller nobody took."""
    secret = await contacts.create_contact(db, BEN, {"first_name": "S",
                                                     "phones": ["+34611111111"]}, region=REGION)
    log = CallLog(db, region=REGION)
    first = _inbound("c1", "611111111")
    second = [replace(ev, call=replace(ev.call, agent="1003" if ev.call.agent else None))
              for ev in _inbound("c2", "611111111")]
    third = [replace(ev, call=replace(ev.call, started_at=T0 + 100, agent=None,
                                      disposition=Disposition.MISSED))
             for ev in _inbound("c3", "699999999")]
    await _replay(db, log, first + second + [third[0], third[2]])
    return {"secret": secret["id"]}


async def test_agents_see_their_calls_and_their_contacts_calls_only(db: Database) -> None:
    await _three_calls(db)

    async def seen(who: Someone, **filters: Any) -> list[str]:
        page = await calllog.list_calls(db, who, region=REGION, **filters)
        return [c["id"] for c in page["items"]]

    assert await seen(ANA) == ["c1"]  # handled it, may not see BEN's private client
    assert await seen(BEN) == ["c2", "c1"]
    assert await seen(SUE) == await seen(ADMIN) == ["c3", "c2", "c1"]
    assert await seen(ADMIN, status="missed") == ["c3"]
    assert await seen(ADMIN, agent="1003") == ["c2"]
    assert await seen(ADMIN, q="0034 611 111 111") == ["c2", "c1"]
    assert await seen(ADMIN, q="69999") == ["c3"]  # part of a number: as dialled
    assert await seen(ADMIN, q="10000000") == ["c3", "c2", "c1"]
    assert await seen(ADMIN, q="%") == []
    assert await seen(ADMIN, since="2026-05-28T20:28:00+00:00") == ["c3"]
    assert await seen(ADMIN, direction="out") == []
    first = await calllog.list_calls(db, ADMIN, region=REGION, limit=2)
    rest = await calllog.list_calls(db, ADMIN, region=REGION, limit=2, cursor=first["next"])
    assert [c["id"] for c in first["items"] + rest["items"]] == ["c3", "c2", "c1"]
    assert rest["next"] is None
    with pytest.raises(ValidationFailed):
        await calllog.list_calls(db, ADMIN, region=REGION, status="exploded")
    for foreign in (encode_cursor([3]), encode_cursor(["yesterday", 3])):
        with pytest.raises(ValidationFailed) as caught:
            await calllog.list_calls(db, ADMIN, region=REGION, cursor=foreign)
        assert caught.value.field == "cursor"
    with pytest.raises(NotFound):
        await calllog.get_call(db, ANA, "c2")


async def test_timeline_and_screen_pop_card_of_a_contact(db: Database) -> None:
    ids = await _three_calls(db)
    note = await notes.add_note(db, BEN, "wants a quote", call_id="c2")
    later = await notes.add_note(db, BEN, "sent it", contact_id=ids["secret"])
    line = await timeline.timeline(db, BEN, contact_id=ids["secret"])
    assert [(i["type"], (i.get("call") or i.get("note") or {}).get("id")) for i in
            line["items"]] == [("note", later["id"]), ("note", note["id"]),
                               ("call", "c2"), ("call", "c1")]
    assert line["items"][1]["note"]["call_id"] == "c2"
    card = await callers.identify(db, "611 11 11 11", REGION, BEN)
    assert card is not None
    assert {k: v for k, v in card.items() if k not in ("calls", "notes", "record")} == {
        "kind": "contact", "id": ids["secret"], "name": "S", "company": "", "tags": [],
        "profile": f"/contacts/{ids['secret']}", "number": "+34611111111", "deals": []}
    assert [c["id"] for c in card["calls"]] == ["c2", "c1"]
    assert [n["text"] for n in card["notes"]] == ["sent it", "wants a quote"]
    assert await callers.identify(db, "611 11 11 11", REGION, ANA) is None  # private
    assert await callers.identify(db, "1001", REGION) is None
    with pytest.raises(NotFound):
        await notes.add_note(db, ANA, "peek", contact_id=ids["secret"])


async def test_a_lead_timeline_follows_it_into_the_contact(db: Database) -> None:
    log = CallLog(db, region=REGION, create_leads=[Direction.INBOUND])
    await _replay(db, log, _inbound("c9", "699 00 00 01"))
    card = await callers.identify(db, "+34699000001", REGION, ANA)
    assert card is not None and (card["kind"], card["tags"]) == ("lead", ["call"])
    await leads.claim_lead(db, ANA, card["id"])
    await notes.add_note(db, ANA, "called back", lead_id=card["id"])
    converted = await leads.convert_lead(db, ANA, card["id"])
    assert (converted["contact"]["kind"], converted["contact"]["name"]) == ("person",
                                                                            "+34699000001")
    line = await timeline.timeline(db, ANA, contact_id=converted["contact"]["id"])
    kinds = [(i["type"], i.get("event")) for i in line["items"]]
    assert kinds == [("lead", "converted"), ("note", None), ("lead", "claimed"),
                     ("lead", "created"), ("call", None)]
    assert (await calllog.get_call(db, ANA, "c9"))["contact_id"] == converted["contact"]["id"]


async def test_every_order_of_the_three_events_ends_in_the_same_row(db: Database) -> None:
    log = CallLog(db, region=REGION)
    orders = list(itertools.permutations(range(3)))
    for n, order in enumerate(orders):
        events = _inbound(f"perm{n}")
        for index in order:
            await log.on_call_event(events[index])
    rows = sorted(await _rows(db), key=lambda row: str(row["id"]))
    assert rows == [{**ENDED_ROW, "id": f"perm{n}"} for n in range(len(orders))]


async def test_the_speech_pool_marks_the_transcript_status(db: Database) -> None:
    await _replay(db, CallLog(db, region=REGION), _inbound())
    assert await calllog.mark_transcript(db, "1780000000.1", "queued") is True
    assert await calllog.mark_transcript(db, "1780000000.1", "done") is True
    assert await calllog.mark_transcript(db, "no-such-call", "done") is False
    with pytest.raises(ValidationFailed):
        await calllog.mark_transcript(db, "1780000000.1", "lost")
    assert await _rows(db) == [{**ENDED_ROW, "transcript_status": "done"}]


async def test_a_transfer_hands_the_call_to_the_new_agents_user(db: Database) -> None:
    ringing, answered, ended = _inbound()
    moved = replace(answered.call, agent="1003")
    events = [ringing, answered, CallTransferred(call=moved, mode="blind", target="1003",
                                                 at=T0 + 20),
              CallEnded(call=replace(ended.call, agent="1003"), at=T0 + 47)]
    await _replay(db, CallLog(db, region=REGION), events)
    assert await _rows(db) == [{**ENDED_ROW, "agent": "1003", "agent_user_id": BEN.user_id}]


async def test_notes_name_one_visible_target_and_keep_their_order(db: Database) -> None:
    await _replay(db, CallLog(db, region=REGION), _inbound("n1"))
    with pytest.raises(ValidationFailed) as caught:
        await notes.add_note(db, ANA, "two places", contact_id=1, call_id="n1")
    assert caught.value.field == "target"
    with pytest.raises(ValidationFailed) as caught:
        await notes.add_note(db, ANA, "   ", call_id="n1")
    assert caught.value.field == "text"
    with pytest.raises(NotFound):
        await notes.add_note(db, ANA, "x", lead_id=404)
    first = await notes.add_note(db, ANA, " asked for Ana ", call_id="n1")
    second = await notes.add_note(db, ANA, "call back Monday", call_id="n1")
    assert first == {"id": first["id"], "contact_id": None, "lead_id": None, "call_id": "n1",
                     "author_id": ANA.user_id, "text": "asked for Ana",
                     "created_at": first["created_at"]}
    assert [n["id"] for n in await notes.call_notes(db, ANA, "n1")] == [first["id"],
                                                                         second["id"]]
    with pytest.raises(NotFound):  # BEN neither handled it nor knows the caller
        await notes.call_notes(db, BEN, "n1")


async def test_timeline_pages_cover_it_once_in_order(db: Database) -> None:
    ids = await _three_calls(db)
    for n in range(3):
        await notes.add_note(db, BEN, f"note {n}", contact_id=ids["secret"])
    await notes.add_note(db, BEN, "on the call", call_id="c1")
    whole = await timeline.timeline(db, BEN, contact_id=ids["secret"])
    assert (len(whole["items"]), whole["next"]) == (6, None)
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await timeline.timeline(db, BEN, contact_id=ids["secret"], limit=4,
                                       cursor=cursor)
        paged += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    assert paged == whole["items"]
    with pytest.raises(ValidationFailed) as caught:
        await timeline.timeline(db, BEN, contact_id=ids["secret"], cursor=encode_cursor([1]))
    assert caught.value.field == "cursor"


async def _log_calls(db: Database, caller: str, count: int, prefix: str) -> None:
    """`count` missed inbound calls from `caller`, a minute apart (the unknown become leads)."""
    events: list[CallEvent] = []
    for n in range(count):
        ringing = CallInfo(f"{prefix}{n}", Direction.INBOUND, caller, "+34910000000",
                           CallState.RINGING, started_at=T0 + 60 * n, ringing=("1002",))
        ended = replace(ringing, state=CallState.ENDED, ended_at=T0 + 60 * n + 20,
                        disposition=Disposition.MISSED, ringing=())
        events += [CallRinging(call=ringing, at=T0 + 60 * n),
                   CallEnded(call=ended, at=T0 + 60 * n + 20)]
    await _replay(db, CallLog(db, region=REGION, create_leads=[Direction.INBOUND]), events)


async def test_every_read_path_gives_the_session_s_card(db: Database) -> None:
    """The reader's fast paths (SQLite in the loop's thread, PostgreSQL in one statement)
    give, field for field, what the plain ORM session gives."""
    client = await contacts.create_contact(db, ANA, {
        "first_name": "Marta", "last_name": "Ruiz", "company_name": "Ruiz SL",
        "tags": ["vip", "beta"], "phones": ["+34611000001"], "visibility": "read",
    }, region=REGION)
    await contacts.create_contact(db, BEN, {"first_name": "S", "phones": ["611000002"],
                                            "visibility": "private"}, region=REGION)
    await _log_calls(db, "611000001", 7, "m")
    await _log_calls(db, "699000003", 2, "u")  # unknown: becomes a lead with two calls
    for n, text in enumerate(("first", "second", "third", "fourth")):
        await notes.add_note(db, ANA, text, contact_id=client["id"])
        if n == 1:
            await notes.add_note(db, ANA, "on the call", call_id="m6")
    lead = await callers.identify(db, "699000003", REGION, ANA)
    assert lead is not None
    await notes.add_note(db, ANA, "asked for a callback", lead_id=lead["id"])

    reader = CardReader(db, PhoneDirectory(db))
    try:
        for number in ("611000001", "611000002", "699000003", "699999999", "1002"):
            for viewer in (ADMIN, ANA, BEN):
                plain = await callers.identify(db, number, REGION, viewer)
                fast = await callers.identify(db, number, REGION, viewer, reader)
                assert fast == plain, (number, viewer)
    finally:
        reader.close()

    card = await callers.identify(db, "611000001", REGION, BEN, CardReader(db))
    assert card is not None
    assert (card["name"], card["company"], card["tags"]) == ("Marta Ruiz", "Ruiz SL",
                                                             ["beta", "vip"])
    assert [c["id"] for c in card["calls"]] == ["m6", "m5", "m4", "m3", "m2"]
    assert card["calls"][0]["started_at"] == "2026-05-28T20:32:40+00:00"
    assert [(n["text"], n["call_id"]) for n in card["notes"]] == [
        ("fourth", None), ("third", None), ("on the call", "m6")]
    assert await callers.identify(db, "611000002", REGION, ANA, CardReader(db)) is None
    assert (await callers.identify(db, "611000002", REGION, ADMIN, CardReader(db)) or {})[
        "name"] == "S"
    lead_card = await callers.identify(db, "+34699000003", REGION, BEN, CardReader(db))
    assert lead_card is not None
    assert (lead_card["kind"], [c["id"] for c in lead_card["calls"]]) == ("lead", ["u1", "u0"])
    assert [n["text"] for n in lead_card["notes"]] == ["asked for a callback"]
