"""Phone numbers: every written form becomes E.164, and lookup is one indexed probe.

Agents type `912 34 56 78`, imports carry `0034 912-345-678`, Asterisk hands
us `34912345678` as a caller id without its `+`. Storing and querying only
E.164 makes all of them the same key of `phones.number`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult
from sqlalchemy import Select, String, bindparam, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.access import ADMIN, READABLE_BY_VIEWER_ID, Viewer
from crm_core.db import Database
from crm_core.models import Contact, Phone
from kernel.errors import ValidationFailed

_WHY = {
    ValidationResult.INVALID_COUNTRY_CODE: "has no valid country code",
    ValidationResult.TOO_SHORT: "is too short",
    ValidationResult.TOO_LONG: "is too long",
    ValidationResult.INVALID_LENGTH: "has a length no number in that region has",
}
_MAX_INPUT = 64


_PARSE_WHY = {
    NumberParseException.INVALID_COUNTRY_CODE: "has no valid country code",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | str:
    """The parsed number, or why it cannot be parsed."""
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return _PARSE_WHY.get(exc.error_type, "is not a phone number")


def _reason(number: phonenumbers.PhoneNumber | str, text: str) -> str:
    if isinstance(number, str):
        return f"{text!r} {number}"
    why = _WHY.get(phonenumbers.is_possible_number_with_reason(number))
    if why is not None:
        return f"{text!r} {why}"
    return f"{text!r} is not a number in use in any numbering plan"


def normalise(text: str, region: str, *, field: str = "phone") -> str:
    """`text` as E.164, read in `region` unless it says its country; else ValidationFailed.

    A bare digit string that is not a valid national number is retried with a
    `+` in front: PBXs often pass international caller ids without it.
    """
    raw = (text or "").strip()
    if not raw:
        raise ValidationFailed("a phone number is required", field=field)
    if len(raw) > _MAX_INPUT:
        raise ValidationFailed(f"a phone number has at most {_MAX_INPUT} characters", field=field)
    first = _parse(raw, region)
    if not isinstance(first, str) and phonenumbers.is_valid_number(first):
        return phonenumbers.format_number(first, PhoneNumberFormat.E164)
    if raw[0] != "+" and raw.isdigit():
        second = _parse("+" + raw, None)
        if not isinstance(second, str) and phonenumbers.is_valid_number(second):
            return phonenumbers.format_number(second, PhoneNumberFormat.E164)
    raise ValidationFailed(_reason(first, raw) + f" (read in region {region})", field=field)


def normalise_or_none(text: str | None, region: str) -> str | None:
    """E.164, or None for what is not an outside number (an extension, `anonymous`)."""
    if not text:
        return None
    try:
        return normalise(text, region)
    except ValidationFailed:
        return None


@dataclass(frozen=True, slots=True)
class PhoneOwner:
    """Who a number belongs to: a contact wins over a lead when both have it."""

    number: str
    contact_id: int | None
    lead_id: int | None


async def find_owner(
    session: AsyncSession, number: str, region: str, viewer: Viewer | None = None
) -> PhoneOwner | None:
    """Normalise `number` and find its owner in ONE indexed equality query.

    With a `viewer`, contacts they may not see are invisible here too (a lead
    is visible to the whole team). Without one (the PBX's screen-pop path)
    every owner counts: the card is then filtered per agent by the caller.
    """
    e164 = normalise(number, region)
    return await find_owner_e164(session, e164, viewer)


# Built once: a screen-pop or lookup pays only for binding two values, not for building SQL.
_OWNER = (
    select(Phone.contact_id, Phone.lead_id)
    .outerjoin(Contact, Contact.id == Phone.contact_id)
    .where(Phone.number == bindparam("number", type_=String))
    .order_by(Phone.contact_id.is_(None), Phone.id)
    .limit(1)
)
_OWNER_SEEN_BY = _OWNER.where(Phone.contact_id.is_(None) | READABLE_BY_VIEWER_ID)


def owner_statement(
    e164: str, viewer: Viewer | None
) -> tuple[Select[int | None, int | None], dict[str, object]]:
    """The prebuilt owner query for `viewer` (the access rule included) and its values."""
    if viewer is None or viewer.role == ADMIN:
        return _OWNER, {"number": e164}
    return _OWNER_SEEN_BY, {"number": e164, "viewer_id": viewer.user_id}


async def find_owner_e164(
    session: AsyncSession, e164: str, viewer: Viewer | None = None
) -> PhoneOwner | None:
    """`find_owner` for a number that is already E.164."""
    query, params = owner_statement(e164, viewer)
    # Core execution on the session's connection: the ORM adds nothing to a two-column row.
    connection = await session.connection()
    row = (await connection.execute(query, params)).first()
    if row is None:
        return None
    return PhoneOwner(e164, row.contact_id, row.lead_id)


class PhoneDirectory:
    """`find_owner` for the hot path: the screen-pop and the lookup route.

    On a SQLite file the lookup runs on a read-only sqlite3 connection in the
    event loop's own thread: the indexed probe takes tens of microseconds,
    while handing it to aiosqlite's worker thread and back costs ten times
    that and, on a busy machine, milliseconds at the tail. WAL readers never
    wait for the writer; if SQLite still says busy (a checkpoint, a recovery)
    we give up after `BUSY_MS` and take the async path. PostgreSQL and
    in-memory databases always take the async path.
    """

    BUSY_MS = 20

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: sqlite3.Connection | None = None
        url = make_url(db.url)
        path = url.database if url.get_backend_name() == "sqlite" else None
        if path and path != ":memory:" and not path.startswith("file:"):
            try:
                self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                             check_same_thread=False)
            except sqlite3.OperationalError:  # no file yet: the async path reports it
                return
            self._conn.execute(f"PRAGMA busy_timeout={self.BUSY_MS}")
            dialect = sqlite_dialect.dialect()
            self._sql = {query: query.compile(dialect=dialect)
                         for query in (_OWNER, _OWNER_SEEN_BY)}

    async def owner(
        self, number: str, region: str, viewer: Viewer | None = None
    ) -> PhoneOwner | None:
        """Like `find_owner`: normalise, then one indexed query, access rule included."""
        return await self.owner_e164(normalise(number, region), viewer)

    async def owner_e164(self, e164: str, viewer: Viewer | None = None) -> PhoneOwner | None:
        """`owner` for a number that is already E.164."""
        if self._conn is not None:
            query, params = owner_statement(e164, viewer)
            compiled = self._sql[query]
            values = compiled.construct_params(params)
            order = compiled.positiontup or ()
            try:
                row = self._conn.execute(str(compiled), [values[k] for k in order]).fetchone()
            except sqlite3.OperationalError:
                pass  # busy: the async path below waits its turn off the loop
            else:
                return None if row is None else PhoneOwner(e164, row[0], row[1])
        async with self.db.session() as session:
            return await find_owner_e164(session, e164, viewer)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
