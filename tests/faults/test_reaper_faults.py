"""Finalization ownership across real control-plane processes sharing one Redis and one SQL
database: a control plane SIGKILLed in the middle of a finalization, and two control planes
finalizing a burst of 200 exits while the one leading is frozen and thawed under the other. No
execution ever gets two terminal events; the completion webhook is delivered once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import func, select

from shepherd.core.clock import ManualClock
from shepherd.core.status import TERMINAL
from shepherd.core.status import ExecutionStatus as S
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database, open_database
from shepherd.stores.sql.tables import execution_events
from tests.fixtures.planes import Plane, admin_client, assert_planes_settled, planes, shared_env
from tests.fixtures.receiver import receiving
from tests.fixtures.runtimes import StartRuntime
from tests.fixtures.servers import dropping_proxy

QUICK = ["sh", "-c", "cat >/dev/null; echo done"]
# The burst's children outlive the 200 submissions (slow on a loaded machine), so their exits,
# and the finalizations the test freezes, come after the freezer starts looking.
HELD = ["sh", "-c", "cat >/dev/null; sleep 5; echo done"]
BURST = 200
SETTLE_S = 120.0


async def until(probe: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


async def terminal_events_by_execution(db: Database) -> dict[str, int]:
    e = execution_events.c
    query = (select(e.execution_id, func.count()).where(e.to_status.in_([s.value for s in
                                                                         TERMINAL]))
             .group_by(e.execution_id))
    async with db.engine.connect() as conn:
        return {eid: int(n) for eid, n in (await conn.execute(query)).all()}


async def test_a_control_plane_killed_mid_finalization_is_finalized_once_by_another(
    tmp_path: Path, redis_socket: Path, redis_handle: RedisHandle, start_runtime: StartRuntime,
) -> None:
    """The first control plane holds the finalize lease and waits on the runtime for the result
    when it is SIGKILLed. While its lease lives, nobody touches the row; once the lease's TTL ran
    out, the other control plane finalizes it: one terminal event, one webhook delivery."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    # The exit through the finalizer, whose ownership is what this test is about: stored from
    # its exit event instead (the monitor watching before the child exits), it never would be.
    env = shared_env(redis_socket, url, SHEPHERD_RESULTS_FROM_EVENTS="false",
                     SHEPHERD_FINALIZE_LEASE_TTL_S="3",
                     SHEPHERD_FINALIZE_FETCH_BUDGET_S="20", SHEPHERD_FINALIZE_STORE_BUDGET_S="2",
                     SHEPHERD_FINALIZE_ACK_BUDGET_S="2", SHEPHERD_REAPER_FINALIZE_GRACE_S="25",
                     SHEPHERD_REAPER_INTERVAL_S="0.5")
    runtime = await start_runtime("worker", QUICK)
    db = await open_database(url, ManualClock())
    with receiving() as receiver:
        async with dropping_proxy(int(runtime.url.rsplit(":", 1)[1])) as proxy, \
                planes(tmp_path, env, 2) as (first, second):
            async with admin_client(first) as api:
                made = await api.post("/api/agents", json={
                    "name": "worker", "url": proxy.url, "completion_webhook_url": receiver.url})
                assert made.status_code == 201, made.text
                proxy.hold("GET", "/v1/executions/")  # every result read waits for release()
                eid = (await api.post("/api/executions", json={"agent": "worker",
                                                                "input": "x"})).json()["id"]
            lease = redis_handle.keys.finalize_lease(eid)

            async def first_holds() -> bool:
                return proxy.held >= 1 and first.owns(await redis_handle.leases.owner(lease))

            await until(first_holds, 30, "the first control plane to be mid-finalization")
            first.kill()
            proxy.release()
            while await redis_handle.client.pttl(lease) > 0:  # the dead owner's lease lives on
                assert (await db.executions.get(eid)).status is S.FINALIZING
                await asyncio.sleep(0.05)

            async def ended() -> bool:
                return (await db.executions.get(eid)).status.is_terminal

            await until(ended, 30, "the other control plane to finalize it")

            async def delivered() -> bool:
                return len(receiver.requests) >= 1

            await until(delivered, 30, "the completion webhook")
            await asyncio.sleep(2)  # room for a second delivery, were there one
            await assert_planes_settled(second, first, (runtime,))
    done = await db.executions.get(eid)
    events = [e for e in await db.executions.events(eid) if e.to_status in TERMINAL]
    await db.close()
    assert done.status is S.SUCCESS
    assert [(e.from_status, e.to_status) for e in events] == [(S.FINALIZING, S.SUCCESS)]
    assert events[0].actor in ("finalizer", "reaper")
    assert receiver.keys() == [f"{eid}:1"]


