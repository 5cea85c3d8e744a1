"""Leads: the team's queue of people who are not clients yet (C4).

Anyone sees the queue and may claim an unhandled lead; the claim is one
conditional UPDATE, so two agents clicking at once get one winner and one
409. Converting makes a contact from the lead and moves its calls along.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import access
from crm_core.access import Viewer
from crm_core.contacts import cards, parse_emails, parse_phones
from crm_core.db import Database
from crm_core.models import Call, Contact, Email, Lead, Phone, iso, utcnow
from crm_core.phones import find_owner_e164, normalise, normalise_or_none
from crm_core.search import like_pattern, term_rows, terms_of
from kernel.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kernel.events import Direction

SOURCES = ("manual", "import", "call", "sms", "email", "web", "api")
STATUSES = ("unhandled", "handled", "converted")
FIELDS = ("name", "company", "source", "source_tags", "phones", "emails")


async def lead_cards(session: AsyncSession, leads: Sequence[Lead]) -> list[dict[str, Any]]:
    """Leads in the API's shape, their phones and e-mails loaded in two queries."""
    ids = [lead.id for lead in leads]
    phones: dict[int, list[dict[str, str]]] = defaultdict(list)
    emails: dict[int, list[dict[str, str]]] = defaultdict(list)
    if ids:
        for phone in await session.scalars(
            select(Phone).where(Phone.lead_id.in_(ids)).order_by(Phone.position, Phone.id)
        ):
            phones[phone.lead_id or 0].append({"number": phone.number, "kind": phone.kind})
        for email in await session.scalars(
            select(Email).where(Email.lead_id.in_(ids)).order_by(Email.position, Email.id)
        ):
            emails[email.lead_id or 0].append({"address": email.address, "kind": email.kind})
    return [{
        "id": lead.id, "name": lead.name, "company": lead.company, "status": lead.status,
        "responsible_id": lead.responsible_id, "source": lead.source,
        "source_tags": lead.source_tags or {}, "converted_contact_id": lead.converted_contact_id,
        "phones": phones[lead.id], "emails": emails[lead.id],
        "created_at": iso(lead.created_at), "handled_at": iso(lead.handled_at),
        "converted_at": iso(lead.converted_at),
    } for lead in leads]


def _checked(data: Mapping[str, Any]) -> dict[str, Any]:
    for key in data:
        if key not in FIELDS:
            raise ValidationFailed(f"unknown field {key!r}", field=key)
    out: dict[str, Any] = {}
    for key in ("name", "company"):
        value = data.get(key) or ""
        if not isinstance(value, str) or len(value) > 200:
            raise ValidationFailed(f"{key} is a string of at most 200 characters", field=key)
        out[key] = value.strip()
    out["source"] = data.get("source") or "manual"
    if out["source"] not in SOURCES:
        raise ValidationFailed(f"source is one of {', '.join(SOURCES)}", field="source")
    tags = data.get("source_tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ValidationFailed("source_tags maps names to strings (e.g. utm_source)",
                               field="source_tags")
    out["source_tags"] = tags
    return out


def new_lead(
    data: Mapping[str, Any], *, region: str, origin_key: str | None = None
) -> tuple[Lead, list[Phone], list[Email]]:
    """An unsaved lead and its channels, checked; the caller adds them to its session."""
    values = _checked(data)
    phones = parse_phones(data, region)
    emails = parse_emails(data)
    if not (values["name"] or values["company"] or phones or emails):
        raise ValidationFailed("a lead needs a name, a company, a phone or an e-mail",
                               field="name")
    lead = Lead(status="unhandled", origin_key=origin_key, created_at=utcnow(), **values)
    return (
        lead,
        [Phone(number=n, kind=k, position=i) for i, (n, k) in enumerate(phones)],
        [Email(address=a, kind=k, position=i) for i, (a, k) in enumerate(emails)],
    )


