"""Migrations create exactly the schema, and the store keeps one identity."""

from __future__ import annotations

from sqlalchemy import inspect

from shepherd.core.clock import ManualClock
from shepherd.stores.sql.database import Database, open_database
from shepherd.stores.sql.engine import migrate

TABLES = {
    "alembic_version", "meta", "agents", "agent_tags", "schedules", "executions",
    "execution_events", "api_tokens", "outbox", "outbox_destinations", "alert_states",
    "canary_violations", "fleet_events",
}


async def test_migrations_create_exactly_the_expected_tables(db: Database) -> None:
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert names == TABLES


async def test_migrating_twice_changes_nothing(db: Database) -> None:
    await migrate(db.engine)
    await migrate(db.engine)


async def test_the_instance_id_is_stable_across_reopen(
    db: Database, sql_url: str, clock: ManualClock
) -> None:
    again = await open_database(sql_url, clock)
    try:
        assert again.instance_id == db.instance_id
        assert len(db.instance_id) == 16
    finally:
        await again.close()


async def test_ping_answers(db: Database) -> None:
    await db.ping()


async def test_the_migrated_schema_matches_tables_py(db: Database) -> None:
    """Every table, column and index of ``tables.py`` exists after migrating: a change to
    ``tables.py`` without a revision fails here."""
    from shepherd.stores.sql.tables import metadata

    def read(sync):  # type: ignore[no-untyped-def]
        found = inspect(sync)
        return {
            name: (
                {c["name"] for c in found.get_columns(name)},
                {i["name"] for i in found.get_indexes(name)},
            )
            for name in found.get_table_names()
        }

    async with db.engine.connect() as conn:
        migrated = await conn.run_sync(read)
    for table in metadata.sorted_tables:
        columns, indexes = migrated[table.name]
        assert columns == {c.name for c in table.columns}, table.name
        assert {i.name for i in table.indexes} <= indexes, table.name
