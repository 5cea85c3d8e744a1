"""Web-form keys (C9): what lets a form on a public website post leads without signing in.

A form key is not a secret (it sits in the page's HTML); it names the form,
lets an administrator switch one form off, and keys the rate limit. It grants
nothing else: it is not a token and `principal_from_token` never accepts it.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.auth.tokens import now_utc
from crm_core.db import Database
from crm_core.models import Base
from kernel.errors import NotFound


class LeadForm(Base):
    __tablename__ = "lead_forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


def form_json(form: LeadForm) -> dict[str, object]:
    return {"id": form.id, "name": form.name, "key": form.key, "owner_id": form.owner_id,
            "active": form.active}


async def create_form(db: Database, name: str, owner_id: int) -> LeadForm:
    """A new form key; leads it brings show `owner_id` as the author of their message note."""
    form = LeadForm(name=name, key="ctf_" + secrets.token_urlsafe(24), owner_id=owner_id,
                    active=True, created_at=now_utc())
    async with db.transaction() as session:
        session.add(form)
    return form


async def list_forms(db: Database) -> list[LeadForm]:
    async with db.session() as session:
        return list(await session.scalars(select(LeadForm).order_by(LeadForm.id)))


async def deactivate_form(db: Database, form_id: int) -> LeadForm:
    async with db.transaction() as session:
        form = await session.get(LeadForm, form_id)
        if form is None:
            raise NotFound(f"no form {form_id}", field="id")
        form.active = False
    return form


async def form_by_key(db: Database, key: str) -> LeadForm | None:
    """The active form with this key, or None."""
    if not key or len(key) > 64:
        return None
    async with db.session() as session:
        form: LeadForm | None = await session.scalar(
            select(LeadForm).where(LeadForm.key == key, LeadForm.active.is_(True))
        )
    return form
