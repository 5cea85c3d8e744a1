"""Contacts: people and companies with their phones, e-mails, tags, addresses, links (C1, C10).

Every read goes through `access.contact_visible` inside the query, so a
private contact never appears to someone who may not see it, not even as a
403: to them it does not exist (404).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import access
from crm_core.access import Viewer, contact_visible, contact_writable
from crm_core.db import Database
from crm_core.models import (
    Address,
    Contact,
    ContactTag,
    ContactTerm,
    Email,
    Lead,
    Link,
    Phone,
    iso,
    utcnow,
)
from crm_core.phones import PhoneDirectory, find_owner, normalise
from crm_core.search import contact_search, term_rows, terms_of
from kernel.errors import Forbidden, NotFound, ValidationFailed

KINDS = ("person", "company")
SCALARS = ("kind", "first_name", "last_name", "company_name", "type", "currency",
           "manager_id", "visibility", "custom")
LISTS = ("phones", "emails", "tags", "addresses", "links")
ADDRESS_FIELDS = ("kind", "street", "city", "region", "postcode", "country")


# --- input: JSON in, checked column values out ----------------------------------------


def _text(value: Any, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field=field)
    text = value.strip()
    if len(text) > limit:
        raise ValidationFailed(f"{field} has at most {limit} characters", field=field)
    return text


def _scalar(key: str, value: Any) -> Any:
    if key == "kind":
        if value not in KINDS:
            raise ValidationFailed("kind must be person or company", field=key)
        return value
    if key == "visibility":
        if value not in access.VISIBILITIES:
            raise ValidationFailed("visibility must be private, read or write", field=key)
        return value
    if key == "currency":
        code = _text(value, key, 3).upper()
        if code and (len(code) != 3 or not code.isalpha()):
            raise ValidationFailed("currency is a three-letter ISO 4217 code", field=key)
        return code or None
    if key == "manager_id":
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValidationFailed("manager_id must be a user id", field=key)
        return value
    if key == "custom":
        if not isinstance(value, dict):
            raise ValidationFailed("custom must be an object", field=key)
        return value
    return _text(value, key, {"type": 32, "company_name": 200}.get(key, 100))


def _items(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ValidationFailed(f"{key} must be a list", field=key)
    return value


def _pair(item: Any, field: str, value_key: str) -> tuple[Any, str]:
    """`"x"` or `{value_key: "x", kind: "mobile"}` -> ("x", "mobile")."""
    if isinstance(item, str):
        return item, "work"
    if isinstance(item, dict):
        return item.get(value_key), _text(item.get("kind") or "work", f"{field}.kind", 16)
    raise ValidationFailed(f"{field} must be a string or an object", field=field)


def parse_phones(data: Mapping[str, Any], region: str) -> list[tuple[str, str]]:
    """[(E.164, kind)] in order, duplicates dropped; a bad one is named by its index."""
    out: list[tuple[str, str]] = []
    for index, item in enumerate(_items(data, "phones")):
        field = f"phones[{index}]"
        raw, kind = _pair(item, field, "number")
        number = normalise(_text(raw, f"{field}.number", 64), region, field=f"{field}.number")
        if number not in [n for n, _ in out]:
            out.append((number, kind))
    return out


def parse_emails(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for index, item in enumerate(_items(data, "emails")):
        field = f"emails[{index}]"
        raw, kind = _pair(item, field, "address")
        address = _text(raw, f"{field}.address", 254).lower()
        local, _, domain = address.partition("@")
        if not local or "." not in domain or " " in address:
            raise ValidationFailed(f"{address!r} is not an e-mail address",
                                   field=f"{field}.address")
        if address not in [a for a, _ in out]:
            out.append((address, kind))
    return out


def _tags(data: Mapping[str, Any]) -> list[str]:
    tags = [_text(t, f"tags[{i}]", 64).lower() for i, t in enumerate(_items(data, "tags"))]
    return sorted({t for t in tags if t})


def _addresses(data: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    for index, item in enumerate(_items(data, "addresses")):
        if not isinstance(item, dict):
            raise ValidationFailed("an address is an object", field=f"addresses[{index}]")
        out.append({k: _text(item.get(k), f"addresses[{index}].{k}", 200) for k in ADDRESS_FIELDS})
        out[-1]["country"] = out[-1]["country"][:2].upper()
        out[-1]["kind"] = out[-1]["kind"][:16] or "work"
    return out


def _links(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for index, item in enumerate(_items(data, "links")):
        url, kind = _pair(item, f"links[{index}]", "url")
        out.append((_text(url, f"links[{index}].url", 500), kind))
    return out


def _check_unknown(data: Mapping[str, Any]) -> None:
    for key in data:
        if key not in SCALARS and key not in LISTS:
            raise ValidationFailed(f"unknown field {key!r}", field=key)


def _check_named(contact: Contact) -> None:
    if contact.kind == "company" and not contact.company_name:
        raise ValidationFailed("a company needs a company_name", field="company_name")
    if contact.kind == "person" and not (contact.first_name or contact.last_name):
        raise ValidationFailed("a person needs a first_name or a last_name", field="first_name")


# --- output: the API's contact shape --------------------------------------------------


async def _children(session: AsyncSession, ids: Sequence[int]) -> dict[str, dict[int, list[Any]]]:
    """Every child row of these contacts, in five queries whatever the page size."""
    out: dict[str, dict[int, list[Any]]] = {k: defaultdict(list) for k in LISTS}
    if not ids:
        return out
    models: tuple[tuple[str, Any], ...] = (
        ("phones", Phone), ("emails", Email), ("addresses", Address), ("links", Link)
    )
    for key, model in models:
        rows = await session.scalars(
            select(model).where(model.contact_id.in_(ids)).order_by(model.position, model.id)
        )
        for row in rows:
            out[key][row.contact_id].append(_child_json(key, row))
    tags = await session.execute(
        select(ContactTag.contact_id, ContactTag.tag).where(ContactTag.contact_id.in_(ids))
        .order_by(ContactTag.tag)
    )
    for contact_id, tag in tags:
        out["tags"][contact_id].append(tag)
    return out


def _child_json(key: str, row: Any) -> Any:
    if key == "phones":
        return {"number": row.number, "kind": row.kind}
    if key == "emails":
        return {"address": row.address, "kind": row.kind}
    if key == "links":
        return {"url": row.url, "kind": row.kind}
    return {k: getattr(row, k) for k in ADDRESS_FIELDS}


def _json(contact: Contact, children: Mapping[str, Mapping[int, list[Any]]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": contact.id, "kind": contact.kind, "first_name": contact.first_name,
        "last_name": contact.last_name, "company_name": contact.company_name,
        "name": display_name(contact),
        "type": contact.type, "currency": contact.currency, "manager_id": contact.manager_id,
        "visibility": contact.visibility, "custom": contact.custom or {},
        "created_at": iso(contact.created_at), "updated_at": iso(contact.updated_at),
    }
    for key in LISTS:
        body[key] = list(children[key].get(contact.id, []))
    return body


def display_name(contact: Contact) -> str:
    """What a screen-pop or a list shows: the person's name, else the company."""
    if contact.kind == "company":
        return contact.company_name
    return " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.company_name


