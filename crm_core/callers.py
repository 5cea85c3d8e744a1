"""Who is calling: the card a screen-pop shows while the phone still rings.

`identify` must answer within the ring, so it is the indexed phone lookup
plus a handful of small queries for the card. Pass the agent as `viewer`
and a contact they may not see is not identified for them (None), so a
private client's name never pops on a colleague's screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from crm_core.access import Viewer
from crm_core.calllog import call_json
from crm_core.contacts import display_name
from crm_core.db import Database
from crm_core.leads import lead_for_unknown
from crm_core.models import Call, Contact, ContactTag, Lead, Note
from crm_core.notes import note_json
from crm_core.phones import PhoneDirectory, PhoneOwner, find_owner_e164, normalise_or_none

LAST_CALLS = 5
LAST_NOTES = 3

__all__ = ["CardReader", "identify", "lead_for_unknown"]


class CardReader:
    """Reads caller cards: on a SQLite file in the event loop's own thread.

    A card is four small indexed reads. Through aiosqlite each is a hop to a
    worker thread and back, which on a busy machine costs more than the read;
    on a read-only connection of its own (WAL: readers never wait for the
    writer) the whole card takes well under a millisecond. If SQLite still
    says busy, or on PostgreSQL, the same code runs on an async session.
    """

    BUSY_S = 0.02

    def __init__(self, db: Database) -> None:
        self.db = db
        self._local: Engine | None = None
        url = make_url(db.url)
        path = url.database if url.get_backend_name() == "sqlite" else None
        if path and path != ":memory:" and not path.startswith("file:") and Path(path).exists():
            self._local = create_engine(
                f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=StaticPool,
                connect_args={"timeout": self.BUSY_S, "check_same_thread": False},
            )

    async def card(self, owner: PhoneOwner) -> dict[str, Any]:
        if self._local is not None:
            try:
                with Session(self._local) as session:
                    return _card(session, owner)
            except OperationalError:
                pass  # busy: wait for it off the loop, below
        async with self.db.session() as session:
            return await session.run_sync(_card, owner)

    def close(self) -> None:
        if self._local is not None:
            self._local.dispose()
            self._local = None


async def identify(
    db: Database, number: str, region: str, viewer: Viewer | None = None,
    directory: PhoneDirectory | None = None, reader: CardReader | None = None,
) -> dict[str, Any] | None:
    """The caller card of the contact or lead owning `number`, or None if unknown.

    `{kind: contact|lead, id, name, company, tags, deals: [], calls: [last 5],
    notes: [last 3], profile: "/contacts/7", number}`. It must arrive within a
    ring, so it reads only what the card shows, on the fast paths when given.
    """
    e164 = normalise_or_none(number, region)
    if e164 is None:
        return None
    if directory is not None:
        owner = await directory.owner(e164, region, viewer)
    else:
        async with db.session() as session:
            owner = await find_owner_e164(session, e164, viewer)
    if owner is None:
        return None
    if reader is not None:
        return await reader.card(owner)
    async with db.session() as session:
        return await session.run_sync(_card, owner)


def _card(session: Session, owner: PhoneOwner) -> dict[str, Any]:
    """The card in one sync function, so both the local and the async path run it."""
    if owner.contact_id is not None:
        contact = session.get_one(Contact, owner.contact_id)
        tags = session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == contact.id)
                               .order_by(ContactTag.tag))
        head = {"kind": "contact", "id": contact.id, "name": display_name(contact),
                "company": contact.company_name, "tags": list(tags),
                "profile": f"/contacts/{contact.id}"}
        calls, notes = Call.contact_id == contact.id, Note.contact_id == contact.id
    else:
        lead = session.get_one(Lead, owner.lead_id)
        head = {"kind": "lead", "id": lead.id, "name": lead.name, "company": lead.company,
                "tags": [lead.source], "profile": f"/leads/{lead.id}"}
        calls, notes = Call.lead_id == lead.id, Note.lead_id == lead.id
    last_calls = session.scalars(
        select(Call).where(calls).order_by(Call.started_at.desc(), Call.id.desc())
        .limit(LAST_CALLS)
    )
    last_notes = session.execute(
        select(Note, Call.call_id).outerjoin(Call, Call.id == Note.call_id).where(notes)
        .order_by(Note.created_at.desc(), Note.id.desc()).limit(LAST_NOTES)
    )
    return {**head, "number": owner.number, "deals": [],
            "calls": [call_json(c) for c in last_calls],
            "notes": [note_json(n, pbx_id) for n, pbx_id in last_notes]}
