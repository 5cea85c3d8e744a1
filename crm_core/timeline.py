"""The timeline of a contact or a lead: calls (with recordings), notes and lead events (C7).

Newest first. A contact's timeline includes the history of the leads that
were converted into it, so a client's first unknown call is not lost. The
contact must be visible to the viewer: a private contact's timeline is a
404 for everyone else, exactly like the contact itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import access
from crm_core.access import Viewer, contact_visible
from crm_core.calllog import call_json
from crm_core.db import Database
from crm_core.models import Call, Contact, Lead, Note, iso
from crm_core.notes import note_json
from kernel.errors import NotFound, ValidationFailed

Entry = tuple[datetime, int, int, dict[str, Any]]
"""(when, rank of its kind, row id, item): the total order of a timeline, newest first."""
MAX_ITEMS = 500
SLACK = 8  # rows sharing the cursor's exact microsecond that a page may have to skip
CALL, NOTE, LEAD = 0, 1, 2
LEAD_EVENTS = ("created", "claimed", "converted")


def _at(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _lead_events(lead: Lead) -> list[Entry]:
    """A lead's own history, read from its timestamps."""
    about = {"id": lead.id, "name": lead.name, "source": lead.source,
             "source_tags": lead.source_tags or {}, "responsible_id": lead.responsible_id,
             "converted_contact_id": lead.converted_contact_id}
    moments = (lead.created_at, lead.handled_at, lead.converted_at)
    return [
        (_at(moment), LEAD + n, lead.id,
         {"type": "lead", "event": LEAD_EVENTS[n], "at": iso(moment), "lead": about})
        for n, moment in enumerate(moments) if moment is not None
    ]


async def _entries(
    session: AsyncSession, calls: ColumnElement[bool], notes: ColumnElement[bool],
    limit: int, before: datetime | None,
) -> list[Entry]:
    """The newest `limit` calls and notes at or before `before` (the caller trims ties)."""
    if before is not None:
        calls = and_(calls, Call.started_at <= before)
        notes = and_(notes, Note.created_at <= before)
    out: list[Entry] = []
    for call in await session.scalars(
        select(Call).where(calls).order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)
    ):
        out.append((_at(call.started_at), CALL, call.id,
                    {"type": "call", "at": iso(call.started_at), "call": call_json(call)}))
    rows = await session.execute(
        select(Note, Call.call_id).outerjoin(Call, Call.id == Note.call_id).where(notes)
        .order_by(Note.created_at.desc(), Note.id.desc()).limit(limit)
    )
    for note, pbx_call_id in rows:
        out.append((_at(note.created_at), NOTE, note.id,
                    {"type": "note", "at": iso(note.created_at),
                     "note": note_json(note, pbx_call_id)}))
    return out


def _after(cursor: str | None) -> tuple[datetime, int, int] | None:
    key = access.decode_cursor(cursor, str, int, int)
    if key is None:
        return None
    try:
        return _at(datetime.fromisoformat(key[0])), key[1], key[2]
    except ValueError as exc:
        raise ValidationFailed("the cursor is not one this server gave out",
                               field="cursor") from exc


async def timeline(
    db: Database, viewer: Viewer, *, contact_id: int | None = None,
    lead_id: int | None = None, limit: int = 100, cursor: str | None = None,
) -> dict[str, Any]:
    """`{items: [{type: call|note|lead, at, ...}], next}` newest first, paged by `next`."""
    if (contact_id is None) == (lead_id is None):
        raise ValidationFailed("a timeline is of one contact or one lead", field="id")
    if not 1 <= limit <= MAX_ITEMS:
        raise ValidationFailed(f"limit must be between 1 and {MAX_ITEMS}", field="limit")
    after = _after(cursor)
    before = after[0] if after else None
    async with db.session() as session:
        if contact_id is not None:
            entries = await _contact_entries(session, viewer, contact_id, limit + SLACK, before)
        else:
            entries = await _lead_entries(session, lead_id or 0, limit + SLACK, before)
    entries.sort(key=lambda e: e[:3], reverse=True)
    if after is not None:
        entries = [e for e in entries if e[:3] < after]
    page = entries[:limit]
    nxt = None
    if len(entries) > limit:
        last = page[-1]
        nxt = access.encode_cursor([last[0].isoformat(), last[1], last[2]])
    return {"items": [e[3] for e in page], "next": nxt}


async def _contact_entries(
    session: AsyncSession, viewer: Viewer, contact_id: int, limit: int, before: datetime | None
) -> list[Entry]:
    visible = await session.scalar(
        select(Contact.id).where(Contact.id == contact_id, contact_visible(viewer))
    )
    if visible is None:
        raise NotFound(f"no contact {contact_id}", field="id")
    leads = list(await session.scalars(select(Lead).where(Lead.converted_contact_id == contact_id)))
    lead_ids = [lead.id for lead in leads]
    entries = await _entries(
        session,
        or_(Call.contact_id == contact_id, Call.lead_id.in_(lead_ids)),
        or_(Note.contact_id == contact_id, Note.lead_id.in_(lead_ids)),
        limit, before,
    )
    for lead in leads:
        entries += _lead_events(lead)
    return entries


async def _lead_entries(
    session: AsyncSession, lead_id: int, limit: int, before: datetime | None
) -> list[Entry]:
    lead = await session.get(Lead, lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id}", field="id")
    entries = await _entries(session, Call.lead_id == lead_id, Note.lead_id == lead_id,
                             limit, before)
    return entries + _lead_events(lead)