async def cards(session: AsyncSession, contacts: Sequence[Contact]) -> list[dict[str, Any]]:
    """Contacts in the API's shape (children loaded in bulk)."""
    children = await _children(session, [c.id for c in contacts])
    return [_json(c, children) for c in contacts]


# --- services ---------------------------------------------------------------------------


async def _replace_children(
    session: AsyncSession, contact: Contact, data: Mapping[str, Any], region: str
) -> None:
    """Rewrite the child lists `data` names; lists it does not name stay as they are."""
    contact_id = contact.id
    rows: list[Any] = []
    if {"first_name", "last_name", "company_name"} & set(data):
        await session.execute(delete(ContactTerm).where(ContactTerm.contact_id == contact_id))
        rows += term_rows(contact_id, terms_of(contact.first_name, contact.last_name,
                                               contact.company_name))
    if "phones" in data:
        await session.execute(delete(Phone).where(Phone.contact_id == contact_id))
        rows += [Phone(number=n, kind=k, position=i, contact_id=contact_id)
                 for i, (n, k) in enumerate(parse_phones(data, region))]
    if "emails" in data:
        await session.execute(delete(Email).where(Email.contact_id == contact_id))
        rows += [Email(address=a, kind=k, position=i, contact_id=contact_id)
                 for i, (a, k) in enumerate(parse_emails(data))]
    if "tags" in data:
        await session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id))
        rows += [ContactTag(contact_id=contact_id, tag=t) for t in _tags(data)]
    if "addresses" in data:
        await session.execute(delete(Address).where(Address.contact_id == contact_id))
        rows += [Address(contact_id=contact_id, position=i, **a)
                 for i, a in enumerate(_addresses(data))]
    if "links" in data:
        await session.execute(delete(Link).where(Link.contact_id == contact_id))
        rows += [Link(contact_id=contact_id, url=u, kind=k, position=i)
                 for i, (u, k) in enumerate(_links(data))]
    session.add_all(rows)


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ValidationFailed("manager_id is not a user", field="manager_id") from exc


