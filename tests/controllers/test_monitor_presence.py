"""What the monitor records for the fleet page: when each runtime last answered, when it booted."""

from __future__ import annotations

import asyncio

import pytest

from shepherd.controllers import monitor as monitor_module
from shepherd.controllers.base import Wakeup
from shepherd.controllers.monitor import Monitor
from shepherd.controllers.results import ResultWriter
from shepherd.core.ids import AgentName
from shepherd.core.models import Trigger
from shepherd.core.status import ExecutionStatus as S
from tests.controllers.conftest import Controllers
from tests.fixtures.runtimes import StartRuntime


async def test_the_monitor_stamps_last_seen_and_the_runtime_boot_time(
    controllers: Controllers, start_runtime: StartRuntime
) -> None:
    c = controllers
    runtime = await start_runtime("p", ["sh", "-c", "cat >/dev/null"])
    await c.db.agents.create(name=AgentName("p"), url=runtime.url, command=None)
    await c.monitor.run_once()
    now = c.clock.now_ms()
    presence = {}
    for _ in range(100):
        presence = await c.redis.presence.read(["p"])
        if presence["p"].seen_at_ms is not None and presence["p"].booted_at_ms is not None:
            break
        await asyncio.sleep(0.05)
    found = presence["p"]
    assert found.seen_at_ms == now
    assert found.booted_at_ms is not None and now - 60_000 < found.booted_at_ms <= now
    assert found.boot_id


async def test_a_watcher_that_takes_over_from_a_cursor_saved_pages_ago_stores_nothing_twice(
    controllers: Controllers, start_runtime: StartRuntime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A watcher saves its place in the stream at most every ``CURSOR_SAVE_S``: the one that
    takes over after it reads again the events since, whose results are stored and acked
    already. Here the saved place lags by every page of the first watcher."""
    monkeypatch.setattr(monitor_module, "CURSOR_SAVE_S", 3600.0)
    c = controllers
    runtime = await start_runtime("f", ["sh", "-c", "cat >/dev/null"])
    agent = await c.db.agents.create(name=AgentName("f"), url=runtime.url, command=None,
                                     max_parallel_tasks=4)
    await c.monitor.run_once()
    await asyncio.sleep(0.5)  # its registry pass, its first poll and its first saved place
    saved = await c.redis.cursors.load("f")
    rows = [await c.db.executions.submit(agent=AgentName("f"), input="", trigger=Trigger.API,
                                         created_by="test") for _ in range(4)]
    await c.dispatcher.run_once()
    ids = [r.id for r in rows]
    for _ in range(200):
        if all(s.is_terminal for s in (await c.db.executions.statuses(ids)).values()):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the next poll carries the acks
    await c.monitor.stop()
    assert await c.redis.cursors.load("f") == saved  # lagging by every page since
    other = Monitor(c.db, c.redis, c.directory, c.clock, owner="other-replica",
                    finalizer_wakeup=Wakeup(), poll_wait_s=0.5,
                    results=ResultWriter(c.db, c.redis, c.clock))
    try:
        await other.run_once()
        await asyncio.sleep(1.0)  # it reads the stream again from the saved place
    finally:
        await other.stop()
    assert (await c.redis.cursors.load("f"))[0] > saved[0]  # it did read them again
    for row in rows:
        assert [e.to_status for e in await c.db.executions.events(row.id)] == [
            S.QUEUED, S.RUNNING, S.FINALIZING, S.SUCCESS]
    client = c.directory.client_for(agent)
    assert client is not None
    assert (await client.list_executions()).executions == []
