"""Two control-plane processes (``shepherd serve``) sharing one Redis and one SQL database, with an
agent whose circuit is open and whose runtime holds each connection a while and closes it
unanswered: every probe fails, slowly, while both replicas race for the next one many times a
second. The ``/health`` calls the server received show exactly one probe per cooldown, never two
at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from shepherd.core.circuit import CircuitEvent, CircuitPolicy, CircuitState, TransitionKind
from shepherd.stores.redis.circuits import CircuitStore
from shepherd.stores.redis.connection import RedisHandle
from tests.fixtures.planes import (
    admin_client,
    assert_planes_settled,
    planes,
    shared_env,
    start_plane,
    stop_planes,
)
from tests.fixtures.servers import serve, slow_close

COOLDOWN_S = 1.0
PROBES = 6  # failed probes to watch: each one waits a cooldown first
BREAKER_ENV = {
    "SHEPHERD_BREAKER_COOLDOWN_S": str(COOLDOWN_S),
    "SHEPHERD_BREAKER_COOLDOWN_MAX_S": str(COOLDOWN_S),
    # Both replicas race for every due probe many times a second (an interval that does not
    # divide the cooldown, so neither replica's ticks are always first).
    "SHEPHERD_BREAKER_PROBE_INTERVAL_S": "0.07",
}


async def test_two_replicas_sharing_redis_make_exactly_one_probe_per_cooldown(
    tmp_path: Path, redis_socket: Path, redis_handle: RedisHandle,
) -> None:
    circuits = redis_handle.circuits
    env = shared_env(redis_socket, f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}", **BREAKER_ENV)
    async with serve(slow_close) as agent:
        async with planes(tmp_path, env, 2) as (first, second), admin_client(first) as api:
            created = await api.post("/api/agents", json={"name": "target", "url": agent.url})
            assert created.status_code == 201, created.text
            for _ in range(3):  # the agent went down: its circuit opens
                await circuits.record_failure(
                    "target", replica="test", now_ms=time.time_ns() // 1_000_000,
                    live_replicas=1, policy=CircuitPolicy(cooldown_s=COOLDOWN_S),
                    reason="outage")
            assert (await circuits.read("target")).state is CircuitState.OPEN
            # The replicas' monitors met the new agent with a health check of their own
            # while its circuit was still closed: count only what comes after.
            await asyncio.sleep(0.5)
            before = agent.requests["/health"] - len(await _probes(circuits))
            deadline = time.monotonic() + 30
            while agent.requests["/health"] - before < PROBES and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(await redis_handle.replicas.live()) == 2
            async with admin_client(second, first) as other:
                shown = (await other.get("/api/agents/target")).json()["circuit"]
            assert shown["state"] in ("open", "half_open")
        events = list(reversed(await circuits.events("target")))
        health_calls, most_in_flight = agent.requests["/health"] - before, agent.max_in_flight
        # The stores the race left behind are settled (a control plane of its own checks, after
        # the counts: its canary asks the runtime's /health too).
        after = await start_plane(tmp_path, 2, env)
        try:
            await assert_planes_settled(after, first)
        finally:
            stop_planes([after])
    probes = [e for e in events if e.kind is TransitionKind.PROBING]
    assert health_calls >= PROBES
    assert most_in_flight == 1
    # one /health call per claimed probe: no replica ever probed without winning the claim. A
    # probe claimed as the replicas stopped (the log's last event, with no outcome) may have
    # been cut short before its call reached the server.
    cut_short = int(events[-1].kind is TransitionKind.PROBING)
    assert health_calls <= len(probes) <= health_calls + cut_short
    # claim, outcome, claim, outcome...: never two probes in flight
    kinds = [e.kind for e in events[1:]]
    assert kinds[::2] == [TransitionKind.PROBING] * len(kinds[::2])
    assert set(kinds[1::2]) == {TransitionKind.REOPENED}
    # and each claim waited out the cooldown set by the probe before it
    ends = [e.at_ms for e in events[2::2]]
    starts = [e.at_ms for e in events[3::2]]
    assert all(start >= end + COOLDOWN_S * 1000 for end, start in zip(ends, starts, strict=False))
    assert {e.by for e in probes} <= {e.by for e in events if e.kind is TransitionKind.REOPENED}


async def _probes(circuits: CircuitStore) -> list[CircuitEvent]:
    return [e for e in await circuits.events("target") if e.kind is TransitionKind.PROBING]
