"""Results that are hard to store: a child's NUL and invalid UTF-8 output, and a result the store
refuses outright. Real runtime, real children, SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shepherd.controllers.finalizer import MAX_STORE_ATTEMPTS
from shepherd.core.models import Agent, Trigger
from shepherd.core.status import ExecutionStatus as S
from shepherd.core.text import REPLACEMENT as R
from tests.controllers.conftest import Controllers
from tests.fixtures.runtimes import StartRuntime

# NUL, then two bytes that are not UTF-8, then a line the input decides.
DIRTY = ["sh", "-c", r"printf 'a\000b\n'; printf '\377\376 end\n'; cat"]


async def finalizing(c: Controllers, agent: Agent, *inputs: str) -> list[str]:
    """Submit, dispatch and wait for every child, then let the monitor see the exits."""
    ids = []
    for value in inputs:
        row = await c.db.executions.submit(agent=agent.name, input=value, trigger=Trigger.API,
                                           created_by="test")
        ids.append(row.id)
    assert sorted((await c.dispatcher.run_once()).dispatched) == sorted(ids)
    client = c.directory.client_for(agent)
    assert client is not None
    for execution_id in ids:
        await client.get(execution_id, wait_s=20)
    await c.monitor.sync_agent(agent, client)
    for execution_id in ids:
        assert (await c.db.executions.get(execution_id)).status is S.FINALIZING
    return ids


async def test_nul_and_invalid_utf8_output_is_stored_with_replacement_characters(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("dirty", DIRTY)
    agent = await c.db.agents.create(name="dirty", url=runtime.url, command=None)
    [execution_id] = await finalizing(c, agent, "tail line\n")
    report = await c.finalizer.run_once()
    assert report.finalized == [execution_id] and report.faulted == []
    done = await c.db.executions.get(execution_id)
    assert done.status is S.SUCCESS
    assert done.output_tail == f"a{R}b\n{R}{R} end\ntail line\n"


async def poison(conn: AsyncConnection) -> None:
    """A store that refuses any result whose output says 'poison' (a trigger: a real SQL fault)."""
    if conn.dialect.name == "sqlite":
        await conn.execute(text(
            "CREATE TRIGGER poison BEFORE UPDATE ON executions "
            "WHEN NEW.output_tail LIKE '%poison%' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned result'); END"
        ))
        return
    await conn.execute(text(
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
        "IF NEW.output_tail LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned result'; END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql"
    ))
    await conn.execute(text(
        "CREATE TRIGGER poison BEFORE UPDATE ON executions FOR EACH ROW EXECUTE FUNCTION poison()"
    ))


async def test_a_result_the_store_refuses_ends_failed_with_the_reason_and_never_blocks_the_rest(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("echo", ["cat"])
    agent = await c.db.agents.create(name="echo", url=runtime.url, command=None)
    bad, good = await finalizing(c, agent, "poison", "fine")
    async with c.db.engine.begin() as conn:
        await poison(conn)
    first = await c.finalizer.run_once()  # must not raise
    assert (first.finalized, first.faulted) == ([good], [bad])
    assert (await c.db.executions.get(good)).status is S.SUCCESS
    for _ in range(MAX_STORE_ATTEMPTS - 2):
        assert (await c.finalizer.run_once()).faulted == [bad]
    assert (await c.db.executions.get(bad)).status is S.FINALIZING  # a blip is retried
    last = await c.finalizer.run_once()
    assert (last.unstorable, last.finalized) == ([bad], [bad])
    done = await c.db.executions.get(bad)
    assert (done.status, done.error_class) == (S.FAILED, "unstorable_result")
    assert "poisoned result" in (done.error or "")
    assert (await c.finalizer.run_once()).finalized == []
    terminal = [e for e in await c.db.executions.events(bad) if e.to_status.is_terminal]
    assert len(terminal) == 1
