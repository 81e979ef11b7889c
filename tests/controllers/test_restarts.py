"""Restarts end to end: a runtime SIGKILLed mid-run, and a control plane restarted mid-run.

The monitor's watchers run for real here (long-polls of 0.5 s); the tests wait on SQL for the
outcome, bounded, and never on wall-clock assertions.
"""

from __future__ import annotations

import asyncio
import signal

from shepherd.agent_client.pool import AgentClientPool
from shepherd.app.runtimes import LocalRuntimes
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.status import ExecutionStatus as S
from shepherd.manifest.schema import AgentSpec
from tests.controllers.conftest import Controllers, build_controllers
from tests.fixtures.runtimes import StartRuntime


async def wait_status(c: Controllers, execution_id: str, wanted: set[S], limit_s: float = 20
                      ) -> S:
    for _ in range(int(limit_s / 0.1)):
        status = (await c.db.executions.get(execution_id)).status
        if status in wanted:
            return status
        await c.finalizer.run_once()
        await asyncio.sleep(0.1)
    return (await c.db.executions.get(execution_id)).status


async def test_a_runtime_killed_mid_run_does_not_leave_the_execution_running(
    controllers: Controllers, start_runtime: StartRuntime, runtimes: LocalRuntimes
) -> None:
    c = controllers
    runtime = await start_runtime("k", ["sh", "-c", "cat >/dev/null; sleep 30"])
    await c.db.agents.create(name=AgentName("k"), url=runtime.url, command=None)
    row = await c.db.executions.submit(agent=AgentName("k"), input="", trigger=Trigger.API,
                                       created_by="t")
    await c.dispatcher.run_once()
    await c.monitor.run_once()
    await asyncio.sleep(0.3)  # the watcher reads the first boot
    runtime.process.send_signal(signal.SIGKILL)
    await runtime.process.wait()
    again = await runtimes.start(AgentSpec(name="k", command=("sh", "-c", "cat >/dev/null")))
    await c.db.agents.update("k", url=again.url)
    final = await wait_status(c, row.id, {S.FAILED, S.SUCCESS})
    done = await c.db.executions.get(row.id)
    assert (final, done.error_class) == (S.FAILED, "runtime_restarted")
    assert await c.redis.slots.count("k") == 0
    cursor = await c.redis.client.hgetall(c.redis.keys.agent_cursor("k"))
    assert "reconcile_requested_at_ms" in cursor
    [restarted] = [e for e in await c.db.fleet_events.read(0, 100)
                   if e.data.get("change") == "runtime_restarted"]
    assert restarted.agent == "k" and restarted.data["actor"] == "monitor"
    assert restarted.data["previous_boot_id"] is not None
    assert restarted.data["previous_boot_id"] != restarted.data["boot_id"]


async def test_a_result_finished_while_the_control_plane_was_down_is_collected_once(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("r", ["sh", "-c", "cat >/dev/null; sleep 0.5; echo done"])
    await c.db.agents.create(name=AgentName("r"), url=runtime.url, command=None)
    row = await c.db.executions.submit(agent=AgentName("r"), input="", trigger=Trigger.API,
                                       created_by="t")
    await c.dispatcher.run_once()
    await c.monitor.stop()  # the control plane goes away mid-run
    await c.pool.aclose()
    agent = await c.db.agents.get("r")
    probe_pool = AgentClientPool()
    probe = probe_pool.client_for("r", runtime.url, "test-agent-token-0123456789abcdef")
    await probe.get(row.id, wait_s=10)  # the child finishes while nobody watches
    await probe_pool.aclose()
    assert (await c.db.executions.get(row.id)).status is S.RUNNING

    pool = AgentClientPool()
    second = build_controllers(c.db, c.redis, c.clock, pool, owner="plane-2")
    try:
        await second.monitor.run_once()  # startup: re-attach, registry pass settles the run
        assert await wait_status(second, row.id, {S.SUCCESS, S.FAILED}) is S.SUCCESS
        await second.finalizer.run_once()
    finally:
        await second.monitor.stop()
        await second.outbox.stop()
        await pool.aclose()
    done = await c.db.executions.get(row.id)
    assert "done" in (done.output_tail or "")
    successes = [e for e in await c.db.executions.events(row.id) if e.to_status is S.SUCCESS]
    assert len(successes) == 1
    pool = AgentClientPool()
    try:
        registry = await pool.client_for(agent.name, runtime.url,
                                         "test-agent-token-0123456789abcdef").list_executions()
    finally:
        await pool.aclose()
    assert registry.executions == []  # acked: the runtime forgot it
