"""Who is calling: the card a screen-pop shows while the phone still rings.

`identify` must answer within the ring, so it is the indexed phone lookup
plus a handful of small queries for the card. Pass the agent as `viewer`
and a contact they may not see is not identified for them (None), so a
private client's name never pops on a colleague's screen.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.access import Viewer
from crm_core.calllog import call_json
from crm_core.contacts import display_name
from crm_core.db import Database
from crm_core.leads import lead_for_unknown
from crm_core.models import Call, Contact, ContactTag, Lead, Note
from crm_core.notes import note_json
from crm_core.phones import PhoneDirectory, find_owner_e164, normalise_or_none

LAST_CALLS = 5
LAST_NOTES = 3

__all__ = ["identify", "lead_for_unknown"]


async def identify(
    db: Database, number: str, region: str, viewer: Viewer | None = None,
    directory: PhoneDirectory | None = None,
) -> dict[str, Any] | None:
    """The caller card of the contact or lead owning `number`, or None if unknown.

    `{kind: contact|lead, id, name, company, tags, deals: [], calls: [last 5],
    notes: [last 3], profile: "/contacts/7", number}`. It must arrive within a
    ring, so it reads only what the card shows: the owner (on the directory's
    fast path when given; an unknown number then opens no session), the name,
    the tags, the last calls and notes: four small indexed queries.
    """
    e164 = normalise_or_none(number, region)
    if e164 is None:
        return None
    if directory is not None:
        owner = await directory.owner(e164, region, viewer)
        if owner is None:
            return None
    async with db.session() as session:
        if directory is None:
            owner = await find_owner_e164(session, e164, viewer)
        if owner is None:
            return None
        if owner.contact_id is not None:
            card = await _contact_card(session, owner.contact_id)
            recent = await _recent(session, Call.contact_id == owner.contact_id,
                                   Note.contact_id == owner.contact_id)
        else:
            assert owner.lead_id is not None
            card = await _lead_card(session, owner.lead_id)
            recent = await _recent(session, Call.lead_id == owner.lead_id,
                                   Note.lead_id == owner.lead_id)
    return {**card, "number": e164, "deals": [], **recent}


async def _contact_card(session: AsyncSession, contact_id: int) -> dict[str, Any]:
    contact = await session.get_one(Contact, contact_id)
    tags = await session.scalars(
        select(ContactTag.tag).where(ContactTag.contact_id == contact_id).order_by(ContactTag.tag)
    )
    return {"kind": "contact", "id": contact_id, "name": display_name(contact),
            "company": contact.company_name, "tags": list(tags),
            "profile": f"/contacts/{contact_id}"}


async def _lead_card(session: AsyncSession, lead_id: int) -> dict[str, Any]:
    lead = await session.get_one(Lead, lead_id)
    return {"kind": "lead", "id": lead_id, "name": lead.name, "company": lead.company,
            "tags": [lead.source], "profile": f"/leads/{lead_id}"}


async def _recent(session: AsyncSession, calls: Any, notes: Any) -> dict[str, Any]:
    last_calls = await session.scalars(
        select(Call).where(calls).order_by(Call.started_at.desc(), Call.id.desc())
        .limit(LAST_CALLS)
    )
    last_notes = await session.execute(
        select(Note, Call.call_id).outerjoin(Call, Call.id == Note.call_id).where(notes)
        .order_by(Note.created_at.desc(), Note.id.desc()).limit(LAST_NOTES)
    )
    return {"calls": [call_json(c) for c in last_calls],
            "notes": [note_json(n, pbx_id) for n, pbx_id in last_notes]}
