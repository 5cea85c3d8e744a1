from sqlalchemy import inspect

from crm_core.db import Database


async def test_migrations_run_up_from_empty(database_url: str) -> None:
    db = Database(database_url)
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    await db.close()
    assert "users" in tables
    assert "alembic_version" in tables