async def test_two_control_planes_finalize_a_burst_of_exits_each_exactly_once(
    tmp_path: Path, redis_socket: Path, redis_handle: RedisHandle, start_runtime: StartRuntime,
    sql_url: str,
) -> None:
    """200 children exit at once. Mid-burst the control plane leading the finalizer is frozen
    (SIGSTOP) past its controller and finalize leases, so the other takes over the finalizer
    and the reaper (whose grace is short here); then it is thawed and resumes the finalizations
    it had in flight, racing the other. Every execution ends with exactly one terminal event."""
    # Every exit through the finalizer, whose ownership is what this test is about.
    env = shared_env(redis_socket, sql_url, SHEPHERD_RESULTS_FROM_EVENTS="false",
                     SHEPHERD_FINALIZE_LEASE_TTL_S="1",
                     SHEPHERD_FINALIZE_FETCH_BUDGET_S="1", SHEPHERD_FINALIZE_STORE_BUDGET_S="2",
                     SHEPHERD_FINALIZE_ACK_BUDGET_S="1", SHEPHERD_REAPER_FINALIZE_GRACE_S="5",
                     SHEPHERD_REAPER_INTERVAL_S="0.5")
    runtime = await start_runtime("burst", HELD)
    db = await open_database(sql_url, ManualClock())
    try:
        async with planes(tmp_path, env, 2) as replicas:
            async with admin_client(replicas[0]) as api:
                made = await api.post("/api/agents", json={
                    "name": "burst", "url": runtime.url, "max_parallel": BURST,
                    "max_backlog_depth": BURST})
                assert made.status_code == 201, made.text
                for i in range(BURST):
                    posted = await api.post("/api/executions", json={"agent": "burst",
                                                                      "input": str(i)})
                    assert posted.status_code == 201, posted.text
            leaders, in_flight = await _freeze_the_finalizer_mid_burst(replicas, redis_handle)

            async def all_ended() -> bool:
                counts = await db.executions.count_by_agent_and_status()
                return sum(n for (_, status), n in counts.items()
                           if S(status).is_terminal) == BURST

            await until(all_ended, SETTLE_S, "every execution to end")
            await assert_planes_settled(replicas[0], runtimes=(runtime,))
        counts = await terminal_events_by_execution(db)
        rows = await db.executions.list(limit=BURST + 10)
    finally:
        await db.close()
    assert leaders == {p.pid for p in replicas}  # both finalized: one before, one during
    assert in_flight  # the thawed one resumed finalizations the other had taken over
    assert len(rows) == BURST
    assert {r.status for r in rows} == {S.SUCCESS}
    assert sorted(set(counts.values())) == [1], {k: v for k, v in counts.items() if v != 1}
    assert set(counts) == {r.id for r in rows}


async def _freeze_the_finalizer_mid_burst(
    replicas: list[Plane], redis_handle: RedisHandle
) -> tuple[set[int], list[str]]:
    """SIGSTOP the finalizer's leader while it holds finalize leases (read once it is stopped,
    so they are certainly in flight), until the other leads the finalizer and those leases ran
    out; then SIGCONT. Returns the pids that led the finalizer, and the rows frozen mid-way."""
    keys = redis_handle.keys
    lease = keys.controller_lease("finalizer")
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        owner = await redis_handle.leases.owner(lease)
        leader = next((p for p in replicas if p.owns(owner)), None)
        if leader is not None:
            leader.process.send_signal(signal.SIGSTOP)
            held = await redis_handle.leases.held(keys.finalize_lease_pattern())
            in_flight = [keys.parse_finalize_lease(h.key) or "" for h in held
                         if leader.owns(h.owner)]
            if in_flight:
                break
            leader.process.send_signal(signal.SIGCONT)  # between two rows: try again
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the finalizer's leader was never caught mid-finalization")
    [other] = [p for p in replicas if p is not leader]
    try:
        async def taken_over() -> bool:
            return other.owns(await redis_handle.leases.owner(lease))

        await until(taken_over, 30, "the other control plane to lead the finalizer")
        await asyncio.sleep(1.5)  # the frozen one's finalize leases run out too
    finally:
        leader.process.send_signal(signal.SIGCONT)
    return {leader.pid, other.pid}, in_flight
