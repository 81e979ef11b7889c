"""What the monitor records for the fleet page: when each runtime last answered, when it booted."""

from __future__ import annotations

import asyncio

from shepherd.core.ids import AgentName
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
