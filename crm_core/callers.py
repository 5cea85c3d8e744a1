"""Who is calling: the card a screen-pop shows while the phone still rings.

`identify` must answer within the ring, so it is the indexed phone lookup
plus four small indexed reads for the card, prebuilt, and on PostgreSQL all
in one statement. Pass the agent as `viewer`
and a contact they may not see is not identified for them (None), so a
private client's name never pops on a colleague's screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Select,
    Table,
    bindparam,
    create_engine,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import ColumnElement

from crm_core.access import Viewer
from crm_core.calllog import call_json
from crm_core.contacts import display_name
from crm_core.db import Database
from crm_core.leads import lead_for_unknown
from crm_core.models import Base, Call, Contact, ContactTag, Lead, Note
from crm_core.notes import note_json
from crm_core.phones import (
    PhoneDirectory,
    PhoneOwner,
    find_owner_e164,
    normalise_or_none,
    owner_statement,
)

LAST_CALLS = 5
LAST_NOTES = 3

__all__ = ["CardReader", "identify", "lead_for_unknown"]

_M = TypeVar("_M", bound=Base)
_TABLES = tuple(Base.metadata.tables[t] for t in ("contacts", "leads", "calls", "notes"))
_TIMES = {t.name: frozenset(c.name for c in t.c if isinstance(c.type, DateTime)) for t in _TABLES}


class CardReader:
    """Reads caller cards on the fastest path the database offers.

    A card is the phone lookup and four small indexed reads. On a SQLite file
    they run in the event loop's own thread on read-only connections (WAL:
    readers never wait for the writer): through aiosqlite each read would be a
    hop to a worker thread and back, which on a busy machine costs more than
    the read. On PostgreSQL every round trip is a wait for another process, so
    lookup and card are ONE statement on an autocommit connection (no BEGIN,
    no ROLLBACK). Anything else, or a SQLite that says busy, takes a session.
    """

    BUSY_S = 0.02

    def __init__(self, db: Database, directory: PhoneDirectory | None = None) -> None:
        self.db, self._directory = db, directory
        self._local: Engine | None = None
        url = make_url(db.url)
        self._postgres = url.get_backend_name() == "postgresql"
        path = url.database if url.get_backend_name() == "sqlite" else None
        if path and path != ":memory:" and not path.startswith("file:") and Path(path).exists():
            self._local = create_engine(
                f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=StaticPool,
                connect_args={"timeout": self.BUSY_S, "check_same_thread": False},
            )

    async def identify(self, e164: str, viewer: Viewer | None) -> dict[str, Any] | None:
        """The card of whoever owns `e164` as `viewer` may see it, or None."""
        if self._postgres:
            return await self._one_statement(e164, viewer)
        if self._directory is None:
            return await _by_session(self.db, e164, viewer)
        owner = await self._directory.owner_e164(e164, viewer)
        if owner is None:
            return None
        if self._local is not None:
            try:
                with self._local.connect() as conn:
                    return _card(conn, owner)
            except OperationalError:
                pass  # busy: wait for it off the loop, below
        async with self.db.engine.connect() as conn:
            return await conn.run_sync(_card, owner)

    async def _one_statement(self, e164: str, viewer: Viewer | None) -> dict[str, Any] | None:
        query, params = owner_statement(e164, viewer)
        async with self.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            row = (await conn.execute(_card_statement(query), params)).first()
        if row is None:
            return None
        owner = PhoneOwner(e164, row.contact_id, row.lead_id)
        if row.contact is not None:
            head = _contact_head(_record(Contact, row.contact), row.tags or [])
        else:
            head = _lead_head(_record(Lead, row.lead))
        notes = [(_record(Note, n), n["pbx_call_id"]) for n in row.notes or []]
        return _card_json(owner, head, [_record(Call, c) for c in row.calls or []], notes)

    def close(self) -> None:
        if self._local is not None:
            self._local.dispose()
            self._local = None


async def identify(
    db: Database, number: str, region: str, viewer: Viewer | None = None,
    reader: CardReader | None = None,
) -> dict[str, Any] | None:
    """The caller card of the contact or lead owning `number`, or None if unknown.

    `{kind: contact|lead, id, name, company, tags, deals: [], calls: [last 5],
    notes: [last 3], profile: "/contacts/7", number}`. It must arrive within a
    ring, so it reads only what the card shows, on the reader's fast path when given.
    """
    e164 = normalise_or_none(number, region)
    if e164 is None:
        return None
    if reader is not None:
        return await reader.identify(e164, viewer)
    return await _by_session(db, e164, viewer)


async def _by_session(db: Database, e164: str, viewer: Viewer | None) -> dict[str, Any] | None:
    async with db.session() as session:
        owner = await find_owner_e164(session, e164, viewer)
        if owner is None:
            return None
        return await (await session.connection()).run_sync(_card, owner)


def _card(conn: Connection, owner: PhoneOwner) -> dict[str, Any]:
    """The card in prebuilt Core statements on one sync connection (the local and the
    async path): on the local path it runs in the event loop's thread, where every step counts.
    """
    key: dict[str, int | None]
    if owner.contact_id is not None:
        key = {"key": owner.contact_id}
        contact = conn.execute(_CONTACT, key).mappings().one()
        tags = list(conn.execute(_TAGS, key).scalars())
        head = _contact_head(_record(Contact, contact), tags)
        calls, notes = _HISTORY["contact_id"]
    else:
        key = {"key": owner.lead_id}
        head = _lead_head(_record(Lead, conn.execute(_LEAD, key).mappings().one()))
        calls, notes = _HISTORY["lead_id"]
    return _card_json(owner, head, [_record(Call, c) for c in conn.execute(calls, key).mappings()],
                      [(_record(Note, n), n["pbx_call_id"])
                       for n in conn.execute(notes, key).mappings()])


def _history(column: str, key: ColumnElement[Any]) -> tuple[Select[Any], Select[Any]]:
    """The newest calls and notes, newest first, whose `column` (contact_id or lead_id) is `key`."""
    _, _, calls, notes = _TABLES
    return (
        select(calls).where(calls.c[column] == key)
        .order_by(calls.c.started_at.desc(), calls.c.id.desc()).limit(LAST_CALLS),
        select(notes, calls.c.call_id.label("pbx_call_id"))
        .outerjoin(calls, calls.c.id == notes.c.call_id).where(notes.c[column] == key)
        .order_by(notes.c.created_at.desc(), notes.c.id.desc()).limit(LAST_NOTES),
    )


# Built once: a card pays for binding one value per statement, not for building SQL.
_CONTACT = select(_TABLES[0]).where(_TABLES[0].c.id == bindparam("key"))
_TAGS = select(ContactTag.tag).where(ContactTag.contact_id == bindparam("key")).order_by(
    ContactTag.tag)
_LEAD = select(_TABLES[1]).where(_TABLES[1].c.id == bindparam("key"))
_HISTORY = {column: _history(column, bindparam("key")) for column in ("contact_id", "lead_id")}


def _contact_head(contact: Contact, tags: list[str]) -> dict[str, Any]:
    return {"kind": "contact", "id": contact.id, "name": display_name(contact),
            "company": contact.company_name, "tags": tags, "profile": f"/contacts/{contact.id}"}


def _lead_head(lead: Lead) -> dict[str, Any]:
    return {"kind": "lead", "id": lead.id, "name": lead.name, "company": lead.company,
            "tags": [lead.source], "profile": f"/leads/{lead.id}"}


def _card_json(
    owner: PhoneOwner, head: dict[str, Any], calls: list[Call],
    notes: list[tuple[Note, str | None]],
) -> dict[str, Any]:
    return {**head, "number": owner.number, "deals": [],
            "calls": [call_json(c) for c in calls],
            "notes": [note_json(n, pbx_id) for n, pbx_id in notes]}


@cache
def _card_statement(owner_query: Select[int | None, int | None]) -> Select[Any]:
    """Owner lookup and card in one PostgreSQL statement (built once per owner query).

    The owner is a one-row CTE; the contact, its tags, or the lead, and the
    newest calls and notes are scalar subqueries on it, each on its own index
    (a contact's rows and a lead's rows are separate subqueries, not an OR).
    """
    owner = owner_query.cte("owner")
    is_lead = owner.c.contact_id.is_(None)
    contacts, leads, _, _ = _TABLES

    def as_json(history: Select[Any]) -> ColumnElement[Any]:
        """A `_history` query's rows as one JSON array, newest first (NULL when none)."""
        rows = history.subquery()
        moment = rows.c["started_at" if "started_at" in rows.c else "created_at"]
        newest_first = aggregate_order_by(rows.table_valued(), moment.desc(), rows.c.id.desc())
        return select(func.json_agg(newest_first)).scalar_subquery()

    def row_of(table: Table, *where: ColumnElement[bool]) -> ColumnElement[Any]:
        return select(func.row_to_json(table.table_valued())).where(*where).scalar_subquery()

    contact_calls, contact_notes = _history("contact_id", owner.c.contact_id)
    lead_calls, lead_notes = (q.where(is_lead) for q in _history("lead_id", owner.c.lead_id))
    tags = select(func.array_agg(aggregate_order_by(ContactTag.tag, ContactTag.tag))).where(
        ContactTag.contact_id == owner.c.contact_id)
    return select(
        owner.c.contact_id, owner.c.lead_id,
        row_of(contacts, contacts.c.id == owner.c.contact_id).label("contact"),
        row_of(leads, is_lead, leads.c.id == owner.c.lead_id).label("lead"),
        tags.scalar_subquery().label("tags"),
        func.coalesce(as_json(contact_calls), as_json(lead_calls)).label("calls"),
        func.coalesce(as_json(contact_notes), as_json(lead_notes)).label("notes"),
    ).select_from(owner)


def _record(model: type[_M], row: Mapping[Any, Any]) -> _M:
    """`row` as a plain record with `model`'s attributes, for call_json, note_json, the heads.

    Not a real `model`: the ORM's instrumented constructor cost a third of the card, and a
    card's rows are read once and thrown away. PostgreSQL's JSON rows carry times as text.
    """
    times = _TIMES[model.__tablename__]
    return cast(_M, SimpleNamespace(**{
        key: datetime.fromisoformat(value) if key in times and isinstance(value, str) else value
        for key, value in row.items()
    }))
