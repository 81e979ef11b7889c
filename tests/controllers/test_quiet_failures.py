"""Failures that repeat are said once, not at every retry: a store that is down (no traceback,
one line for many ticks) and an unreachable runtime (once unreachable, once reachable again)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shepherd.background import GuardedTask
from shepherd.controllers import monitor as monitor_module
from shepherd.controllers.base import Wakeup
from shepherd.controllers.loop import ControllerLoop, LoopConfig
from shepherd.core.clock import ManualClock
from shepherd.errors import RedisStoreError
from shepherd.stores.redis.connection import RedisHandle
from tests.controllers.conftest import Controllers
from tests.fixtures.fleet import free_port
from tests.fixtures.runtimes import StartRuntime


class Unlucky:
    name = "unlucky"

    def __init__(self) -> None:
        self.runs = 0
        self.down = True

    async def run_once(self) -> int:
        self.runs += 1
        if self.down:
            raise RedisStoreError("redis: ping: ConnectionError: connection refused")
        return self.runs


async def wait_for(condition: object, what: str) -> None:
    for _ in range(400):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {what}")


async def test_a_store_that_is_down_is_one_line_without_traceback_for_many_ticks(
    redis_handle: RedisHandle, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    controller = Unlucky()
    loop = ControllerLoop(controller, LoopConfig(interval_s=0.01, singleton=False),
                          redis_handle, clock, "a", Wakeup())
    task = GuardedTask("unlucky", loop.run)
    task.start()
    try:
        await wait_for(lambda: controller.runs >= 20, "twenty ticks")
        controller.down = False
        await wait_for(lambda: controller.runs >= 25, "ticks after recovery")
    finally:
        await task.stop()
    assert loop.failures >= 20
    said = [r for r in caplog.records if r.name == "shepherd.controllers"]
    assert [r.getMessage().split(" (")[0] for r in said] == [
        "controllers: a store is unavailable, retrying every tick",
        "controllers: the stores answer again",
    ]
    assert all(r.exc_info is None for r in said)


async def test_an_unreachable_runtime_is_said_once_and_its_return_once(
    controllers: Controllers, start_runtime: StartRuntime, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(monitor_module, "RETRY_BASE_S", 0.05)
    monkeypatch.setattr(monitor_module, "RETRY_MAX_S", 0.05)
    c = controllers
    caplog.set_level(logging.INFO, logger="shepherd.controllers.monitor")
    await c.db.agents.create(name="far", url=f"http://127.0.0.1:{free_port()}", command=None)
    await c.monitor.run_once()
    cursor = c.redis.keys.agent_cursor("far")
    reasons: list[str | None] = []

    async def requested() -> None:
        while not reasons[-1:] or reasons[-1] is None:
            reasons.append(await c.redis.client.hget(cursor, "reconcile_reason"))
            await asyncio.sleep(0.01)

    await asyncio.wait_for(requested(), 10)
    await asyncio.sleep(0.5)  # ten more retries, twenty a second
    runtime = await start_runtime("far", ["cat"])
    await c.db.agents.update("far", url=runtime.url)

    def back() -> bool:
        return any("reachable again" in r.getMessage() for r in caplog.records)

    await wait_for(back, "reachable again")
    lines = [r.getMessage() for r in caplog.records if r.name == "shepherd.controllers.monitor"]
    assert len([m for m in lines if "unreachable" in m]) == 1, lines
    assert len([m for m in lines if "reachable again" in m]) == 1, lines
    assert len(lines) == 2, lines
