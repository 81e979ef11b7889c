"""The fleet overview over real stores: per-agent state, slots, backlog, presence; totals and the
hour of throughput; a scoped token sees its agent only."""

from __future__ import annotations

from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.presence import AgentState
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.services.overview import fleet_overview, schedule_overview
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from tests.stores.redis.helpers import take_slot

S = ExecutionStatus
SILENT_AFTER_MS = 45_000


async def submit(db: Database, agent: str) -> str:
    row = await db.executions.submit(agent=AgentName(agent), input="", trigger=Trigger.API,
                                     created_by="t")
    return row.id


async def test_the_fleet_overview_counts_what_each_agent_does(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    now = clock.now_ms()
    await db.agents.create(name=AgentName("a"), url="http://a.test", command=None,
                           max_parallel_tasks=4)
    await db.agents.create(name=AgentName("b"), url="http://b.test", command=None, enabled=False)
    running, queued, failed = await submit(db, "a"), await submit(db, "a"), await submit(db, "a")
    await take_slot(redis_handle, "a", running, max_parallel=4, timeout_s=60, now_ms=now,
                    holder="t")
    await db.executions.claim_queued(running, now, "t")
    await db.executions.claim_queued(failed, now, "t")
    await db.executions.transition(failed, S.FAILED, Cause.TIMED_OUT, actor="t", now_ms=now)
    await redis_handle.client.hset(redis_handle.keys.agent_cursor("a"),
                                   mapping={"seen_at_ms": now - 1_000, "booted_at_ms": now - 9})
    overview = await fleet_overview(db, redis_handle, now_ms=now,
                                     silent_after_ms=SILENT_AFTER_MS)
    a, b = overview.agents
    assert (a.agent.name, a.state, a.slots_in_use, a.queued, a.running) == (
        "a", AgentState.UP, 1, 1, 1)
    assert (a.seen_at_ms, a.booted_at_ms) == (now - 1_000, now - 9)
    assert (b.agent.name, b.state, b.slots_in_use, b.queued) == ("b", AgentState.DISABLED, 0, 0)
    totals = overview.totals
    assert (totals.running, totals.queued, totals.failed_last_hour) == (1, 1, 1)
    assert sum(m.failed for m in overview.minutes) == 1
    assert totals.per_minute > 0
    assert queued


async def test_a_scoped_overview_shows_one_agent_and_its_own_numbers(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    for name in ("a", "b"):
        await db.agents.create(name=AgentName(name), url=None, command=None)
    await submit(db, "a")
    await submit(db, "b")
    overview = await fleet_overview(db, redis_handle, now_ms=clock.now_ms(),
                                    silent_after_ms=SILENT_AFTER_MS, scope="b")
    assert [o.agent.name for o in overview.agents] == ["b"]
    assert overview.agents[0].state is AgentState.NO_RUNTIME
    assert overview.totals.queued == 1


async def test_schedules_come_with_their_latest_run(db: Database, clock: ManualClock) -> None:
    await db.agents.create(name=AgentName("a"), url=None, command=None)
    never = await db.schedules.create(agent=AgentName("a"), cron="0 0 * * *")
    ran = await db.schedules.create(agent=AgentName("a"), cron="* * * * *")
    row = await db.executions.submit(agent=AgentName("a"), input="", trigger=Trigger.MANUAL,
                                     created_by="t", schedule_id=ran.id)
    found = {o.schedule.id: o.last for o in await schedule_overview(db)}
    assert found[never.id] is None
    assert found[ran.id] is not None and found[ran.id].id == row.id
    assert await schedule_overview(db, scope="other") == []
