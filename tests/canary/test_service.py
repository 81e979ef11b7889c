"""The canary's cycle on real SQL and a real redis-server: alerts on green -> red only, persisted
violations line up with what the cycle returned, one cycle at a time, and a store that is down
shows as unavailable without a false violation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shepherd.agent_client.pool import AgentClientPool
from shepherd.alerts.service import AlertService
from shepherd.canary.collect import CollectConfig, Collector
from shepherd.canary.service import CanaryService
from shepherd.canary.snapshot import REDIS, CanarySettings
from shepherd.controllers.directory import PooledDirectory
from shepherd.core.alerting import AlertPhase
from shepherd.core.clock import ManualClock
from shepherd.errors import ConfigError, Conflict
from shepherd.stores.redis.connection import RedisHandle, handle_for
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.violations import ViolationFilter
from tests.fixtures.fleet import free_port
from tests.stores.redis.helpers import seal_epoch


@pytest.fixture
async def canary(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> AsyncIterator[CanaryService]:
    await db.agents.create(name="a", url=None, command=None)
    pool = AgentClientPool()
    collector = Collector(db, redis_handle, PooledDirectory(pool, "t"), clock,
                          CollectConfig(CanarySettings(), {}))
    yield CanaryService(db, collector, AlertService(db, clock), clock)
    await pool.aclose()


async def phantom(redis: RedisHandle, clock: ManualClock, eid: str = "ghost") -> None:
    epoch = await seal_epoch(redis)
    await redis.slots.acquire("a", eid, max_parallel=3, timeout_s=60,
                              now_ms=clock.now_ms() - 60_000, holder="test", epoch=epoch)


async def incidents(db: Database) -> dict[str, int]:
    return {a.key.label: a.state.incidents for a in await db.alerts.list()
            if a.key.source.startswith("canary.")}


async def test_a_clean_fleet_is_green_and_writes_no_alert(
    canary: CanaryService, db: Database
) -> None:
    result = await canary.run_cycle()
    assert result.violations == () and result.transitions == ()
    assert len(result.checked) == 27 and result.sources_unavailable == ()
    assert await incidents(db) == {}


async def test_red_alerts_once_continuing_red_is_quiet_and_red_again_is_a_new_incident(
    canary: CanaryService, db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await phantom(redis_handle, clock)
    first = await canary.run_cycle()
    assert first.transitions == ("S-01",)
    assert canary.board["S-01"] == (True, first.cycle_at_ms) and canary.board["G-06"][0] is False
    assert [v.invariant_id for v in first.violations] == ["S-01"]
    assert (await canary.run_cycle()).transitions == ()
    await redis_handle.slots.release("a", "ghost")
    clock.advance(5)
    assert (await canary.run_cycle()).recovered == ("S-01",)
    await phantom(redis_handle, clock)
    assert (await canary.run_cycle()).transitions == ("S-01",)
    assert await incidents(db) == {"canary.S-01/S-01/a": 2}
    firing = await db.alerts.list(AlertPhase.FIRING)
    assert [a.key.label for a in firing] == ["canary.S-01/S-01/a"]
    assert "ghost" in " ".join(firing[0].forensics)


async def test_persisted_violations_line_up_with_the_cycle(
    canary: CanaryService, db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await phantom(redis_handle, clock)
    result = await canary.run_cycle()
    stored = await db.violations.query(ViolationFilter(invariant_id="S-01"))
    assert [v.id for v in stored] == list(result.violation_ids)
    assert stored[0].observed["phantom"] == ["ghost"] and stored[0].severity == "critical"
    assert await db.violations.get(stored[0].id) == stored[0]
    assert [(i, n) for i, _, n, _ in await db.violations.stats(0)] == [("S-01", 1)]


async def test_a_cycle_over_some_ids_leaves_the_others_incidents_alone(
    canary: CanaryService, db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await phantom(redis_handle, clock)
    await canary.run_cycle()
    partial = await canary.run_cycle(["G-06"])
    assert partial.checked == ("G-06",) and partial.recovered == ()
    assert list(await incidents(db)) == ["canary.S-01/S-01/a"]
    with pytest.raises(ConfigError, match="X-99"):
        await canary.run_cycle(["X-99"])


async def test_a_second_cycle_waits_for_the_one_running_and_is_refused_past_the_wait(
    canary: CanaryService,
) -> None:
    first = asyncio.create_task(canary.run_cycle())
    await asyncio.sleep(0)
    second = await canary.run_cycle()  # never overlapping: it ran once the first ended
    assert first.done() and second.checked
    canary.exclusive_wait_s = 0.05
    async with canary.exclusive():
        with pytest.raises(Conflict, match="already running"):
            await canary.run_cycle()


async def test_redis_down_is_a_source_unavailable_not_a_violation(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await db.agents.create(name="a", url=None, command=None)
    await phantom(redis_handle, clock)  # would be S-01 if Redis could be read
    nobody = Redis(host="127.0.0.1", port=free_port(), decode_responses=True,
                   socket_connect_timeout=1)
    down = handle_for(nobody, redis_handle.keys.prefix)
    pool = AgentClientPool()
    collector = Collector(db, down, PooledDirectory(pool, "t"), clock,
                          CollectConfig(CanarySettings(), {"dispatcher": 0.5}))
    try:
        result = await CanaryService(db, collector, AlertService(db, clock), clock).run_cycle()
    finally:
        await pool.aclose()
        await nobody.aclose()
    assert result.sources_unavailable == (REDIS,)
    assert result.violations == ()


async def test_the_board_turning_red_or_green_is_a_fleet_wide_event_and_green_at_start_is_not(
    canary: CanaryService, db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> None:
    await canary.run_cycle()  # every invariant first seen green: no news
    assert [e for e in await db.fleet_events.read(0, 100)
            if e.type == "canary.changed"] == []
    await phantom(redis_handle, clock)
    await canary.run_cycle()
    await canary.run_cycle()  # still red: nothing new
    await redis_handle.slots.release("a", "ghost")
    clock.advance(5)
    await canary.run_cycle()
    events = [e for e in await db.fleet_events.read(0, 100) if e.type == "canary.changed"]
    assert [(e.subject, e.agent, e.data["state"], e.data["violations"]) for e in events] == [
        ("S-01", None, "red", 1), ("S-01", None, "green", 0)]
    assert events[0].data["severity"] == "critical" and "1 slot(s)" in events[0].data["message"]
    alerts = [(e.data["change"], e.agent) for e in await db.fleet_events.read(0, 100)
              if e.type == "alert.changed"]
    assert alerts == [("opened", None), ("resolved", None)]  # the incident, fleet-wide too
