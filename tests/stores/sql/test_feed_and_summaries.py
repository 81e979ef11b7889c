"""The event feed and the dashboard's aggregates, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import insert

from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName, ScheduleId
from shepherd.core.models import Execution, Trigger
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.throughput import MINUTE_MS
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.tables import execution_events

S = ExecutionStatus


async def submit(db: Database, agent: str = "a", schedule_id: str | None = None) -> Execution:
    return await db.executions.submit(agent=AgentName(agent), input="", trigger=Trigger.API,
                                      created_by="t", schedule_id=ScheduleId(schedule_id)
                                      if schedule_id else None)


async def finish(db: Database, row: Execution, to: ExecutionStatus, now_ms: int) -> None:
    if to is S.CANCELLED:
        await db.executions.transition(row.id, to, Cause.CANCEL, actor="t", now_ms=now_ms)
        return
    await db.executions.claim_queued(row.id, now_ms, "t")
    await db.executions.transition(row.id, S.FINALIZING, Cause.CHILD_EXITED, actor="t",
                                   now_ms=now_ms)
    await db.executions.transition(row.id, to, Cause.FINALIZED, actor="t", now_ms=now_ms)


async def test_the_feed_reads_events_in_id_order_with_agent_and_schedule(db: Database) -> None:
    await db.agents.create(name=AgentName("a"), url=None, command=None)
    schedule = await db.schedules.create(agent=AgentName("a"), cron="* * * * *")
    assert await db.feed.head() == 0
    row = await submit(db, schedule_id=schedule.id)
    await db.executions.claim_queued(row.id, 1, "dispatcher")
    records = await db.feed.read(0, 10)
    assert [(r.event.to_status, r.agent, r.schedule_id) for r in records] == [
        (S.QUEUED, "a", schedule.id), (S.RUNNING, "a", schedule.id)]
    head = await db.feed.head()
    assert head == records[-1].event.seq
    assert await db.feed.read(head, 10) == []
    assert [r.event.seq for r in await db.feed.read(0, 1)] == [records[0].event.seq]


async def test_the_feed_also_fetches_the_holes_it_is_asked_for(db: Database) -> None:
    """A transaction that held a lower id commits after a higher one was read."""
    await db.agents.create(name=AgentName("a"), url=None, command=None)
    row = await submit(db)
    first = (await db.feed.read(0, 10))[0].event.seq
    late = first + 5
    async with db.engine.begin() as conn:
        await conn.execute(insert(execution_events).values(
            id=late, execution_id=row.id, from_status="queued", to_status="running",
            cause="dispatch", actor="late", at_ms=1))
    found = await db.feed.read(late, 10, also=[first, first + 1])
    assert [r.event.seq for r in found] == [first]


async def test_in_flight_counts_cover_only_queued_running_and_finalizing(
    db: Database, clock: ManualClock
) -> None:
    for name in ("a", "b"):
        await db.agents.create(name=AgentName(name), url=None, command=None)
    queued, running, done = await submit(db), await submit(db), await submit(db, "b")
    await db.executions.claim_queued(running.id, clock.now_ms(), "t")
    await finish(db, done, S.SUCCESS, clock.now_ms())
    assert await db.summaries.in_flight_counts() == {("a", "queued"): 1, ("a", "running"): 1}
    assert queued.status is S.QUEUED


async def test_completions_are_counted_per_minute_and_status_since_an_instant(
    db: Database, clock: ManualClock
) -> None:
    for name in ("a", "b"):
        await db.agents.create(name=AgentName(name), url=None, command=None)
    minute = clock.now_ms() // MINUTE_MS
    await finish(db, await submit(db), S.SUCCESS, minute * MINUTE_MS + 10)
    await finish(db, await submit(db), S.SUCCESS, minute * MINUTE_MS + 20)
    await finish(db, await submit(db, "b"), S.FAILED, minute * MINUTE_MS + 30)
    await finish(db, await submit(db), S.CANCELLED, (minute + 1) * MINUTE_MS)
    await finish(db, await submit(db), S.SUCCESS, (minute - 5) * MINUTE_MS)
    rows = await db.summaries.completions_by_minute((minute - 1) * MINUTE_MS)
    assert sorted(rows) == [(minute, "failed", 1), (minute, "success", 2),
                            (minute + 1, "cancelled", 1)]
    assert await db.summaries.completions_by_minute((minute - 1) * MINUTE_MS, agent="b") == [
        (minute, "failed", 1)]


async def test_the_latest_run_of_each_schedule(db: Database, clock: ManualClock) -> None:
    await db.agents.create(name=AgentName("a"), url=None, command=None)
    s1 = await db.schedules.create(agent=AgentName("a"), cron="* * * * *")
    s2 = await db.schedules.create(agent=AgentName("a"), cron="* * * * *")
    s3 = await db.schedules.create(agent=AgentName("a"), cron="* * * * *")
    await submit(db, schedule_id=s1.id)
    clock.advance(0.001)  # ids order by creation time
    newest = await submit(db, schedule_id=s1.id)
    only = await submit(db, schedule_id=s2.id)
    await submit(db)
    latest = await db.summaries.latest_of_schedules([s1.id, s2.id, s3.id])
    assert {k: v.id for k, v in latest.items()} == {s1.id: newest.id, s2.id: only.id}
    assert await db.summaries.latest_of_schedules([]) == {}