async def save_lead(session: AsyncSession, lead: Lead, phones: list[Phone],
                    emails: list[Email]) -> None:
    session.add(lead)
    await session.flush()
    for phone in phones:
        phone.lead_id = lead.id
    for email in emails:
        email.lead_id = lead.id
    session.add_all([*phones, *emails])
    await session.flush()


async def create_lead(db: Database, data: Mapping[str, Any], *, region: str) -> dict[str, Any]:
    """A new unhandled lead (manual entry, import, web form, API)."""
    lead, phones, emails = new_lead(data, region=region)
    async with db.transaction() as session:
        await save_lead(session, lead, phones, emails)
        return (await lead_cards(session, [lead]))[0]


async def get_lead(db: Database, lead_id: int) -> dict[str, Any]:
    async with db.session() as session:
        lead = await session.get(Lead, lead_id)
        if lead is None:
            raise NotFound(f"no lead {lead_id}", field="id")
        return (await lead_cards(session, [lead]))[0]


def _search(q: str, region: str) -> ColumnElement[bool]:
    """A lead by name, company, e-mail or a phone number in any written form."""
    pattern = like_pattern(q.strip())
    parts: list[ColumnElement[bool]] = [
        func.lower(Lead.name).like(pattern, escape="\\"),
        func.lower(Lead.company).like(pattern, escape="\\"),
        Lead.id.in_(select(Email.lead_id).where(Email.address.like(pattern, escape="\\"),
                                                Email.lead_id.is_not(None))),
    ]
    number = normalise_or_none(q, region)
    if number is not None:
        parts.append(Lead.id.in_(select(Phone.lead_id).where(Phone.number == number,
                                                             Phone.lead_id.is_not(None))))
    return or_(*parts)


async def list_leads(
    db: Database, viewer: Viewer, *, status: str | None = None, q: str | None = None,
    region: str = "ZZ", cursor: str | None = None, limit: int | None = None,
) -> dict[str, Any]:
    """`status=unhandled` (the queue) or `mine` (the viewer's, not yet converted); newest first.

    `q` searches name, company, e-mail and phone; pass the installation's `region`
    so national numbers are understood (the default `ZZ` reads only `+...` numbers).
    """
    query = select(Lead)
    if q and q.strip():
        query = query.where(_search(q, region))
    if status == "unhandled":
        query = query.where(Lead.status == "unhandled")
    elif status == "mine":
        query = query.where(Lead.responsible_id == viewer.user_id, Lead.status == "handled")
    elif status in STATUSES:
        query = query.where(Lead.status == status)
    elif status:
        raise ValidationFailed("status is unhandled, mine, handled or converted", field="status")
    return await access.newest_first(db, query, Lead.id, cursor=cursor, limit=limit,
                                     render=lead_cards)


async def claim_lead(db: Database, viewer: Viewer, lead_id: int) -> dict[str, Any]:
    """Make `viewer` responsible for an unhandled lead; a second claim is a 409."""
    async with db.transaction() as session:
        claimed = await session.execute(
            update(Lead)
            .where(Lead.id == lead_id, Lead.status == "unhandled")
            .values(status="handled", responsible_id=viewer.user_id, handled_at=utcnow())
            .returning(Lead.id)
        )
        if claimed.first() is None:
            lead = await session.get(Lead, lead_id)
            if lead is None:
                raise NotFound(f"no lead {lead_id}", field="id")
            raise Conflict(f"lead {lead_id} is already {lead.status}", status=lead.status,
                           responsible_id=lead.responsible_id)
        lead = await session.get_one(Lead, lead_id, populate_existing=True)
        return (await lead_cards(session, [lead]))[0]


def _person(lead: Lead, number: str | None) -> dict[str, Any]:
    """The contact's name fields; a nameless caller is named by their number until edited."""
    first, _, last = lead.name.strip().partition(" ")
    if first or not lead.company:
        return {"kind": "person", "first_name": first or number or f"Lead {lead.id}",
                "last_name": last, "company_name": lead.company}
    return {"kind": "company", "first_name": "", "last_name": "", "company_name": lead.company}


