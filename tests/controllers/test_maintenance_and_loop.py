"""Maintenance reclaims only dead slots; the controller loop leads by lease and records ticks."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest
from prometheus_client import generate_latest

from shepherd.background import GuardedTask
from shepherd.controllers import base as base_module
from shepherd.controllers import loop as loop_module
from shepherd.controllers.base import Wakeup
from shepherd.controllers.loop import ControllerLoop, LoopConfig
from shepherd.controllers.maintenance import Maintenance
from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry
from tests.stores.redis.helpers import take_slot

A = AgentName("m")


async def running_row(db: Database, redis: RedisHandle, clock: ManualClock) -> str:
    row = await db.executions.submit(agent=A, input="", trigger=Trigger.API, created_by="t")
    await take_slot(redis, A, row.id, max_parallel=5, timeout_s=60, now_ms=clock.now_ms(),
                              holder="t")
    assert await db.executions.claim_queued(row.id, clock.now_ms(), "t")
    return row.id


async def test_maintenance_reclaims_slots_of_finished_rows_after_the_grace(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await db.agents.create(name=A, url=None, command=("true",), max_parallel_tasks=5)
    alive = await running_row(db, redis_handle, clock)
    done = await running_row(db, redis_handle, clock)
    await db.executions.transition(done, ExecutionStatus.FAILED, Cause.TIMED_OUT, actor="t",
                                   now_ms=clock.now_ms())
    ghost = "0000000000000deadbeef00"
    await take_slot(redis_handle, A, ghost, max_parallel=5, timeout_s=60,
                                     now_ms=clock.now_ms(), holder="t")
    maintenance = Maintenance(db, redis_handle, clock, reclaim_grace_s=3)
    assert (await maintenance.run_once()).reclaimed == []  # within the grace
    clock.advance(4)
    report = await maintenance.run_once()
    assert sorted(report.reclaimed) == sorted([done, ghost])
    assert set(await redis_handle.slots.holders(A)) == {alive}
    tick = await redis_handle.client.get(redis_handle.keys.drain_tick_at())
    assert tick == str(clock.now_ms())


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.runs = 0

    async def run_once(self) -> int:
        self.runs += 1
        return self.runs


async def test_only_the_lease_holder_runs_a_singleton_and_its_tick_is_recorded(
    redis_handle: RedisHandle, clock: ManualClock
) -> None:
    first, second = Counting(), Counting()
    config = LoopConfig(interval_s=10)
    a = ControllerLoop(first, config, redis_handle, clock, owner="a")
    b = ControllerLoop(second, config, redis_handle, clock, owner="b")
    await a.tick()
    await b.tick()
    assert (first.runs, second.runs) == (1, 0)
    assert a.is_leader and not b.is_leader
    assert a.last_tick_ms == clock.now_ms()
    key = redis_handle.keys.controller_tick_at("counting")
    assert await redis_handle.client.get(key) == str(clock.now_ms())
    await redis_handle.leases.release(redis_handle.keys.controller_lease("counting"), "a")
    await b.tick()
    assert second.runs == 1 and b.is_leader


async def test_a_loop_survives_a_crashing_tick_and_resigns_on_stop(
    redis_handle: RedisHandle, clock: ManualClock
) -> None:
    class Flaky(Counting):
        async def run_once(self) -> int:
            self.runs += 1
            if self.runs == 1:
                raise RuntimeError("boom")
            return self.runs

    flaky, wakeup = Flaky(), Wakeup()
    loop = ControllerLoop(flaky, LoopConfig(interval_s=0.01), redis_handle, clock, "a", wakeup)
    task = GuardedTask("flaky", loop.run)
    task.start()
    for _ in range(200):
        if flaky.runs >= 3:
            break
        await asyncio.sleep(0.01)
    await task.stop()
    assert flaky.runs >= 3 and loop.failures == 1
    assert await redis_handle.leases.owner(redis_handle.keys.controller_lease("counting")) is None


async def test_a_guarded_task_restarts_work_that_raised() -> None:
    calls = 0
    done = asyncio.Event()

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first try fails")
        done.set()
        await asyncio.sleep(3600)

    task = GuardedTask("restart", work)
    task.start()
    await asyncio.wait_for(done.wait(), 5)
    assert task.crashes == 1 and task.running
    await task.stop()
    assert not task.running


async def test_a_tick_records_a_summary_of_its_report_any_replica_can_read(
    redis_handle: RedisHandle, clock: ManualClock
) -> None:
    @dataclass
    class Report:
        done: list[str] = field(default_factory=lambda: ["a", "b"])
        skipped: int = 4
        note: str = "ok"

    class Reporting:
        name = "reporting"

        async def run_once(self) -> Report:
            return Report()

    telemetry = Telemetry()
    loop = ControllerLoop(Reporting(), LoopConfig(interval_s=10), redis_handle, clock, "a",
                          telemetry=telemetry)
    await loop.tick()
    raw = await redis_handle.client.get(redis_handle.keys.controller_report("reporting"))
    summary = json.loads(raw)
    assert summary["tick_at_ms"] == clock.now_ms() and summary["duration_ms"] >= 0
    assert summary["report"] == {"done": 2, "skipped": 4, "note": "ok"}
    exposed = generate_latest(telemetry.registry).decode()
    assert 'shepherd_controller_tick_seconds_count{controller="reporting"} 1.0' in exposed


async def test_a_leader_renews_its_lease_and_records_its_tick_at_most_so_often(
    redis_handle: RedisHandle, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passes woken by events come faster than anyone reads a tick, and a lease lasts seconds:
    within the recheck window a pass trusts the renewal it just made, then renews again and
    sees a lease it lost."""
    monkeypatch.setattr(base_module, "LEASE_RECHECK_S", 0.2)
    monkeypatch.setattr(loop_module, "TICK_RECORD_S", 0.2)
    counting = Counting()
    loop = ControllerLoop(counting, LoopConfig(interval_s=10), redis_handle, clock, owner="a")
    tick_key = redis_handle.keys.controller_tick_at("counting")
    await loop.tick()
    first_ms = clock.now_ms()
    await redis_handle.leases.release(redis_handle.keys.controller_lease("counting"), "a")
    await redis_handle.leases.acquire(redis_handle.keys.controller_lease("counting"), "b", 10_000)
    clock.advance(1)
    await loop.tick()  # within the window: runs on the renewal it just made
    assert counting.runs == 2 and loop.last_tick_ms == clock.now_ms()
    assert await redis_handle.client.get(tick_key) == str(first_ms)  # not written again yet
    await asyncio.sleep(0.25)
    await loop.tick()
    assert counting.runs == 2 and not loop.is_leader  # renewed, and found it lost
