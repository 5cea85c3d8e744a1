"""Bearer, session and widget tokens: random, stored only as SHA-256 hashes.

A stolen database dump (or a DEBUG log of SQL parameters) therefore yields no
usable token; the same holds for a session's CSRF token. Every kind is a
bearer token; sessions also travel in a cookie and carry a CSRF secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Database
from crm_core.models import Base, User

SESSION, API, WIDGET = "session", "api", "widget"
KINDS = (SESSION, API, WIDGET)
WIDGET_TTL = timedelta(minutes=15)

# A prefix per kind makes a leaked token recognisable (secret scanners, logs).
_PREFIX = {SESSION: "cts_", API: "cta_", WIDGET: "ctw_"}


class AuthToken(Base):
    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_secret: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]


@dataclass(frozen=True)
class IssuedToken:
    """A token as handed out once; only its hash is kept."""

    token: str
    kind: str
    csrf_token: str | None
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(session_token: str) -> str:
    """The CSRF token of a session, derived from it: any tab can ask for it again.

    Knowing it needs the session token, which lives in an HttpOnly cookie that
    no foreign page can read, so deriving it costs nothing in safety.
    """
    digest = hmac.new(session_token.encode(), b"centralita-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without a zone; we only ever store UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def issue_token(db: Database, user_id: int, kind: str, ttl: timedelta) -> IssuedToken:
    """A fresh token of `kind` for the user, valid for `ttl`."""
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    token = _PREFIX[kind] + secrets.token_urlsafe(32)
    csrf = csrf_for(token) if kind == SESSION else None
    created = now_utc()
    row = AuthToken(
        token_hash=token_hash(token), kind=kind, user_id=user_id,
        csrf_secret=token_hash(csrf) if csrf else None,
        expires_at=created + ttl, created_at=created,
    )
    async with db.transaction() as session:
        await session.execute(
            delete(AuthToken).where(AuthToken.user_id == user_id, AuthToken.expires_at < created)
        )
        session.add(row)
    return IssuedToken(token=token, kind=kind, csrf_token=csrf, expires_at=created + ttl)


async def resolve_token(db: Database, token: str) -> tuple[User, AuthToken] | None:
    """The active user and token row behind `token`, or None when unknown or expired."""
    if not token or len(token) > 200:
        return None
    query = (
        select(User, AuthToken)
        .join(AuthToken, AuthToken.user_id == User.id)
        .where(AuthToken.token_hash == token_hash(token), User.active.is_(True))
    )
    async with db.session() as session:
        found = (await session.execute(query)).first()
    if found is None:
        return None
    user, row = found
    if _aware(row.expires_at) <= now_utc():
        return None
    return user, row


async def revoke_token(db: Database, token: str) -> None:
    async with db.transaction() as session:
        await session.execute(delete(AuthToken).where(AuthToken.token_hash == token_hash(token)))


async def revoke_user_tokens(db: Database, user_id: int) -> None:
    """Sign the user out everywhere (deactivation, role change)."""
    async with db.transaction() as session:
        await session.execute(delete(AuthToken).where(AuthToken.user_id == user_id))


async def list_user_tokens(db: Database, user_id: int) -> list[AuthToken]:
    """The user's live tokens, newest first (their hashes only: the tokens are gone)."""
    async with db.session() as session:
        rows = await session.scalars(
            select(AuthToken).where(AuthToken.user_id == user_id)
            .order_by(AuthToken.created_at.desc(), AuthToken.id.desc())
        )
        return [row for row in rows if _aware(row.expires_at) > now_utc()]


async def revoke_user_token(db: Database, user_id: int, token_id: int) -> bool:
    """Revoke one of the user's tokens by id; False when they hold no such token."""
    async with db.transaction() as session:
        done = await session.execute(
            delete(AuthToken).where(AuthToken.id == token_id, AuthToken.user_id == user_id)
            .returning(AuthToken.id)
        )
        return done.first() is not None