async def convert_lead(db: Database, viewer: Viewer, lead_id: int) -> dict[str, Any]:
    """Turn a lead into a private contact of `viewer`: `{lead, contact}`.

    The lead keeps its phones for history; the contact gets copies, and a
    contact wins every later lookup of those numbers. The lead's calls and
    notes are linked to the contact so its timeline starts complete.
    """
    async with db.transaction() as session:
        lead = await session.get(Lead, lead_id, with_for_update=True)
        if lead is None:
            raise NotFound(f"no lead {lead_id}", field="id")
        if lead.status == "converted":
            raise Conflict(f"lead {lead_id} is already converted",
                           contact_id=lead.converted_contact_id)
        others = lead.responsible_id not in (None, viewer.user_id)
        if others and viewer.role != access.ADMIN:
            raise Forbidden("only the lead's responsible or an admin converts it")
        now = utcnow()
        number = await session.scalar(
            select(Phone.number).where(Phone.lead_id == lead.id).order_by(Phone.position))
        contact = Contact(**_person(lead, number), type="client", visibility="private", custom={},
                          manager_id=lead.responsible_id or viewer.user_id,
                          created_at=now, updated_at=now)
        session.add(contact)
        await session.flush()
        await _copy_channels(session, lead.id, contact.id)
        session.add_all(term_rows(contact.id, terms_of(contact.first_name, contact.last_name,
                                                       contact.company_name)))
        await session.execute(
            update(Call).where(Call.lead_id == lead.id, Call.contact_id.is_(None))
            .values(contact_id=contact.id)
        )
        lead.status, lead.converted_contact_id, lead.converted_at = "converted", contact.id, now
        lead.responsible_id = lead.responsible_id or viewer.user_id
        lead.handled_at = lead.handled_at or now
        await session.flush()
        return {"lead": (await lead_cards(session, [lead]))[0],
                "contact": (await cards(session, [contact]))[0]}


async def _copy_channels(session: AsyncSession, lead_id: int, contact_id: int) -> None:
    for phone in list(await session.scalars(select(Phone).where(Phone.lead_id == lead_id))):
        session.add(Phone(number=phone.number, kind=phone.kind, position=phone.position,
                          contact_id=contact_id))
    for email in list(await session.scalars(select(Email).where(Email.lead_id == lead_id))):
        session.add(Email(address=email.address, kind=email.kind, position=email.position,
                          contact_id=contact_id))


async def lead_for_unknown(
    db: Database, number: str, *, dialled: str, direction: Direction | str, region: str,
    source: str = "call", name: str = "",
) -> dict[str, Any] | None:
    """The lead of an unknown outside number, created at most once; None if a contact has it.

    Two call events for the same new number can race (two nodes, or a
    replay); the lead's UNIQUE `origin_key` lets exactly one INSERT win and
    the loser reads the winner's lead.
    """
    e164 = normalise(number, region)
    async with db.session() as session:
        owner = await find_owner_e164(session, e164)
        if owner is not None:
            return await _lead_card(session, owner.lead_id) if owner.contact_id is None else None
    key = f"unknown:{e164}"  # one lead per number, whichever channel (call, SMS) came first
    direction = Direction(direction)
    lead = Lead(name=name, company="", status="unhandled", source=source, origin_key=key,
                source_tags={"dialled": dialled, "direction": direction.value},
                created_at=utcnow())
    try:
        async with db.transaction() as session:
            await save_lead(session, lead, [Phone(number=e164, kind="work", position=0)], [])
            return (await lead_cards(session, [lead]))[0]
    except IntegrityError:
        async with db.session() as session:
            winner = await session.scalar(select(Lead.id).where(Lead.origin_key == key))
            return await _lead_card(session, winner)


async def _lead_card(session: AsyncSession, lead_id: int | None) -> dict[str, Any] | None:
    lead = None if lead_id is None else await session.get(Lead, lead_id)
    return None if lead is None else (await lead_cards(session, [lead]))[0]
