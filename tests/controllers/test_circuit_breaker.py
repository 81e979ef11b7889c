"""The breaker in the controllers: dispatch holds work while a circuit is open and runs it once the
agent is back; the prober probes and confirms; the monitor waits as the circuit says. Real runtime
behind a dropping proxy, real SQL, a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

import shepherd.controllers.monitor as monitor_module
from shepherd.agent_client.fleet_breaker import RedisBreaker
from shepherd.agent_client.pool import AgentClientPool
from shepherd.controllers.directory import PooledDirectory
from shepherd.controllers.prober import Prober
from shepherd.core.circuit import CircuitState
from shepherd.core.clock import ManualClock
from shepherd.core.status import ExecutionStatus as S
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from tests.agent_client.conftest import Monotonic
from tests.controllers.conftest import Controllers, build_controllers
from tests.controllers.test_execution_path import PY_ECHO, add_agent, submit
from tests.fixtures.runtimes import AGENT_TOKEN, StartRuntime
from tests.fixtures.servers import DroppingProxy, closed_port, dropping_proxy, healthy, serve


@dataclass
class Guarded:
    c: Controllers
    breaker: RedisBreaker
    prober: Prober


def guarded_plane(
    db: Database, redis: RedisHandle, clock: ManualClock, replica: str,
    monotonic: Callable[[], float] = time.monotonic,
) -> tuple[Guarded, AgentClientPool]:
    breaker = RedisBreaker(redis.circuits, redis.replicas, clock, replica=replica,
                           monotonic=monotonic)
    pool = AgentClientPool(breaker)
    c = build_controllers(db, redis, clock, pool, owner=replica, breaker=breaker)
    prober = Prober(db, breaker, PooledDirectory(pool, AGENT_TOKEN), clock)
    return Guarded(c, breaker, prober), pool


@pytest.fixture
async def guarded(
    db: Database, redis_handle: RedisHandle, clock: ManualClock
) -> AsyncIterator[Guarded]:
    built, pool = guarded_plane(db, redis_handle, clock, "r1")
    yield built
    await built.c.monitor.stop()
    await pool.aclose()


@pytest.fixture
async def proxy(start_runtime: StartRuntime) -> AsyncIterator[DroppingProxy]:
    runtime = await start_runtime("echo", PY_ECHO)
    async with dropping_proxy(int(runtime.url.rsplit(":", 1)[1])) as running:
        yield running


async def test_an_open_circuit_keeps_executions_queued_and_they_run_once_the_agent_is_back(
    guarded: Guarded, proxy: DroppingProxy, clock: ManualClock,
) -> None:
    c = guarded.c
    agent = await add_agent(c, "echo", proxy.url)
    rows = [await submit(c, "echo", f"run {i}") for i in range(2)]
    await proxy.outage()
    # The runtime never accepts: back to the backlog, a failure each pass (one start request
    # carries both rows), until the circuit opens.
    for _ in range(3):
        report = await c.dispatcher.run_once()
        assert sorted(report.refused) == sorted(r.id for r in rows)
    assert (await c.redis.circuits.read("echo")).state is CircuitState.OPEN
    for _ in range(3):
        report = await c.dispatcher.run_once()
        assert (report.held, report.claimed) == (["echo"], [])
    assert {(await c.db.executions.get(r.id)).status for r in rows} == {S.QUEUED}
    assert await c.redis.slots.count("echo") == 0
    await proxy.resume()
    assert (await guarded.prober.run_once()).probed == []  # cooldown not over
    clock.advance(30)
    assert (await guarded.prober.run_once()).probed == ["echo: closed"]
    assert proxy.requests == {"/health": 1}
    report = await c.dispatcher.run_once()
    assert sorted(report.dispatched) == sorted(r.id for r in rows)
    runtime_client = c.directory.client_for(agent)
    assert runtime_client is not None
    for row in rows:
        await runtime_client.get(row.id, wait_s=20)
    await c.monitor.sync_agent(agent, runtime_client)
    await c.finalizer.run_once()
    assert {(await c.db.executions.get(r.id)).status for r in rows} == {S.SUCCESS}


async def test_the_prober_of_a_second_replica_confirms_a_circuit_the_quorum_holds(
    db: Database, redis_handle: RedisHandle, clock: ManualClock,
) -> None:
    monotonic = Monotonic()
    first, first_pool = guarded_plane(db, redis_handle, clock, "r1", monotonic)
    second, second_pool = guarded_plane(db, redis_handle, clock, "r2", monotonic)
    try:
        await first.breaker.heartbeat()
        await second.breaker.heartbeat()
        monotonic.advance(5)
        assert await first.breaker.heartbeat() == 2
        async with serve(healthy) as served:
            await add_agent(first.c, "a", served.url)
            cut_off = first_pool.client_for("a", closed_port(), AGENT_TOKEN)
            for _ in range(4):  # r1's own network is broken; r1 alone cannot open it
                await first.breaker.record("a", (await cut_off.probe()).verdict, "down")
            assert (await redis_handle.circuits.read("a")).failures == 4
            assert (await first.prober.run_once()).confirmed == []  # r1 already failed it
            report = await second.prober.run_once()
            assert report.confirmed == ["a: success"]
            assert served.requests["/health"] == 1
        assert (await redis_handle.circuits.read("a")).failures == 0
    finally:
        await first_pool.aclose()
        await second_pool.aclose()


async def test_the_monitor_waits_for_the_next_probe_once_the_circuit_is_open(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = guarded.c
    monkeypatch.setattr(monitor_module, "RETRY_BASE_S", 0.01)
    monkeypatch.setattr(monitor_module, "RETRY_MAX_S", 0.01)
    waits: list[float] = []
    original = guarded.breaker.retry_after_s

    async def observed(agent: str, floor_s: float) -> float:
        wait = await original(agent, floor_s)
        waits.append(wait)
        return wait if wait < 1 else 0.01  # the test does not sit out the real cooldown

    monkeypatch.setattr(guarded.breaker, "retry_after_s", observed)
    await add_agent(c, "gone", closed_port())
    await c.monitor.run_once()
    for _ in range(500):
        if len(waits) >= 4:
            break
        await asyncio.sleep(0.01)
    await c.monitor.stop()
    # three failed polls (the third opens the circuit), then it waits for the probe (30 s on),
    # looking again every 10 s
    assert all(w <= 0.01 for w in waits[:2]) and waits[2:4] == [10.0, 10.0]
