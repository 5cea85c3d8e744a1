"""Migration 0002 builds exactly the tables the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from crm_core.db import create_engine
from crm_core.models import Base

CRM_TABLES = {"contacts", "phones", "emails", "addresses", "links", "contact_tags",
              "contact_terms", "leads", "calls", "notes"}


def _table_of(diff: Any) -> str | None:
    """The table an autogenerate difference is about (they come in several shapes)."""
    first = diff[0] if isinstance(diff, list) else diff
    for part in first[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if name in CRM_TABLES:
            return str(name)
    if isinstance(first, tuple) and len(first) > 2 and isinstance(first[2], str):
        return first[2]
    return None


async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)

    def differences(conn: Connection) -> list[Any]:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        return [d for d in diffs if _table_of(d) in CRM_TABLES]

    def indexes(conn: Connection) -> dict[str, list[list[str | None]]]:
        found = inspect(conn)
        # PostgreSQL also lists the indexes behind UNIQUE constraints; those are not ours.
        return {t: sorted(ix["column_names"] for ix in found.get_indexes(t)
                          if "duplicates_constraint" not in ix)
                for t in ("phones", "contact_tags", "contact_terms", "calls")}

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []
        assert await conn.run_sync(indexes) == {
            "phones": [["contact_id"], ["lead_id"], ["number"]],
            "contact_tags": [["tag"]],
            "contact_terms": [["contact_id"], ["term"]],
            "calls": [["agent_user_id"], ["contact_id"], ["lead_id"], ["outside_number"],
                      ["started_at", "id"]],
        }
    await engine.dispose()
