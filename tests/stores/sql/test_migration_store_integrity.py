"""Revision store_integrity on a store that already has history: executions older than their
agent's current incarnation are marked as an earlier generation's."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from shepherd.stores.sql.engine import MIGRATIONS_DIR, create_sql_engine, migrate


def upgrade_to(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_history_of_a_name_taken_again_before_the_upgrade_goes_to_generation_0(
    sql_url: str,
) -> None:
    engine = await create_sql_engine(sql_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to, "0001")
            # "a" was deleted and re-created at 500; "b" was never re-created.
            for name, created in (("a", 500), ("b", 100)):
                await conn.execute(text(
                    "INSERT INTO agents (name, success_exit_codes, created_at_ms) "
                    f"VALUES ('{name}', '[0]', {created})"))
            for eid, agent, created in (("old-a", "a", 200), ("new-a", "a", 600),
                                        ("only-b", "b", 300)):
                await conn.execute(text(
                    "INSERT INTO executions (id, agent, trigger, input, status, attempt, "
                    "max_attempts, timeout_s, created_at_ms) "
                    f"VALUES ('{eid}', '{agent}', 'api', '', 'success', 1, 1, 60, {created})"))
        await migrate(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT id, agent_generation FROM executions ORDER BY id"))).all()
            generations = (await conn.execute(text(
                "SELECT name, generation FROM agents ORDER BY name"))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("new-a", 1), ("old-a", 0), ("only-b", 1)]
    assert [tuple(g) for g in generations] == [("a", 1), ("b", 1)]
