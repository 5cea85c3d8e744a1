"""Notes: what an agent writes about a contact, a lead or a call (C7).

A note can be written wherever its author may look: on a contact they can
see (a read-only shared contact can still be annotated), on any lead, on a
call they can see. Notes on a call show in the timeline of the call's
contact or lead.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.access import Viewer, call_visible, contact_visible
from crm_core.db import Database
from crm_core.models import Call, Contact, Lead, Note, iso, utcnow
from kernel.errors import NotFound, ValidationFailed

MAX_TEXT = 20_000


def note_json(note: Note, call_id: str | None = None) -> dict[str, Any]:
    """A note; `call_id` is the PBX's id of the call it is about, if any."""
    return {
        "id": note.id, "contact_id": note.contact_id, "lead_id": note.lead_id,
        "call_id": call_id, "author_id": note.author_id, "text": note.text,
        "created_at": iso(note.created_at),
    }


async def _target(
    session: AsyncSession, viewer: Viewer, contact_id: int | None, lead_id: int | None,
    call_id: str | None,
) -> Note:
    """An unsaved note on the one target named, which `viewer` must be able to see."""
    if sum(x is not None for x in (contact_id, lead_id, call_id)) != 1:
        raise ValidationFailed("a note is on exactly one contact, lead or call", field="target")
    if contact_id is not None:
        found = await session.scalar(
            select(Contact.id).where(Contact.id == contact_id, contact_visible(viewer))
        )
        if found is None:
            raise NotFound(f"no contact {contact_id}", field="contact_id")
        return Note(contact_id=contact_id)
    if lead_id is not None:
        if await session.get(Lead, lead_id) is None:
            raise NotFound(f"no lead {lead_id}", field="lead_id")
        return Note(lead_id=lead_id)
    call = await session.scalar(select(Call).where(Call.call_id == call_id, call_visible(viewer)))
    if call is None:
        raise NotFound(f"no call {call_id}", field="call_id")
    return Note(call_id=call.id, contact_id=call.contact_id, lead_id=call.lead_id)


async def add_note(
    db: Database, viewer: Viewer, text: str, *, contact_id: int | None = None,
    lead_id: int | None = None, call_id: str | None = None,
) -> dict[str, Any]:
    """Write a note on a contact, a lead or a call (by the PBX's call id)."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed("a note needs some text", field="text")
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"a note has at most {MAX_TEXT} characters", field="text")
    async with db.transaction() as session:
        note = await _target(session, viewer, contact_id, lead_id, call_id)
        note.text, note.author_id, note.created_at = text.strip(), viewer.user_id, utcnow()
        session.add(note)
        await session.flush()
        return note_json(note, call_id)


async def call_notes(db: Database, viewer: Viewer, call_id: str) -> list[dict[str, Any]]:
    """The notes on one call, oldest first (the order they were written during it)."""
    async with db.session() as session:
        call = await session.scalar(
            select(Call).where(Call.call_id == call_id, call_visible(viewer))
        )
        if call is None:
            raise NotFound(f"no call {call_id}", field="call_id")
        notes = await session.scalars(
            select(Note).where(Note.call_id == call.id).order_by(Note.created_at, Note.id)
        )
        return [note_json(n, call_id) for n in notes]
