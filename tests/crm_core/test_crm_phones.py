"""E.164 normalisation of every written form, and the one-query lookup by phone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, text

from crm_core import leads
from crm_core.contacts import create_contact
from crm_core.db import Database
from crm_core.models import User
from crm_core.phones import (
    PhoneDirectory,
    PhoneOwner,
    find_owner,
    normalise,
    normalise_or_none,
)
from kernel.errors import ValidationFailed


@dataclass(frozen=True)
class Someone:
    user_id: int
    role: str


@pytest.mark.parametrize("written", [
    "912 34 56 78", "0034 912-345-678", "+34912345678", "(912) 345 678", "34912345678",
    "+34 912 34 56 78", "tel. 912.34.56.78",
])
def test_every_spanish_form_is_one_e164_number(written: str) -> None:
    assert normalise(written, "ES") == "+34912345678"


def test_the_region_reads_national_numbers_and_foreign_ones_keep_their_country() -> None:
    assert normalise("020 7946 0958", "GB") == "+442079460958"
    assert normalise("+44 20 7946 0958", "ES") == "+442079460958"
    assert normalise("442079460958", "ES") == "+442079460958"  # caller id without +
    assert normalise("(202) 555-0143", "US") == "+12025550143"


@pytest.mark.parametrize(("written", "why"), [
    ("", "a phone number is required"),
    ("12", "'12' is too short (read in region ES)"),
    ("hello", "'hello' is not a phone number (read in region ES)"),
    ("+999 123 456", "'+999 123 456' has no valid country code (read in region ES)"),
    ("912 34 56 789 12", "'912 34 56 789 12' is too long (read in region ES)"),
    ("9" * 65, "a phone number has at most 64 characters"),
])
def test_an_invalid_number_says_why_and_where(written: str, why: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalise(written, "ES", field="phones[0].number")
    assert (caught.value.message, caught.value.field) == (why, "phones[0].number")
    assert caught.value.to_json()["error"]["code"] == "invalid-input"


def test_extensions_and_anonymous_are_not_outside_numbers() -> None:
    assert [normalise_or_none(x, "ES") for x in ("1001", "anonymous", "", None)] == [None] * 4


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.transaction() as session:
        session.add(User(id=1, username="ana", role="agent", password_hash="x",
                         working_hours={}))
    yield database
    await database.close()


async def test_lookup_is_one_query_and_a_contact_wins_over_a_lead(db: Database) -> None:
    lead = await leads.create_lead(db, {"name": "L", "phones": ["912345678"]}, region="ES")
    ana = Someone(1, "agent")
    async with db.session() as session:
        assert await find_owner(session, "0034912345678", "ES", ana) == PhoneOwner(
            "+34912345678", None, lead["id"])
    contact = await create_contact(db, ana, {"first_name": "C", "phones": ["+34912345678"]},
                                   region="ES")
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.session() as session:
            owner = await find_owner(session, "(912) 345 678", "ES", ana)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert owner == PhoneOwner("+34912345678", contact["id"], None)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    async with db.session() as session:
        assert await find_owner(session, "+34 600 000 000", "ES", ana) is None


async def test_the_phone_lookup_uses_the_index(db: Database) -> None:
    async with db.session() as session:
        if db.engine.dialect.name == "sqlite":
            rows = await session.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT id FROM phones WHERE number = '+34912345678'"
                )
            )
            plan = " ".join(str(r[-1]) for r in rows)
            assert "USING INDEX ix_phones_number" in plan or "USING COVERING INDEX" in plan
        else:
            await session.execute(text("SET enable_seqscan = off"))
            rows = await session.execute(
                text(
                    "EXPLAIN SELECT id FROM phones WHERE number = '+34912345678'"
                )
            )
            assert "ix_phones_number" in " ".join(r[0] for r in rows)


@given(st.integers(min_value=600_000_000, max_value=699_999_999),
       st.sampled_from(["{a} {b} {c} {d}", "0034 {a}-{b}{c}-{d}", "+34{n}", "34{n}",
                        "({a}) {b}{c} {d}", "+34 {a} {b} {c} {d}"]))
def test_any_mobile_in_any_form_is_the_same_key(national: int, form: str) -> None:
    n = str(national)
    text = form.format(n=n, a=n[:3], b=n[3:5], c=n[5:7], d=n[7:])
    assert normalise(text, "ES") == f"+34{n}"


async def test_the_directory_answers_like_find_owner_and_sees_new_numbers(db: Database) -> None:
    ana, ben, admin = Someone(1, "agent"), Someone(2, "agent"), Someone(3, "admin")
    async with db.transaction() as session:
        session.add_all([User(id=2, username="ben", role="agent", password_hash="x",
                              working_hours={}),
                         User(id=3, username="root", role="admin", password_hash="x",
                              working_hours={})])
    directory = PhoneDirectory(db)
    try:
        assert await directory.owner("612 00 00 09", "ES", ana) is None
        private = await create_contact(db, ana, {"first_name": "P", "phones": ["612000009"]},
                                       region="ES")
        statements: list[str] = []

        def seen(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            answers = [await directory.owner("0034 612 00 00 09", "ES", who)
                       for who in (ana, ben, admin, None)]
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
        mine = PhoneOwner("+34612000009", private["id"], None)
        assert answers == [mine, None, mine, mine]
        # SQLite answers in the loop's thread, PostgreSQL through the engine.
        assert len(statements) == (0 if db.engine.dialect.name == "sqlite" else 4)
        with pytest.raises(ValidationFailed):
            await directory.owner("12", "ES", ana)
    finally:
        directory.close()
