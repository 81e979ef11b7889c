"""The finalizer's completion steps end within their budgets: a runtime slow to hand over a
result, and a store that keeps the row locked, cost a pass, never the lease held forever; the
next pass finalizes once the fault is gone. Real runtime, real children, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from shepherd.controllers.finalizer import Finalizer, FinalizeReport
from shepherd.core.finalization import CompletionBudget
from shepherd.core.ids import AgentName
from shepherd.core.models import Execution, Trigger
from shepherd.core.status import ExecutionStatus as S
from shepherd.errors import SqlStoreError
from shepherd.stores.sql.tables import executions
from tests.controllers.conftest import Controllers
from tests.fixtures.runtimes import StartRuntime
from tests.fixtures.servers import dropping_proxy

QUICK = ["sh", "-c", "cat >/dev/null; echo fine"]


def budgeted(c: Controllers, **budget: float) -> Finalizer:
    return Finalizer(c.db, c.redis, c.directory, c.clock, owner="budgeted",
                     budget=CompletionBudget(**budget))


async def finalizing(c: Controllers, name: str, url: str) -> Execution:
    await c.db.agents.create(name=AgentName(name), url=url, command=None)
    row = await c.db.executions.submit(agent=AgentName(name), input="", trigger=Trigger.API,
                                       created_by="t")
    await c.dispatcher.run_once()
    agent = await c.db.agents.get(name)
    client = c.directory.client_for(agent)
    assert client is not None
    await client.get(row.id, wait_s=10)
    await c.monitor.sync_agent(agent, client)
    return await c.db.executions.get(row.id)


async def test_a_result_read_over_its_budget_is_abandoned_for_the_pass_and_its_lease_given_back(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("slowread", QUICK)
    async with dropping_proxy(int(runtime.url.rsplit(":", 1)[1])) as proxy:
        row = await finalizing(c, "slowread", proxy.url)
        proxy.hold("GET", "/v1/executions/", times=1)
        finalizer = budgeted(c, fetch_s=0.2)
        assert (await finalizer.run_once()).deferred == [row.id]
        assert await c.redis.leases.owner(c.redis.keys.finalize_lease(row.id)) is None
        assert (await finalizer.run_once()).finalized == [row.id]
        proxy.release()
    assert (await c.db.executions.get(row.id)).status is S.SUCCESS


async def test_a_store_over_its_budget_is_a_store_fault_and_the_next_pass_stores_the_result(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("locked", QUICK)
    row = await finalizing(c, "locked", runtime.url)
    agent = await c.db.agents.get("locked")
    finalizer = budgeted(c, store_s=0.3)
    # On SQLite a writer waiting for the lock cannot be interrupted: the budget ends the step
    # when the driver returns (at the latest SQLite's 15 s busy timeout, below the default
    # budget); on PostgreSQL it ends the wait itself.
    async with row_locked(c, row.id, hold_s=1.0):
        with pytest.raises(SqlStoreError, match=r"did not finish within its budget \(0.3 s\)"):
            await finalizer.finalize(row, FinalizeReport(), agent)
    assert await c.redis.leases.owner(c.redis.keys.finalize_lease(row.id)) is None
    assert (await finalizer.run_once()).finalized == [row.id]
    assert (await c.db.executions.get(row.id)).status is S.SUCCESS
    assert len(await c.db.executions.list()) == 1  # the store still answers as before


@asynccontextmanager
async def row_locked(c: Controllers, execution_id: str, hold_s: float) -> AsyncIterator[None]:
    """Another writer holds the row for ``hold_s`` (PostgreSQL: a row lock; SQLite: the
    database's write lock, which every transaction of the store takes, reads included)."""
    engine = create_async_engine(c.db.engine.url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.execute(select(executions.c.id)
                                   .where(executions.c.id == execution_id).with_for_update())

            async def release() -> None:
                await asyncio.sleep(hold_s)
                await conn.execute(text("ROLLBACK"))

            releasing = asyncio.create_task(release())
            try:
                yield
            finally:
                await releasing
    finally:
        await engine.dispose()
