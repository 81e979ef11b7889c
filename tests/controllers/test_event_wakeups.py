"""The path reacts to events, not ticks: a child's exit, settled by the monitor, wakes both the
finalizer (a result to store) and the dispatcher (a slot is free for the backlog)."""

from __future__ import annotations

from shepherd.controllers.base import Wakeup
from shepherd.controllers.monitor import Monitor
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.status import ExecutionStatus as S
from tests.controllers.conftest import Controllers
from tests.fixtures.runtimes import StartRuntime


async def test_a_settled_exit_wakes_the_finalizer_and_the_dispatcher(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("quick", ["true"])
    agent = await c.db.agents.create(name=AgentName("quick"), url=runtime.url, command=None,
                                     max_parallel_tasks=1)
    first = await c.db.executions.submit(agent=AgentName("quick"), input="", trigger=Trigger.API,
                                         created_by="test")
    c.clock.advance(0.001)  # FIFO is by queued time: the second is queued after the first
    second = await c.db.executions.submit(agent=AgentName("quick"), input="", trigger=Trigger.API,
                                          created_by="test")
    assert (await c.dispatcher.run_once()).dispatched == [first.id]
    finalize, dispatch = Wakeup(), Wakeup()
    monitor = Monitor(c.db, c.redis, c.directory, c.clock, owner="test-plane",
                      finalizer_wakeup=finalize, dispatch_wakeup=dispatch, poll_wait_s=0.5)
    client = c.directory.client_for(agent)
    assert client is not None
    await client.get(first.id, wait_s=20)
    await monitor.sync_agent(agent, client)
    assert (await c.db.executions.get(first.id)).status is S.FINALIZING
    assert await finalize.wait(5.0) and await dispatch.wait(5.0)
    # The slot the exit freed is the one the woken dispatcher fills.
    assert (await c.dispatcher.run_once()).dispatched == [second.id]
    await client.get(second.id, wait_s=20)
    await monitor.sync_agent(agent, client)
    await c.finalizer.run_once()
    await monitor.stop()
    statuses = [e.to_status for e in await c.db.executions.events(first.id)]
    assert statuses == [S.QUEUED, S.RUNNING, S.FINALIZING, S.SUCCESS]
