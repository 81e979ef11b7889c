"""Slot recovery: a Redis that lost its data is rebuilt from SQL before anything is acquired, so
an agent is never overbooked. Real SQL, a real redis-server, a real runtime with real children."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest

from shepherd.controllers.slot_recovery import SlotRecovery
from shepherd.core.models import Agent, Trigger
from shepherd.core.status import ExecutionStatus as S
from shepherd.telemetry import Telemetry
from tests.controllers.conftest import Controllers
from tests.fixtures.runtimes import StartRuntime

SLOW = ["sh", "-c", "cat >/dev/null; sleep 30"]


async def busy_agent(c: Controllers, start_runtime: StartRuntime, queued: int) -> Agent:
    runtime = await start_runtime("busy", SLOW)
    agent = await c.db.agents.create(name="busy", url=runtime.url, command=None,
                                     max_parallel_tasks=2)
    for _ in range(queued):
        await c.db.executions.submit(agent=agent.name, input="", trigger=Trigger.API,
                                     created_by="t")
    return agent


async def test_a_fresh_redis_is_sealed_once_then_trusted(controllers: Controllers) -> None:
    c, telemetry = controllers, Telemetry()
    recovery = SlotRecovery(c.db, c.redis, c.clock, telemetry)
    epoch = await recovery.ensure()
    reading = await c.redis.epoch.read()
    assert epoch == reading.run_id == reading.epoch
    assert reading.instance == c.db.instance_id
    assert await recovery.ensure() == epoch
    assert b"shepherd_redis_rebuilds_total 1.0" in generate_latest(telemetry.registry)


async def test_after_a_flush_the_running_rows_take_their_slots_back_before_any_new_dispatch(
    controllers: Controllers, start_runtime: StartRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    c = controllers
    agent = await busy_agent(c, start_runtime, queued=4)
    first = await c.dispatcher.run_once()
    assert len(first.dispatched) == 2
    await c.redis.client.flushall()
    again = await c.dispatcher.run_once()
    assert again.claimed == []  # still full: nobody is overbooked
    assert not again.paused
    assert set(await c.redis.slots.holders(agent.name)) == set(first.dispatched)
    running = await c.db.executions.list_by_status(S.RUNNING, agent.name)
    assert sorted(r.id for r in running) == sorted(first.dispatched)
    assert any("slots rebuilt from SQL (2 running" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)


async def test_a_restarted_or_failed_over_server_is_rebuilt_too(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    agent = await busy_agent(c, start_runtime, queued=3)
    first = await c.dispatcher.run_once()
    # A failover to a replica that missed the last acquire: the epoch names the old server.
    lost = first.dispatched[0]
    await c.redis.slots.release(agent.name, lost)
    await c.redis.epoch.seal("run-id-of-the-old-primary")
    again = await c.dispatcher.run_once()
    assert again.claimed == []
    assert set(await c.redis.slots.holders(agent.name)) == set(first.dispatched)


async def test_a_redis_of_another_store_is_never_dispatched_to_and_said_once(
    controllers: Controllers, start_runtime: StartRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    c = controllers
    agent = await busy_agent(c, start_runtime, queued=1)
    await c.redis.client.set(c.redis.keys.instance(), "another-store")
    for _ in range(3):
        report = await c.dispatcher.run_once()
        assert (report.paused, report.claimed) == (True, [])
    assert await c.redis.slots.holders(agent.name) == {}
    said = [r for r in caplog.records if "belongs to another Shepherd store" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR
    assert await c.redis.client.get(c.redis.keys.epoch()) is None
