"""The scheduler with an injected clock: cron fires, overlap skip vs queue, misfires fire once."""

from __future__ import annotations

from datetime import UTC, datetime

from shepherd.controllers.scheduler import Scheduler
from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.core.models import OverlapPolicy, Trigger
from shepherd.core.status import ExecutionStatus as S
from shepherd.stores.sql.database import Database

A = AgentName("cron")


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


async def setup(db: Database, clock: ManualClock, overlap: OverlapPolicy) -> str:
    clock.set(at("2026-03-01T10:00:30"))
    await db.agents.create(name=A, url=None, command=("true",))
    schedule = await db.schedules.create(agent=A, cron="* * * * *", input="tick",
                                         overlap=overlap)
    return schedule.id


async def test_a_new_schedule_is_armed_then_fires_at_its_minute(
    db: Database, clock: ManualClock
) -> None:
    sid = await setup(db, clock, OverlapPolicy.QUEUE)
    scheduler = Scheduler(db, clock)
    first = await scheduler.run_once()
    assert first.armed == [sid] and first.fired == []
    assert (await db.schedules.get(sid)).next_run_at_ms == at("2026-03-01T10:01:00")
    assert (await scheduler.run_once()).fired == []
    clock.set(at("2026-03-01T10:01:00"))
    fired = await scheduler.run_once()
    [row] = [await db.executions.get(eid) for eid in fired.fired]
    assert (row.status, row.trigger, row.schedule_id, row.input) == (
        S.QUEUED, Trigger.SCHEDULE, sid, "tick")
    schedule = await db.schedules.get(sid)
    assert schedule.last_run_at_ms == at("2026-03-01T10:01:00")
    assert schedule.next_run_at_ms == at("2026-03-01T10:02:00")
    assert (await scheduler.run_once()).fired == []


async def test_overlap_skip_records_a_skipped_run_while_the_last_is_active(
    db: Database, clock: ManualClock
) -> None:
    sid = await setup(db, clock, OverlapPolicy.SKIP)
    scheduler = Scheduler(db, clock)
    await scheduler.run_once()
    runs = []
    for minute in ("10:01", "10:02"):
        clock.set(at(f"2026-03-01T{minute}:00"))
        runs += (await scheduler.run_once()).fired
    statuses = [(await db.executions.get(eid)).status for eid in runs]
    assert statuses == [S.QUEUED, S.SKIPPED]
    skipped = await db.executions.get(runs[1])
    assert skipped.error is not None and "overlap" in skipped.error
    assert (await db.schedules.get(sid)).next_run_at_ms == at("2026-03-01T10:03:00")


async def test_overlap_queue_queues_behind_the_active_run(
    db: Database, clock: ManualClock
) -> None:
    await setup(db, clock, OverlapPolicy.QUEUE)
    scheduler = Scheduler(db, clock)
    await scheduler.run_once()
    runs = []
    for minute in ("10:01", "10:02"):
        clock.set(at(f"2026-03-01T{minute}:00"))
        runs += (await scheduler.run_once()).fired
    assert [(await db.executions.get(eid)).status for eid in runs] == [S.QUEUED, S.QUEUED]


async def test_misfires_after_downtime_fire_once_not_n_times(
    db: Database, clock: ManualClock
) -> None:
    sid = await setup(db, clock, OverlapPolicy.QUEUE)
    scheduler = Scheduler(db, clock)
    await scheduler.run_once()
    clock.set(at("2026-03-01T13:30:10"))  # three and a half hours of downtime
    report = await scheduler.run_once()
    assert len(report.fired) == 1 and report.missed == 209
    assert len(await db.executions.list(schedule_id=sid)) == 1
    assert (await db.schedules.get(sid)).next_run_at_ms == at("2026-03-01T13:31:00")


async def test_two_schedulers_on_one_tick_fire_it_once(db: Database, clock: ManualClock) -> None:
    import asyncio

    sid = await setup(db, clock, OverlapPolicy.QUEUE)
    await Scheduler(db, clock).run_once()
    clock.set(at("2026-03-01T10:01:00"))
    reports = await asyncio.gather(Scheduler(db, clock).run_once(), Scheduler(db, clock).run_once())
    assert sum(len(r.fired) for r in reports) == 1
    assert len(await db.executions.list(schedule_id=sid)) == 1


async def test_a_disabled_schedule_does_not_fire(db: Database, clock: ManualClock) -> None:
    sid = await setup(db, clock, OverlapPolicy.QUEUE)
    await db.schedules.set_enabled(sid, False)
    clock.advance(3600)
    assert (await Scheduler(db, clock).run_once()).fired == []
