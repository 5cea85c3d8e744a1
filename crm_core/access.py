"""Who may see and change what, as SQL conditions applied inside every query (C2, R5).

Rules (the same for every list, lookup, search and timeline):
- an admin sees and changes everything;
- a `private` contact exists only for its manager (and admins);
- `read`: everyone reads it, only its manager (or an admin) changes it;
- `write`: everyone reads and changes it.
Supervisors are agents as far as contacts go: supervising calls is not a
reason to read a colleague's private clients. Leads are the team's shared
work queue (anyone may claim an unhandled one), so every user sees them.
Calls: supervisors and admins see every call; an agent sees the calls they
handled, calls of leads and calls of contacts they may see.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    and_,
    bindparam,
    exists,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import Select

from crm_core.db import Database
from crm_core.models import Call, Contact
from kernel.errors import ValidationFailed

ADMIN = "admin"
SUPERVISOR = "supervisor"
VISIBILITIES = ("private", "read", "write")
_BAD_CURSOR = "the cursor is not one this server gave out"


class Viewer(Protocol):
    """Whoever asks: `crm_core.auth.Principal` satisfies it."""

    @property
    def user_id(self) -> int: ...

    @property
    def role(self) -> str: ...


def _readable_by(user: int | BindParameter[int]) -> ColumnElement[bool]:
    return or_(Contact.visibility != "private", Contact.manager_id == user)


def contact_visible(viewer: Viewer) -> ColumnElement[bool]:
    """The WHERE condition for contacts `viewer` may read."""
    if viewer.role == ADMIN:
        return true()
    return _readable_by(viewer.user_id)


READABLE_BY_VIEWER_ID = _readable_by(bindparam("viewer_id", type_=Integer))
"""`contact_visible` for a non-admin, prebuilt for hot statements: bind `viewer_id`."""


def contact_writable(viewer: Viewer) -> ColumnElement[bool]:
    """The WHERE condition for contacts `viewer` may change or delete."""
    if viewer.role == ADMIN:
        return true()
    return or_(Contact.visibility == "write", Contact.manager_id == viewer.user_id)


def call_visible(viewer: Viewer) -> ColumnElement[bool]:
    """The WHERE condition for calls `viewer` may see in the call log."""
    if viewer.role in (ADMIN, SUPERVISOR):
        return true()
    own_contact = exists(
        select(Contact.id).where(and_(Contact.id == Call.contact_id, contact_visible(viewer)))
    )
    return or_(
        Call.agent_user_id == viewer.user_id,
        Call.lead_id.is_not(None) & Call.contact_id.is_(None),
        own_contact,
    )


# --- cursors: opaque to clients, keyset pagination for us ---------------------------


def encode_cursor(key: list[Any]) -> str:
    """An opaque `next` token from the sort key of the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *shape: type) -> list[Any] | None:
    """The sort key a `next` token carries, checked against `shape` (e.g. `str, int`).

    A tampered or foreign token is a 422 on `cursor`, never a 500.
    """
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(_BAD_CURSOR, field="cursor") from exc
    if not isinstance(key, list) or len(key) != len(shape) or not all(
        type(value) is kind for value, kind in zip(key, shape, strict=True)
    ):
        raise ValidationFailed(_BAD_CURSOR, field="cursor")
    return key


async def newest_first(
    db: Database, query: Select[Any], key: InstrumentedAttribute[int], *,
    cursor: str | None, limit: int | None,
    render: Callable[[AsyncSession, list[Any]], Awaitable[list[dict[str, Any]]]],
) -> dict[str, Any]:
    """One page `{items, next}` of `query`, newest (highest `key`) first, keyset-paged."""
    size = page_limit(limit)
    after = decode_cursor(cursor, int)
    if after is not None:
        query = query.where(key < int(after[0]))
    async with db.session() as session:
        found = list(await session.scalars(query.order_by(key.desc()).limit(size + 1)))
        items = await render(session, found[:size])
    last = getattr(found[size - 1], key.key) if len(found) > size else None
    return {"items": items, "next": encode_cursor([last]) if last is not None else None}


def page_limit(limit: int | None, default: int = 50, maximum: int = 200) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise ValidationFailed(f"limit must be between 1 and {maximum}", field="limit")
    return limit
