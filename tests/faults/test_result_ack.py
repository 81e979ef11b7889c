"""A control plane SIGKILLed after it stored a page of results and before the runtime heard the
ack. The results are safe (committed before the ack), so nothing is lost and nothing ends twice:
another control plane, once the dead one's monitor lease ran out, finds the finished runs still
held by the runtime, sees their rows already terminal and acks them; each completion webhook is
delivered (at least once, under its one idempotency key)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from shepherd.core.clock import ManualClock
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import open_database
from tests.faults.test_reaper_faults import terminal_events_by_execution
from tests.fixtures.planes import (
    admin_client,
    assert_planes_settled,
    shared_env,
    start_plane,
    stop_planes,
)
from tests.fixtures.receiver import receiving
from tests.fixtures.runtimes import AGENT_TOKEN, StartRuntime
from tests.fixtures.servers import dropping_proxy

RUNS = 4
# Long enough for the monitor to be following the agent's events when they exit.
CHILD = ["sh", "-c", "cat >/dev/null; sleep 1; echo done"]


async def until(probe: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await probe():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_control_plane_killed_between_storing_results_and_acking_them_loses_nothing(
    tmp_path: Path, redis_socket: Path, redis_handle: RedisHandle, start_runtime: StartRuntime,
) -> None:
    """``redis_handle`` empties the shared Redis first (another test's install lives there)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    env = shared_env(redis_socket, url)
    runtime = await start_runtime("worker", CHILD)
    db = await open_database(url, ManualClock())
    started = []
    try:
        with receiving() as receiver:
            async with dropping_proxy(int(runtime.url.rsplit(":", 1)[1])) as proxy:
                started.append(first := await start_plane(tmp_path, 0, env))
                async with admin_client(first) as api:
                    made = await api.post("/api/agents", json={
                        "name": "worker", "url": proxy.url, "max_parallel": RUNS,
                        "completion_webhook_url": receiver.url})
                    assert made.status_code == 201, made.text
                    # The first ack never arrives: it rides the poll after the results.
                    proxy.hold("GET", "/v1/events", times=1, containing="ack=")
                    ids = [(await api.post("/api/executions", json={
                        "agent": "worker", "input": str(i)})).json()["id"] for i in range(RUNS)]

                async def stored_and_ack_held() -> bool:
                    statuses = await db.executions.statuses(ids)
                    return proxy.held == 1 and all(s.is_terminal for s in statuses.values())

                await until(stored_and_ack_held, 60, "the results stored and their ack held")
                first.kill()
                proxy.drop_all()
                started.append(second := await start_plane(tmp_path, 1, env))
                runtime_api = httpx.AsyncClient(
                    base_url=runtime.url, headers={"Authorization": f"Bearer {AGENT_TOKEN}"})

                async def forgotten() -> bool:
                    return (await runtime_api.get("/v1/executions")).json()["executions"] == []

                async with runtime_api:
                    await until(forgotten, 60, "the other control plane to ack the results")
                await until(lambda: _true(len(receiver.requests) >= RUNS), 30, "the webhooks")
                await asyncio.sleep(1)  # room for a second delivery, were there one
                await assert_planes_settled(second, first, (runtime,))
        counts = await terminal_events_by_execution(db)
        rows = await db.executions.find_many(ids)
    finally:
        stop_planes(started)
        await db.close()
    assert {r.status.value for r in rows} == {"success"}
    assert {eid: counts.get(eid) for eid in ids} == dict.fromkeys(ids, 1)
    # At least once, key unchanged: a delivery the killed plane had in flight may come twice.
    assert set(receiver.keys()) == {f"{eid}:1" for eid in ids}


async def _true(value: bool) -> bool:
    return value
