"""The CRM's tables (SQLAlchemy 2 declarative)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    extension: Mapped[str | None] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(200))
    working_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


# --- CRM: contacts and their channels (C1, C2) ----------------------------------------

def _owned_by(table: str) -> Any:
    """An indexed reference to the row this one belongs to, deleted with it."""
    return mapped_column(ForeignKey(f"{table}.id", ondelete="CASCADE"), index=True)


class Contact(Base):
    """A person or a company we talk to; `visibility` is the C2 sharing rule."""

    __tablename__ = "contacts"
    # "My clients", newest first: one index range, however many contacts others have.
    __table_args__ = (Index("ix_contacts_manager_id", "manager_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), default="person")
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    company_name: Mapped[str] = mapped_column(String(200), default="")
    type: Mapped[str] = mapped_column(String(32), default="client")
    currency: Mapped[str | None] = mapped_column(String(3))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    visibility: Mapped[str] = mapped_column(String(8), default="private")
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Lead(Base):
    """Someone who is not a client yet: a web form, an unknown caller, an import row (C4).

    `origin_key` (`unknown:+34912345678`) is UNIQUE so that two racing call
    events for one unknown number create one lead, not two.
    """

    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default="unhandled", index=True)
    responsible_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(8), default="manual")
    source_tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    origin_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    converted_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    handled_at: Mapped[datetime | None] = mapped_column()
    converted_at: Mapped[datetime | None] = mapped_column()


class Phone(Base):
    """One number of a contact or of a lead, always E.164, looked up by `number`."""

    __tablename__ = "phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="work")
    position: Mapped[int] = mapped_column(default=0)
    contact_id: Mapped[int | None] = _owned_by("contacts")
    lead_id: Mapped[int | None] = _owned_by("leads")


class Email(Base):
    """An e-mail address of a contact or a lead, stored lower-case for search."""

    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(254), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="work")
    position: Mapped[int] = mapped_column(default=0)
    contact_id: Mapped[int | None] = _owned_by("contacts")
    lead_id: Mapped[int | None] = _owned_by("leads")


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = _owned_by("contacts")
    kind: Mapped[str] = mapped_column(String(16), default="work")
    street: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    region: Mapped[str] = mapped_column(String(100), default="")
    postcode: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    position: Mapped[int] = mapped_column(default=0)


class Link(Base):
    """A web site or a social profile of a contact."""

    __tablename__ = "links"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = _owned_by("contacts")
    kind: Mapped[str] = mapped_column(String(16), default="web")
    url: Mapped[str] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(default=0)


class ContactTag(Base):
    """A tag on a contact: its own indexed table so `?tag=` is one index probe."""

    __tablename__ = "contact_tags"
    __table_args__ = (UniqueConstraint("contact_id", "tag", name="uq_contact_tags_contact_tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(64), index=True)


class ContactTerm(Base):
    """One search word of a contact's name or company (see `crm_core.search`).

    Binary ("C") order on PostgreSQL, as on SQLite, so a prefix is one index range.
    """

    __tablename__ = "contact_terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = _owned_by("contacts")
    term: Mapped[str] = mapped_column(
        String(64).with_variant(String(64, collation="C"), "postgresql"), index=True
    )


# --- the call log and notes (C7) ------------------------------------------------------


class Call(Base):
    """One call, written idempotently from the PBX events: `call_id` is the PBX's own id."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_started_at_id", "started_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(128), unique=True)
    direction: Mapped[str] = mapped_column(String(8))
    caller: Mapped[str] = mapped_column(String(64), default="")
    callee: Mapped[str] = mapped_column(String(64), default="")
    outside_number: Mapped[str | None] = mapped_column(String(20), index=True)
    agent: Mapped[str | None] = mapped_column(String(32))
    agent_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(12))
    disposition: Mapped[str | None] = mapped_column(String(12))
    started_at: Mapped[datetime] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    duration_s: Mapped[float | None] = mapped_column(Float)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    transcript_status: Mapped[str | None] = mapped_column(String(12))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True
    )
    queue: Mapped[str | None] = mapped_column(String(64))
    pbx: Mapped[str] = mapped_column(String(16), default="asterisk")
    cost: Mapped[float | None] = mapped_column(Float)


class Note(Base):
    """A free-text note on a contact, a lead or a call."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int | None] = _owned_by("contacts")
    lead_id: Mapped[int | None] = _owned_by("leads")
    call_id: Mapped[int | None] = _owned_by("calls")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


def utcnow() -> datetime:
    """Timestamps are written by us, not the server, so ordering is exact on SQLite too."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """A stored time as ISO 8601 UTC; SQLite hands timestamps back without their zone."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()
