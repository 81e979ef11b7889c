"""Agents, schedules, executions and tokens through their repositories, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from shepherd.core.clock import ManualClock
from shepherd.core.cron import Firing
from shepherd.core.ids import AgentName, ExecutionId, ScheduleId
from shepherd.core.models import OverlapPolicy, Trigger
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.errors import (
    AgentNotFound,
    AlreadyExists,
    Conflict,
    ExecutionNotFound,
    NotFound,
    ScheduleNotFound,
)
from shepherd.stores.sql.database import Database, open_database
from shepherd.stores.sql.tables import agent_tags, api_tokens, executions, schedules

S = ExecutionStatus
A = AgentName("a")


async def agent(db: Database, name: str = "a", **fields: object) -> None:
    await db.agents.create(name=AgentName(name), url="http://127.0.0.1:1", command=None,
                           **fields)


async def submit(db: Database, name: str = "a", **kw: object) -> object:
    return await db.executions.submit(agent=AgentName(name), input="in", trigger=Trigger.API,
                                      created_by="t", **kw)


async def test_agents_have_defaults_and_tags(db: Database, clock: ManualClock) -> None:
    await db.agents.create(name=A, url=None, command=("sh", "-c", "cat"), tags=("x", "b"))
    got = await db.agents.get(A)
    assert (got.max_parallel_tasks, got.execution_timeout_s, got.max_backlog_depth) == (3, 900, 50)
    assert got.command == ("sh", "-c", "cat") and got.tags == ("b", "x")
    assert got.enabled and got.success_exit_codes == (0,)
    assert got.created_at_ms == clock.now_ms()


async def test_agents_update_list_and_conflict(db: Database) -> None:
    await agent(db)
    with pytest.raises(AlreadyExists):
        await agent(db)
    updated = await db.agents.update(A, max_parallel_tasks=5, tags=("t",), enabled=False)
    assert (updated.max_parallel_tasks, updated.tags, updated.enabled) == (5, ("t",), False)
    assert [a.name for a in await db.agents.list()] == ["a"]
    with pytest.raises(AgentNotFound):
        await db.agents.get("nope")
    with pytest.raises(AgentNotFound):
        await db.agents.update("nope", enabled=True)


async def test_recent_agents_show_this_process_changes_at_once_and_others_within_their_age(
    db: Database, sql_url: str, clock: ManualClock
) -> None:
    await agent(db)
    await agent(db, "b")
    assert [a.name for a in await db.agents.recent(60)] == ["a", "b"]
    await db.agents.update(A, max_parallel_tasks=7)  # through this repository: seen at once
    assert (await db.agents.recent_one("a", 60)).max_parallel_tasks == 7
    await db.agents.delete("b", actor="t", now_ms=clock.now_ms())
    assert [a.name for a in await db.agents.recent(60)] == ["a"]
    with pytest.raises(AgentNotFound):
        await db.agents.recent_one("b", 60)
    other = await open_database(sql_url, clock)  # another replica on the same stores
    try:
        await other.agents.update(A, enabled=False)
        assert (await db.agents.recent_one("a", 60)).enabled  # not yet: read under 60 s ago
        await asyncio.sleep(0.05)
        assert not (await db.agents.recent_one("a", 0.05)).enabled  # past its age: read again
        await agent(other, "c")
        assert (await db.agents.recent_one("c", 60)).name == "c"  # one it does not list: read
    finally:
        await other.close()


async def test_deleting_an_agent_leaves_no_row_referencing_it(db: Database) -> None:
    await agent(db, tags=("t",))
    await db.schedules.create(agent=A, cron="* * * * *")
    queued = [await submit(db) for _ in range(2)]
    await db.tokens.create(name="scoped", role="viewer", agent=A, token_hash="h1", now_ms=1)
    report = await db.agents.delete(A, actor="admin", now_ms=10)
    assert sorted(report.cancelled) == sorted(r.id for r in queued)  # type: ignore[attr-defined]
    assert report.schedules_deleted == 1 and report.tokens_deleted == 1
    async with db.engine.connect() as conn:
        for table, column in [(schedules, schedules.c.agent), (agent_tags, agent_tags.c.agent),
                              (api_tokens, api_tokens.c.agent_scope)]:
            count = await conn.scalar(select(func.count()).select_from(table)
                                      .where(column == "a"))
            assert count == 0, table.name
        live = await conn.scalar(select(func.count()).select_from(executions).where(
            executions.c.agent == "a", executions.c.status.in_(["queued", "running"])))
        assert live == 0
    with pytest.raises(AgentNotFound):
        await db.agents.get(A)
    assert await db.agents.list() == []
    event = (await db.executions.events(queued[0].id))[-1]  # type: ignore[attr-defined]
    assert (event.to_status, event.cause) == (S.CANCELLED, Cause.AGENT_DELETED)


async def test_an_agent_with_running_work_cannot_be_deleted(db: Database) -> None:
    await agent(db)
    row = await submit(db)
    await db.executions.claim_queued(row.id, now_ms=1, actor="d")  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="running"):
        await db.agents.delete(A, actor="admin", now_ms=2)
    assert (await db.agents.get(A)).name == "a"


async def test_a_deleted_agent_name_can_be_used_again(db: Database) -> None:
    await agent(db, max_parallel_tasks=7)
    await db.agents.delete(A, actor="admin", now_ms=2)
    await agent(db)
    assert (await db.agents.get(A)).max_parallel_tasks == 3


async def test_an_agent_recreated_under_a_deleted_name_does_not_inherit_its_history(
    db: Database,
) -> None:
    await agent(db)
    old = await db.executions.submit(agent=A, input="old", trigger=Trigger.API, created_by="me")
    await db.agents.delete(A, actor="admin", now_ms=2)
    await agent(db)
    again = await db.agents.get(A)
    new = await db.executions.submit(agent=A, input="new", trigger=Trigger.API, created_by="me")
    assert again.generation == 2
    assert (old.agent_generation, new.agent_generation) == (1, 2)
    assert [e.id for e in await db.executions.list(agent=A)] == [new.id]
    assert [e.id for e in await db.executions.list(agent=A, agent_generation=1)] == [old.id]
    assert (await db.executions.get(old.id)).input == "old"  # still readable by id
    assert {e.id for e in await db.executions.list()} == {old.id, new.id}


async def test_submit_resolves_the_timeout_and_records_the_first_event(db: Database) -> None:
    await agent(db, execution_timeout_s=60)
    row = await db.executions.submit(agent=A, input="x", trigger=Trigger.MANUAL, created_by="me")
    assert (row.status, row.timeout_s, row.attempt, row.queued_at_ms) == (S.QUEUED, 60, 1,
                                                                          row.created_at_ms)
    explicit = await db.executions.submit(agent=A, input="x", trigger=Trigger.API,
                                          created_by="me", timeout_s=5)
    assert explicit.timeout_s == 5
    sched = await db.schedules.create(agent=A, cron="* * * * *", timeout_s=30)
    from_schedule = await db.executions.submit(agent=A, input="x", trigger=Trigger.SCHEDULE,
                                               created_by="s", schedule_id=sched.id)
    assert from_schedule.timeout_s == 30
    [event] = await db.executions.events(row.id)
    assert (event.from_status, event.to_status, event.actor) == (None, S.QUEUED, "me")


async def test_submit_to_an_unknown_agent_fails(db: Database) -> None:
    with pytest.raises(AgentNotFound):
        await submit(db, "ghost")


async def test_a_full_backlog_records_skipped_runs_even_under_concurrency(db: Database) -> None:
    await agent(db, max_backlog_depth=5)
    rows = await asyncio.gather(*(submit(db) for _ in range(12)))
    statuses = [r.status for r in rows]  # type: ignore[attr-defined]
    assert statuses.count(S.QUEUED) == 5 and statuses.count(S.SKIPPED) == 7
    assert await db.executions.backlog_depth(A) == 5
    skipped = next(r for r in rows if r.status is S.SKIPPED)  # type: ignore[attr-defined]
    assert skipped.error.startswith("backlog full")  # type: ignore[attr-defined]
    assert skipped.completed_at_ms is not None and skipped.queued_at_ms is None  # type: ignore


async def test_overlap_skip_records_a_skipped_run_while_one_is_active(db: Database) -> None:
    await agent(db)
    sched = await db.schedules.create(agent=A, cron="* * * * *", overlap=OverlapPolicy.SKIP)
    first = await submit(db, schedule_id=sched.id)
    second = await submit(db, schedule_id=sched.id)
    assert first.status is S.QUEUED  # type: ignore[attr-defined]
    assert second.status is S.SKIPPED  # type: ignore[attr-defined]
    queue = await db.schedules.create(agent=A, cron="* * * * *", overlap=OverlapPolicy.QUEUE)
    assert (await submit(db, schedule_id=queue.id)).status is S.QUEUED  # type: ignore
    assert (await submit(db, schedule_id=queue.id)).status is S.QUEUED  # type: ignore


async def test_peek_queued_is_oldest_first(db: Database, clock: ManualClock) -> None:
    await agent(db)
    ids = []
    for _ in range(3):
        ids.append((await submit(db)).id)  # type: ignore[attr-defined]
        clock.advance(1)
    assert [r.id for r in await db.executions.peek_queued("a", 2)] == ids[:2]


async def test_listing_pages_newest_first_with_filters(db: Database, clock: ManualClock) -> None:
    await agent(db)
    await agent(db, "b")
    made = []
    for i in range(5):
        made.append((await submit(db, "a" if i % 2 == 0 else "b")).id)  # type: ignore
        clock.advance(1)
    page1 = await db.executions.list(limit=2)
    assert [r.id for r in page1] == made[::-1][:2]
    page2 = await db.executions.list(limit=2, before_id=page1[-1].id)
    assert [r.id for r in page2] == made[::-1][2:4]
    assert {r.agent for r in await db.executions.list(agent=AgentName("b"))} == {"b"}
    assert await db.executions.list(status=S.RUNNING) == []
    start = (await db.executions.get(made[2])).created_at_ms
    assert [r.id for r in await db.executions.list(since_ms=start)] == made[::-1][:3]
    assert [r.id for r in await db.executions.list(until_ms=start)] == made[::-1][3:]
    counts = await db.executions.count_by_agent_and_status()
    assert counts == {("a", "queued"): 3, ("b", "queued"): 2}


async def test_unknown_execution_is_not_found(db: Database) -> None:
    with pytest.raises(ExecutionNotFound):
        await db.executions.get(ExecutionId("nope"))
    assert await db.executions.find("nope") is None


async def test_schedules_crud_and_due(db: Database) -> None:
    await agent(db)
    s = await db.schedules.create(agent=A, cron="*/5 * * * *", timezone="Europe/Paris",
                                  input="hi", next_run_at_ms=100, name="five")
    assert (await db.schedules.get(s.id)).name == "five"
    assert [x.id for x in await db.schedules.due(99)] == []
    assert [x.id for x in await db.schedules.due(100)] == [s.id]
    await db.schedules.set_enabled(s.id, False)
    assert await db.schedules.due(1_000) == []
    await db.schedules.update(s.id, enabled=True, overlap="queue")
    assert (await db.schedules.get(s.id)).overlap is OverlapPolicy.QUEUE
    await db.schedules.delete(s.id)
    with pytest.raises(ScheduleNotFound):
        await db.schedules.get(s.id)
    with pytest.raises(ScheduleNotFound):
        await db.schedules.delete(s.id)


async def test_advancing_a_schedule_is_a_cas(db: Database) -> None:
    await agent(db)
    s = await db.schedules.create(agent=A, cron="* * * * *", next_run_at_ms=100)
    results = await asyncio.gather(*(db.schedules.advance(s.id, 100, 100, 160) for _ in range(5)))
    assert results.count(True) == 1
    assert (await db.schedules.get(s.id)).next_run_at_ms == 160
    assert not await db.schedules.advance(s.id, 100, 100, 220)


async def test_firing_a_schedule_twice_for_one_tick_records_one_run(db: Database) -> None:
    await agent(db)
    s = await db.schedules.create(agent=A, cron="* * * * *", next_run_at_ms=100, input="tick")
    firing = Firing(fire=True, scheduled_for_ms=100, next_run_at_ms=160, missed=0)
    runs = await asyncio.gather(db.fire_schedule(s, firing, 100), db.fire_schedule(s, firing, 100))
    fired = [r for r in runs if r is not None]
    assert len(fired) == 1
    assert (fired[0].trigger, fired[0].schedule_id, fired[0].input) == (Trigger.SCHEDULE, s.id,
                                                                         "tick")
    assert (await db.schedules.get(s.id)).last_run_at_ms == 100


async def test_tokens_store_hashes_and_revoke_once(db: Database) -> None:
    token = await db.tokens.create(name="ci", role="operator", agent=None, token_hash="h",
                                   now_ms=1)
    assert (await db.tokens.find_by_hash("h")) == token
    assert await db.tokens.find_by_hash("other") is None
    await db.tokens.revoke(token.id, 5)
    await db.tokens.revoke(token.id, 9)
    assert (await db.tokens.get(token.id)).revoked_at_ms == 5
    assert [t.id for t in await db.tokens.list()] == [token.id]
    with pytest.raises(NotFound):
        await db.tokens.revoke("tok_missing", 1)
    with pytest.raises(AlreadyExists):
        await db.tokens.create(name="dup", role="viewer", agent=None, token_hash="h", now_ms=2)


async def test_schedule_ids_and_agent_names_are_typed(db: Database) -> None:
    await agent(db)
    s = await db.schedules.create(agent=A, cron="* * * * *")
    assert s.id == ScheduleId(s.id) and s.id.startswith("sch_")
