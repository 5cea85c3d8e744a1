"""The caller card is the same whichever read path the reader takes (T4).

On SQLite the reader reads in the loop's thread, on PostgreSQL in one
statement; both must give, field for field, what the plain ORM session gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from crm_core import callers, contacts, notes
from crm_core.callers import CardReader
from crm_core.calllog import CallLog
from crm_core.db import Database
from crm_core.phones import PhoneDirectory
from kernel.bus import InProcessBus
from kernel.events import (
    CallEnded,
    CallInfo,
    CallRinging,
    CallState,
    Direction,
    Disposition,
)
from tests.crm_core.team import ADMIN, ANA, BEN, team_database

REGION = "ES"
T0 = 1_780_000_000.0


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with team_database(database_url) as database:
        yield database


async def _log_calls(db: Database, caller: str, count: int, prefix: str) -> None:
    """`count` missed inbound calls from `caller`, a minute apart (the unknown become leads)."""
    log = CallLog(db, region=REGION, create_leads=[Direction.INBOUND])
    bus = InProcessBus()
    log.subscribe(bus)
    for n in range(count):
        ringing = CallInfo(f"{prefix}{n}", Direction.INBOUND, caller, "+34910000000",
                           CallState.RINGING, started_at=T0 + 60 * n, ringing=("1002",))
        ended = replace(ringing, state=CallState.ENDED, ended_at=T0 + 60 * n + 20,
                        disposition=Disposition.MISSED, ringing=())
        await bus.publish(CallRinging(call=ringing, at=T0 + 60 * n))
        await bus.publish(CallEnded(call=ended, at=T0 + 60 * n + 20))
    await asyncio.wait_for(bus.drain(), 10)
    await bus.close()


async def test_every_read_path_gives_the_session_s_card(db: Database) -> None:
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
