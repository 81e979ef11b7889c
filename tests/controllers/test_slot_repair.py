"""Maintenance repairs every kind of wrong slot on real SQL and a real redis-server: phantoms it
used to keep forever (an orphan hash without a TTL, a member naming another agent's running
execution, a member scored in the future) and running executions left without a slot."""

from __future__ import annotations

from shepherd.controllers.maintenance import Maintenance
from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.timeouts import slot_ttl_s
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from tests.stores.redis.helpers import take_slot, ttls_s

A, B = AgentName("a"), AgentName("b")
GRACE_S = 3


async def running(db: Database, redis: RedisHandle, clock: ManualClock, agent: str) -> str:
    """A row as the dispatcher leaves it: slot acquired, then claimed."""
    row = await db.executions.submit(agent=AgentName(agent), input="", trigger=Trigger.API,
                                     created_by="t")
    await take_slot(redis, agent, row.id, max_parallel=2, timeout_s=row.timeout_s,
                              now_ms=clock.now_ms(), holder="t")
    assert await db.executions.claim_queued(row.id, clock.now_ms(), "t")
    return row.id


def maintenance(db: Database, redis: RedisHandle, clock: ManualClock) -> Maintenance:
    return Maintenance(db, redis, clock, reclaim_grace_s=GRACE_S)


async def setup(db: Database) -> None:
    for name in (A, B):
        await db.agents.create(name=name, url=None, command=("true",), max_parallel_tasks=2)


async def test_an_orphan_slot_hash_without_a_ttl_is_deleted(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await setup(db)
    r, keys = redis_handle, redis_handle.keys
    kept = await running(db, r, clock, A)
    await r.client.hset(keys.slot(A, "0000000000000deadbeef00"), "holder", "ghost")
    await r.client.hset(keys.slot("deleted-agent", "0000000000001deadbeef00"), "holder", "ghost")
    report = await maintenance(db, r, clock).run_once()
    assert sorted(report.orphan_hashes) == ["0000000000000deadbeef00", "0000000000001deadbeef00"]
    assert set(await ttls_s(r)) == {keys.epoch(), keys.slots(A), keys.slot(A, kept),
                                    keys.drain_tick_at()}


async def test_a_member_naming_another_agents_running_execution_is_reclaimed(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await setup(db)
    r = redis_handle
    theirs = await running(db, r, clock, B)
    await take_slot(r, A, theirs, max_parallel=2, timeout_s=60, now_ms=clock.now_ms(),
                          holder="bug")
    m = maintenance(db, r, clock)
    assert (await m.run_once()).reclaimed == []  # within the grace
    clock.advance(GRACE_S + 1)
    assert (await m.run_once()).reclaimed == [theirs]
    assert await r.slots.holders(A) == {}
    assert set(await r.slots.holders(B)) == {theirs}  # its rightful slot stays


async def test_a_member_scored_in_the_future_is_reclaimed_unless_its_row_runs(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await setup(db)
    r = redis_handle
    alive = await running(db, r, clock, A)
    done = await running(db, r, clock, B)
    assert await db.executions.transition(done, ExecutionStatus.FAILED, Cause.TIMED_OUT,
                                          actor="t", now_ms=clock.now_ms())
    hour_ahead = clock.now_ms() + 3_600_000
    await r.slots.release(A, alive)
    await take_slot(r, A, alive, max_parallel=2, timeout_s=60, now_ms=hour_ahead, holder="t")
    await r.slots.release(B, done)
    await take_slot(r, B, done, max_parallel=2, timeout_s=60, now_ms=hour_ahead, holder="t")
    report = await maintenance(db, r, clock).run_once()
    assert report.reclaimed == [done]
    assert await r.slots.holders(A) == {alive: hour_ahead}
    assert await r.slots.holders(B) == {}


async def test_a_running_execution_without_a_slot_gets_it_back_with_its_ttl(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await setup(db)
    r, keys = redis_handle, redis_handle.keys
    first = await running(db, r, clock, A)
    second = await running(db, r, clock, A)
    dispatched_at = clock.now_ms()
    await r.client.flushall()  # Redis lost everything
    clock.advance(10)
    report = await maintenance(db, r, clock).run_once()
    assert sorted(report.restored) == sorted([first, second])
    assert await r.slots.holders(A) == {first: dispatched_at, second: dispatched_at}
    row = await db.executions.get(first)
    assert await ttls_s(r) == {
        keys.slots(A): -1, keys.slot(A, first): slot_ttl_s(row.timeout_s),
        keys.slot(A, second): slot_ttl_s(row.timeout_s), keys.drain_tick_at(): -1,
    }
    again = await maintenance(db, r, clock).run_once()
    assert (again.restored, again.reclaimed, again.orphan_hashes) == ([], [], [])
