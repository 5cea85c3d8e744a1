"""The screen-pop listener over a real bus and database (T4, T5, C2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from crm_core import contacts
from crm_core.callers import CardReader
from crm_core.db import Database
from crm_core.leads import list_leads
from crm_core.models import User
from crm_core.phones import PhoneDirectory
from crm_core.screenpop import ScreenPopper
from crm_core.team import Team
from kernel.bus import InProcessBus
from kernel.events import CallEnded, CallInfo, CallRinging, CallState, Direction, Event, ScreenPop

REGION = "ES"


@dataclass(frozen=True)
class Someone:
    user_id: int
    role: str


ANA, BEN = Someone(2, "agent"), Someone(3, "agent")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.transaction() as session:
        for who, ext in ((ANA, "1001"), (BEN, "1002")):
            session.add(User(id=who.user_id, username=f"u{ext}", role=who.role, extension=ext,
                             password_hash="x", working_hours={}))
    yield database
    await database.close()


async def pops_for(db: Database, *events: Event) -> list[ScreenPop]:
    bus = InProcessBus()
    reader = CardReader(db, PhoneDirectory(db))  # local on SQLite, one statement on PostgreSQL
    popper = ScreenPopper(db, bus, region=REGION, leads_for=frozenset({Direction.INBOUND}),
                          metrics=CollectorRegistry(), reader=reader, team=Team(db, bus))
    popper.subscribe(bus)
    seen: list[ScreenPop] = []

    async def collect(event: Event) -> None:
        assert isinstance(event, ScreenPop)
        seen.append(event)

    bus.subscribe("test", collect, ["screen_pop"])
    for event in events:
        await bus.publish(event)
        await bus.drain()
        await popper.idle()
    await bus.drain()
    await bus.close()
    reader.close()
    return seen


def ringing(caller: str, *agents: str, call_id: str = "1795546590.0") -> CallRinging:
    return CallRinging(call=CallInfo(call_id, Direction.INBOUND, caller, "912000001",
                                     CallState.RINGING, ringing=agents))


async def test_known_caller_pops_the_contact_for_each_rung_agent_once(db: Database) -> None:
    made = await contacts.create_contact(
        db, ANA, {"first_name": "Lucía", "last_name": "Martín", "company_name": "Acme",
                  "phones": [{"number": "912 34 56 78", "kind": "work"}], "tags": ["vip"],
                  "visibility": "read"}, region=REGION)
    first, both = ringing("34912345678", "1001"), ringing("34912345678", "1001", "1002")
    pops = await pops_for(db, first, both)
    assert [(p.agents, p.card["kind"], p.card["id"], p.card["name"]) for p in pops] == [
        (("1001",), "contact", made["id"], "Lucía Martín"),
        (("1002",), "contact", made["id"], "Lucía Martín"),
    ]
    card = pops[0].card
    assert card["company"] == "Acme" and card["tags"] == ["vip"]
    assert card["profile"] == f"/contacts/{made['id']}"
    assert card["call"] == {"call_id": "1795546590.0", "direction": "in", "caller": "34912345678",
                            "callee": "912000001", "queue": None}


async def test_a_private_contact_never_pops_on_a_colleagues_screen(db: Database) -> None:
    await contacts.create_contact(
        db, ANA, {"first_name": "Secreto", "phones": [{"number": "+34600111222"}],
                  "visibility": "private"}, region=REGION)
    pops = await pops_for(db, ringing("600111222", "1001", "1002"))
    by_agent = {p.agents[0]: p.card for p in pops}
    assert by_agent["1001"]["name"] == "Secreto"
    assert by_agent["1002"]["kind"] == "unknown"
    assert "Secreto" not in str(by_agent["1002"])


async def test_an_unknown_number_becomes_one_lead_shown_in_the_pop(db: Database) -> None:
    pops = await pops_for(
        db,
        ringing("+34 699 000 111", "1001", call_id="a"),
        ringing("+34 699 000 111", "1002", call_id="b"),
    )
    assert [p.card["kind"] for p in pops] == ["lead", "lead"]
    assert pops[0].card["id"] == pops[1].card["id"]
    assert pops[0].card["number"] == "+34699000111"
    page = await list_leads(db, ANA, status="unhandled")
    assert [item["id"] for item in page["items"]] == [pops[0].card["id"]]


async def test_a_call_rung_again_after_it_ended_pops_again(db: Database) -> None:
    info = ringing("+34 699 000 111", "1001").call
    pops = await pops_for(db, CallRinging(call=info), CallEnded(call=info), CallRinging(call=info))
    assert len(pops) == 2
