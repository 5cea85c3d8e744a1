"""Leads: the unhandled queue, claiming (once), converting, and unknown callers racing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_core import callers, contacts, leads
from crm_core.db import Database
from crm_core.models import Lead, Phone
from kernel.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kernel.events import Direction
from tests.crm_core.team import ADMIN, ANA, BEN, team_database

REGION = "ES"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with team_database(database_url, ADMIN, ANA, BEN) as database:
        yield database


def _ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["items"]]


async def test_a_web_lead_keeps_its_source_and_utm_tags(db: Database) -> None:
    lead = await leads.create_lead(db, {
        "name": "Pepa Pig", "company": "Granja", "phones": ["612 34 56 78"],
        "emails": ["Pepa@Granja.es"], "source": "web",
        "source_tags": {"utm_source": "google", "utm_campaign": "spring"},
    }, region=REGION)
    assert lead == {
        "id": lead["id"], "name": "Pepa Pig", "company": "Granja", "status": "unhandled",
        "responsible_id": None, "source": "web",
        "source_tags": {"utm_source": "google", "utm_campaign": "spring"},
        "converted_contact_id": None,
        "phones": [{"number": "+34612345678", "kind": "work"}],
        "emails": [{"address": "pepa@granja.es", "kind": "work"}],
        "created_at": lead["created_at"], "handled_at": None, "converted_at": None,
    }
    assert await leads.get_lead(db, lead["id"]) == lead


@pytest.mark.parametrize(("data", "field"), [
    ({}, "name"), ({"name": "x", "source": "fax"}, "source"),
    ({"name": "x", "source_tags": {"n": 1}}, "source_tags"),
    ({"phones": ["0"]}, "phones[0].number"), ({"name": "x", "owner": 1}, "owner"),
])
async def test_bad_leads_are_refused_by_field(
    db: Database, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await leads.create_lead(db, data, region=REGION)
    assert caught.value.field == field


async def test_claiming_moves_a_lead_from_the_queue_to_mine_once(db: Database) -> None:
    first = await leads.create_lead(db, {"name": "One"}, region=REGION)
    second = await leads.create_lead(db, {"name": "Two"}, region=REGION)
    assert _ids(await leads.list_leads(db, BEN, status="unhandled")) == [second["id"],
                                                                         first["id"]]
    claimed = await leads.claim_lead(db, ANA, first["id"])
    assert (claimed["status"], claimed["responsible_id"]) == ("handled", ANA.user_id)
    assert claimed["handled_at"] is not None
    assert _ids(await leads.list_leads(db, BEN, status="unhandled")) == [second["id"]]
    assert _ids(await leads.list_leads(db, ANA, status="mine")) == [first["id"]]
    assert _ids(await leads.list_leads(db, BEN, status="mine")) == []
    with pytest.raises(Conflict) as caught:
        await leads.claim_lead(db, BEN, first["id"])
    assert caught.value.details == {"status": "handled", "responsible_id": ANA.user_id}
    with pytest.raises(NotFound):
        await leads.claim_lead(db, BEN, 999)


async def test_two_agents_claiming_at_once_get_one_winner(db: Database) -> None:
    lead = await leads.create_lead(db, {"name": "Hot"}, region=REGION)
    results = await asyncio.gather(leads.claim_lead(db, ANA, lead["id"]),
                                   leads.claim_lead(db, BEN, lead["id"]),
                                   return_exceptions=True)
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert (len(won), len(lost)) == (1, 1)
    assert (await leads.get_lead(db, lead["id"]))["responsible_id"] == won[0]["responsible_id"]


async def test_converting_makes_a_private_contact_that_wins_the_lookup(db: Database) -> None:
    lead = await leads.create_lead(db, {"name": "Rosa María Pérez", "company": "Flores",
                                        "phones": ["612 00 11 22"], "emails": ["r@f.es"]},
                                   region=REGION)
    await leads.claim_lead(db, ANA, lead["id"])
    with pytest.raises(Forbidden):
        await leads.convert_lead(db, BEN, lead["id"])
    done = await leads.convert_lead(db, ANA, lead["id"])
    contact = done["contact"]
    assert (contact["first_name"], contact["last_name"], contact["company_name"],
            contact["manager_id"], contact["visibility"], contact["phones"],
            contact["emails"]) == ("Rosa", "María Pérez", "Flores", ANA.user_id, "private",
                                   [{"number": "+34612001122", "kind": "work"}],
                                   [{"address": "r@f.es", "kind": "work"}])
    assert (done["lead"]["status"], done["lead"]["converted_contact_id"]) == (
        "converted", contact["id"])
    found = await contacts.lookup_by_phone(db, ANA, "612001122", region=REGION)
    assert (found["record"], found["id"]) == ("contact", contact["id"])
    with pytest.raises(Conflict):
        await leads.convert_lead(db, ANA, lead["id"])


async def test_an_unknown_caller_becomes_one_lead_even_when_events_race(db: Database) -> None:
    results = await asyncio.gather(*[
        callers.lead_for_unknown(db, n, dialled="+34910000000", direction=Direction.INBOUND,
                                 region=REGION)
        for n in ("612 99 88 77", "+34612998877", "34612998877", "0034612998877") * 2
    ])
    assert all(r is not None for r in results)
    assert {r["id"] for r in results if r is not None} == {results[0]["id"]}  # type: ignore[index]
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 1
        assert await session.scalar(select(func.count()).select_from(Phone)) == 1
    lead = results[0]
    assert lead is not None
    assert (lead["source"], lead["source_tags"], lead["status"], lead["phones"]) == (
        "call", {"dialled": "+34910000000", "direction": "in"}, "unhandled",
        [{"number": "+34612998877", "kind": "work"}])


async def test_a_known_contact_is_not_made_a_lead(db: Database) -> None:
    await contacts.create_contact(db, ANA, {"first_name": "K", "phones": ["612 55 44 33"]},
                                  region=REGION)
    made = await callers.lead_for_unknown(db, "+34612554433", dialled="1001",
                                          direction="out", region=REGION)
    assert made is None
    assert (await leads.list_leads(db, ANA))["items"] == []


async def test_the_lead_queue_is_searchable(db: Database) -> None:
    web = await leads.create_lead(db, {"name": "Ana Web", "emails": ["ana@web.es"]},
                                  region=REGION)
    call = await leads.create_lead(db, {"company": "Bar_Pepe", "phones": ["612 77 66 55"]},
                                   region=REGION)
    cases = {"ana": [web["id"]], "WEB.ES": [web["id"]], "bar_pepe": [call["id"]],
             "bar_": [call["id"]], "ba_": [], "612776655": [call["id"]],
             "0034 612 77 66 55": [call["id"]], "nobody": []}
    for q, expected in cases.items():
        assert _ids(await leads.list_leads(db, BEN, q=q, region=REGION)) == expected, q
    assert _ids(await leads.list_leads(db, BEN, q="+34612776655")) == [call["id"]]


async def test_a_company_lead_becomes_a_company(db: Database) -> None:
    lead = await leads.create_lead(db, {"company": "Talleres Ruiz"}, region=REGION)
    contact = (await leads.convert_lead(db, BEN, lead["id"]))["contact"]
    assert (contact["kind"], contact["name"], contact["manager_id"]) == (
        "company", "Talleres Ruiz", BEN.user_id)


async def test_a_call_and_an_sms_from_one_unknown_number_race_into_one_lead(
    db: Database
) -> None:
    call, sms = await asyncio.gather(
        callers.lead_for_unknown(db, "612 40 40 40", dialled="+34910000000",
                                 direction="in", region=REGION),
        callers.lead_for_unknown(db, "612 40 40 40", dialled="+34910000001",
                                 direction="in", region=REGION, source="sms"),
    )
    assert call is not None and sms is not None and call["id"] == sms["id"]
    assert len((await leads.list_leads(db, ANA, status="unhandled"))["items"]) == 1
