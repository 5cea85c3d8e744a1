"""The team: users with a role, a PBX extension, contact data and working hours (C11, C16).

Users are never deleted, only deactivated: calls, notes and leads keep naming
the agent who handled them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm_core.auth.passwords import hash_password, needs_rehash, verify_password
from crm_core.auth.principal import ROLES
from crm_core.auth.tokens import revoke_user_tokens
from crm_core.db import Database
from crm_core.models import User
from kernel.errors import Conflict, NotFound, ValidationFailed

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
EXTENSION_RE = re.compile(r"^[0-9]{2,16}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{1,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
EDITABLE = ("username", "name", "role", "extension", "email", "working_hours", "password")


def user_json(user: User) -> dict[str, Any]:
    """A user as the API shows it: never the password hash."""
    return {
        "id": user.id, "username": user.username, "name": user.name, "role": user.role,
        "extension": user.extension, "email": user.email,
        "working_hours": user.working_hours or {}, "active": user.active,
    }


def _checked(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields, validated one by one; the first bad one is named in the 422."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in EDITABLE:
            raise ValidationFailed(f"unknown field {key!r}", field=key)
        out[key] = _check(key, value)
    return out


def _check(key: str, value: Any) -> Any:
    if key == "username":
        if not isinstance(value, str) or not USERNAME_RE.fullmatch(value):
            raise ValidationFailed(
                "username: lowercase letters, digits, '.', '_' or '-', at most 64", field=key
            )
        return value
    if key == "role":
        if value not in ROLES:
            raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field=key)
        return value
    if key == "extension":
        if value is not None and (not isinstance(value, str) or not EXTENSION_RE.fullmatch(value)):
            raise ValidationFailed("extension: 2 to 16 digits, or null", field=key)
        return value
    if key == "email":
        if value is not None and (not isinstance(value, str) or not EMAIL_RE.fullmatch(value)):
            raise ValidationFailed("email: an address like ana@example.com, or null", field=key)
        return value
    if key == "name":
        if not isinstance(value, str) or len(value) > 200:
            raise ValidationFailed("name: text of at most 200 characters", field=key)
        return value
    if key == "working_hours":
        if not isinstance(value, dict):
            raise ValidationFailed("working_hours must be an object", field=key)
        return value
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ValidationFailed(
            f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password"
        )
    return value


async def add_user(
    db: Database, username: str, role: str, password: str,
    extension: str | None = None, name: str = "",
) -> User:
    """Create a user (the CLI's `centralita user add`)."""
    return await create_user(
        db, {"username": username, "role": role, "password": password,
             "extension": extension, "name": name},
    )


async def create_user(db: Database, fields: Mapping[str, Any]) -> User:
    data = _checked(fields)
    for required in ("username", "role", "password"):
        if required not in data:
            raise ValidationFailed(f"{required} is required", field=required)
    password = data.pop("password")
    user = User(
        username=data["username"], role=data["role"], name=data.get("name", ""),
        extension=data.get("extension"), email=data.get("email"),
        working_hours=data.get("working_hours", {}),
        password_hash=await hash_password(password), active=True,
    )
    async with db.transaction() as session:
        await _check_unique(session, data, None)
        session.add(user)
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict("that username or extension is taken", field="username") from None
    return user


async def _check_unique(session: Any, data: Mapping[str, Any], user_id: int | None) -> None:
    """A 409 naming the field, before the database's own constraint says it less clearly."""
    for key in ("username", "extension"):
        value = data.get(key)
        if value is None:
            continue
        query = select(User.id).where(getattr(User, key) == value)
        if user_id is not None:
            query = query.where(User.id != user_id)
        if await session.scalar(query) is not None:
            raise Conflict(f"{key} {value!r} is taken by another user", field=key)


async def get_user(db: Database, user_id: int) -> User:
    async with db.session() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


async def list_users(db: Database, *, include_inactive: bool = True) -> list[User]:
    query = select(User).order_by(User.username)
    if not include_inactive:
        query = query.where(User.active.is_(True))
    async with db.session() as session:
        return list((await session.scalars(query)).all())


async def update_user(db: Database, user_id: int, changes: Mapping[str, Any]) -> User:
    """Apply `changes`; a new role or password signs the user out everywhere."""
    data = _checked(changes)
    if "password" in data:
        # Hashed before the transaction: on SQLite a write lock held for the
        # ~0.2 s of argon2 would stall every other writer.
        data["password_hash"] = await hash_password(data.pop("password"))
    async with db.transaction() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        await _check_unique(session, data, user_id)
        sign_out = "password_hash" in data or data.get("role", user.role) != user.role
        for key, value in data.items():
            setattr(user, key, value)
    if sign_out:
        await revoke_user_tokens(db, user_id)
    return user


async def deactivate_user(db: Database, user_id: int) -> User:
    """Switch the user off and end every session and token they hold."""
    async with db.transaction() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        user.active = False
    await revoke_user_tokens(db, user_id)
    return user


async def verify_login(db: Database, username: str, password: str) -> User | None:
    """The active user whose password this is, or None (same cost either way)."""
    async with db.session() as session:
        user = await session.scalar(
            select(User).where(func.lower(User.username) == username.lower(),
                               User.active.is_(True))
        )
    ok = await verify_password(user.password_hash if user else None, password)
    if not ok or user is None:
        return None
    if needs_rehash(user.password_hash):
        stronger = await hash_password(password)
        async with db.transaction() as session:
            fresh = await session.get(User, user.id)
            if fresh is not None:
                fresh.password_hash = stronger
    return user