async def create_contact(
    db: Database, viewer: Viewer, data: Mapping[str, Any], *, region: str
) -> dict[str, Any]:
    """A new contact; its manager is the creator unless `manager_id` says otherwise."""
    _check_unknown(data)
    values = {k: _scalar(k, data[k]) for k in SCALARS if k in data}
    values.setdefault("manager_id", viewer.user_id)
    now = utcnow()
    contact = Contact(**{"kind": "person", "visibility": "private", "type": "client",
                         "custom": {}, **values}, created_at=now, updated_at=now)
    _check_named(contact)
    async with db.transaction() as session:
        session.add(contact)
        await _flush(session)
        await _replace_children(session, contact, data, region)
        await session.flush()
        return (await cards(session, [contact]))[0]


async def _visible(session: AsyncSession, viewer: Viewer, contact_id: int) -> Contact:
    contact = await session.scalar(
        select(Contact).where(Contact.id == contact_id, contact_visible(viewer))
    )
    if contact is None:
        raise NotFound(f"no contact {contact_id}", field="id")
    return contact


async def _writable(session: AsyncSession, viewer: Viewer, contact_id: int) -> Contact:
    contact = await _visible(session, viewer, contact_id)
    allowed = await session.scalar(
        select(Contact.id).where(Contact.id == contact_id, contact_writable(viewer))
    )
    if allowed is None:
        raise Forbidden("this contact is shared read-only; only its manager may change it")
    return contact


async def get_contact(db: Database, viewer: Viewer, contact_id: int) -> dict[str, Any]:
    async with db.session() as session:
        return (await cards(session, [await _visible(session, viewer, contact_id)]))[0]


async def update_contact(
    db: Database, viewer: Viewer, contact_id: int, data: Mapping[str, Any], *, region: str
) -> dict[str, Any]:
    """PATCH: only the fields present change; lists present are replaced whole."""
    _check_unknown(data)
    async with db.transaction() as session:
        contact = await _writable(session, viewer, contact_id)
        sharing = {"manager_id", "visibility"} & set(data)
        if sharing and viewer.role != access.ADMIN and contact.manager_id != viewer.user_id:
            raise Forbidden("only the manager or an admin changes who sees a contact")
        for key in SCALARS:
            if key in data:
                setattr(contact, key, _scalar(key, data[key]))
        _check_named(contact)
        contact.updated_at = utcnow()
        await _replace_children(session, contact, data, region)
        await _flush(session)
        return (await cards(session, [contact]))[0]


async def delete_contact(db: Database, viewer: Viewer, contact_id: int) -> None:
    async with db.transaction() as session:
        contact = await _writable(session, viewer, contact_id)
        await session.delete(contact)


async def list_contacts(
    db: Database, viewer: Viewer, *, region: str, q: str | None = None,
    tag: str | None = None, mine: bool = False, cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """`{items, next}`, newest first, only what `viewer` may see."""
    query = select(Contact).where(contact_visible(viewer))
    if mine:
        query = query.where(Contact.manager_id == viewer.user_id)
    if tag:
        query = query.where(Contact.id.in_(
            select(ContactTag.contact_id).where(ContactTag.tag == tag.strip().lower())
        ))
    if q and q.strip():
        query = query.where(contact_search(q, region))
    return await access.newest_first(db, query, Contact.id, cursor=cursor, limit=limit,
                                     render=cards)


async def lookup_by_phone(
    db: Database, viewer: Viewer, phone: str, *, region: str,
    directory: PhoneDirectory | None = None,
) -> dict[str, Any]:
    """The contact or lead owning `phone`, with `record: contact|lead`; NotFound if none."""
    from crm_core.leads import lead_cards  # leads import contacts: resolve at call time

    fast = await directory.owner(phone, region, viewer) if directory is not None else None
    async with db.session() as session:
        owner = fast if directory is not None else await find_owner(session, phone, region, viewer)
        if owner is not None and owner.contact_id is not None:
            contact = await session.get_one(Contact, owner.contact_id)
            return {"record": "contact", **(await cards(session, [contact]))[0]}
        if owner is not None and owner.lead_id is not None:
            lead = await session.get_one(Lead, owner.lead_id)
            return {"record": "lead", **(await lead_cards(session, [lead]))[0]}
    raise NotFound(f"nobody has the number {phone}", field="phone")


__all__ = [
    "cards", "create_contact", "delete_contact", "display_name", "get_contact",
    "list_contacts", "lookup_by_phone", "parse_emails", "parse_phones",
]
