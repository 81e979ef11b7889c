"""A pooled PostgreSQL connection the server closed while it sat idle is replaced, not used:
it is pinged before use once idle ``PING_IDLE_S`` (a real server, its backends terminated)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import shepherd.stores.sql.engine as engine_module
from shepherd.core.clock import ManualClock
from shepherd.errors import StoreError
from shepherd.stores.sql.database import open_database
from tests.fixtures.sql import reset_postgres

pytestmark = pytest.mark.postgres


async def _terminate_others(url: str) -> int:
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            return len((await conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).all())
    finally:
        await admin.dispose()


@pytest.mark.parametrize("ping_idle_s", [0.0, 3600.0])
async def test_a_connection_closed_while_idle_is_replaced_only_once_it_counts_as_idle(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch, ping_idle_s: float,
) -> None:
    await reset_postgres(postgres_database)
    monkeypatch.setattr(engine_module, "PING_IDLE_S", ping_idle_s)
    db = await open_database(postgres_database, ManualClock())
    try:
        assert await db.agents.list() == []
        assert await _terminate_others(postgres_database) >= 1
        if ping_idle_s == 0:
            assert await db.agents.list() == []  # pinged, found gone, replaced
        else:
            # Not idle long enough to be pinged: the first use fails (a store error the
            # callers retry) and the pool starts over, so the next one works.
            with pytest.raises(StoreError):
                await db.agents.list()
            assert await db.agents.list() == []
    finally:
        await db.close()
