"""Two control-plane processes (``shepherd serve``) sharing one Redis and one SQL database, with an
agent whose circuit is open and whose runtime holds each connection a while and closes it
unanswered: every probe fails, slowly, while both replicas race for the next one many times a
second. The ``/health`` calls the server received show exactly one probe per cooldown, never two
at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shepherd.core.circuit import CircuitEvent, CircuitPolicy, CircuitState, TransitionKind
from shepherd.stores.redis.circuits import CircuitStore
from shepherd.stores.redis.connection import RedisHandle
from tests.fixtures.fleet import free_port
from tests.fixtures.servers import serve, slow_close

COOLDOWN_S = 1.0
PROBES = 6  # failed probes to watch: each one waits a cooldown first
REPLICA_ENV = {
    "SHEPHERD_BREAKER_COOLDOWN_S": str(COOLDOWN_S),
    "SHEPHERD_BREAKER_COOLDOWN_MAX_S": str(COOLDOWN_S),
    # Both replicas race for every due probe many times a second (an interval that does not
    # divide the cooldown, so neither replica's ticks are always first).
    "SHEPHERD_BREAKER_PROBE_INTERVAL_S": "0.07",
    "SHEPHERD_MONITOR_INTERVAL_S": "0.5",
    "SHEPHERD_LOG_LEVEL": "WARNING",
}
START_TIMEOUT_S = 60.0


@contextmanager
def replicas(tmp_path: Path, redis_socket: Path, count: int) -> Iterator[list[str]]:
    """``count`` ``shepherd serve`` processes sharing one SQLite file, one Redis and the fleet's
    agent token; each has a data dir of its own (a data dir holds one control plane)."""
    env = {**os.environ, **REPLICA_ENV, "SHEPHERD_REDIS_URL": f"unix://{redis_socket}",
           "SHEPHERD_AGENT_TOKEN": "replica-test-agent-token-0123456789",
           "SHEPHERD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"}
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for index in range(count):  # one after the other: the first creates tokens and schema
            port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "shepherd", "serve", "--port", str(port)],
                env={**env, "SHEPHERD_DATA_DIR": str(tmp_path / f"data-{index}")},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            urls.append(f"http://127.0.0.1:{port}")
            wait_ready(urls[-1], processes[-1])
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"shepherd serve at {url} did not become ready (exit {process.poll()})")


async def test_two_replicas_sharing_redis_make_exactly_one_probe_per_cooldown(
    tmp_path: Path, redis_socket: Path, redis_handle: RedisHandle,
) -> None:
    circuits = redis_handle.circuits
    async with serve(slow_close) as agent:
        with replicas(tmp_path, redis_socket, 2) as urls:
            token = (tmp_path / "data-0" / "admin.token").read_text().strip()
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as api:
                created = await api.post(f"{urls[0]}/api/agents",
                                         json={"name": "target", "url": agent.url})
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
                shown = (await api.get(f"{urls[1]}/api/agents/target")).json()["circuit"]
        assert shown["state"] in ("open", "half_open")
    events = list(reversed(await circuits.events("target")))
    probes = [e for e in events if e.kind is TransitionKind.PROBING]
    assert agent.requests["/health"] - before >= PROBES
    assert agent.max_in_flight == 1
    # one /health call per claimed probe: no replica ever probed without winning the claim
    assert len(probes) == agent.requests["/health"] - before
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
