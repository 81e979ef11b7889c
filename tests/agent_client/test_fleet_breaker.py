"""The fleet breaker end to end: real sockets (tests/fixtures/servers.py), a real runtime behind a
dropping proxy, and circuit state in a real redis-server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

import shepherd.agent_client.client as client_module
import shepherd.agent_client.fleet_breaker as breaker_module
from shepherd.agent_client.fleet_breaker import CACHE_S, RedisBreaker
from shepherd.agent_client.pool import DROP_GRACE_S, AgentClientPool
from shepherd.agent_client.protocol import Health
from shepherd.core.circuit import CircuitPolicy, CircuitState, TransitionKind
from shepherd.core.classification import Verdict
from shepherd.core.clock import ManualClock
from shepherd.core.ids import AgentName
from shepherd.errors import (
    AgentConnectionDropped,
    AgentProtocolError,
    AgentUnreachable,
    CircuitOpen,
)
from shepherd.services.circuits import reset_circuit
from shepherd.stores.redis.connection import RedisHandle, handle_for
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry
from tests.agent_client.conftest import Monotonic
from tests.fixtures.runtimes import AGENT_TOKEN, StartRuntime
from tests.fixtures.servers import (
    DroppingProxy,
    accept_and_close,
    closed_port,
    dropping_proxy,
    full_backlog,
    healthy,
    reset,
    serve,
    server_error,
    silent,
)

S = CircuitState
V = Verdict


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent server or a full backlog costs a fraction of a second, not the real timeouts."""
    monkeypatch.setattr(client_module, "REQUEST_TIMEOUT_S", 0.3)
    monkeypatch.setattr(client_module, "CONNECT_TIMEOUT_S", 0.3)


async def url_for(stack: AsyncExitStack, server: str) -> str:
    behaviours = {"healthy": healthy, "server_error": server_error,
                  "accept_and_close": accept_and_close, "reset": reset, "silent": silent}
    if server == "closed_port":
        return closed_port()
    if server == "full_backlog":
        return stack.enter_context(full_backlog())
    return (await stack.enter_async_context(serve(behaviours[server]))).url


# (server, is /health) -> verdict, error raised (None: an answer)
TABLE = [
    ("healthy", False, V.SUCCESS, None),
    ("healthy", True, V.SUCCESS, None),
    ("server_error", False, V.SUCCESS, AgentProtocolError),
    ("server_error", True, V.SUCCESS, AgentProtocolError),
    ("closed_port", False, V.FAILURE, AgentUnreachable),
    ("closed_port", True, V.FAILURE, AgentUnreachable),
    ("full_backlog", False, V.FAILURE, AgentUnreachable),  # connect timeout
    ("full_backlog", True, V.FAILURE, AgentUnreachable),
    ("accept_and_close", False, V.NEUTRAL, AgentConnectionDropped),  # protocol error
    ("accept_and_close", True, V.FAILURE, AgentConnectionDropped),
    ("reset", False, V.NEUTRAL, AgentConnectionDropped),  # RST: connection reset
    ("reset", True, V.NEUTRAL, AgentConnectionDropped),
    ("silent", False, V.NEUTRAL, AgentUnreachable),  # read timeout
    ("silent", True, V.FAILURE, AgentUnreachable),
]


@pytest.mark.usefixtures("short_timeouts")
@pytest.mark.parametrize(("server", "probe", "verdict", "error"), TABLE)
async def test_every_row_of_the_classification_table_end_to_end(
    breaker_pool: AgentClientPool, fleet_breaker: RedisBreaker, redis_handle: RedisHandle,
    server: str, probe: bool, verdict: Verdict, error: type[Exception] | None,
) -> None:
    await fleet_breaker.record("a", V.FAILURE, "seed")  # one failure: success resets it
    async with AsyncExitStack() as stack:
        client = breaker_pool.client_for("a", await url_for(stack, server), "t")
        call = client.health() if probe else client.list_executions()
        if error is None:
            await call
        else:
            with pytest.raises(error) as raised:
                await call
            if error is AgentUnreachable:
                assert not isinstance(raised.value, AgentConnectionDropped | CircuitOpen)
    failures = (await redis_handle.circuits.read("a")).failures
    assert failures == {V.SUCCESS: 0, V.NEUTRAL: 1, V.FAILURE: 2}[verdict]


async def test_a_connect_error_is_neutral_within_the_drop_grace_and_a_failure_after_it(
    breaker_pool: AgentClientPool, redis_handle: RedisHandle, monotonic: Monotonic
) -> None:
    async with serve(accept_and_close) as served:
        client = breaker_pool.client_for("a", served.url, "t")
        with pytest.raises(AgentConnectionDropped):
            await client.list_executions()
    # the server is gone: its port refuses connections now
    monotonic.advance(DROP_GRACE_S - 0.01)
    with pytest.raises(AgentConnectionDropped):
        await client.list_executions()
    assert (await redis_handle.circuits.read("a")).failures == 0
    monotonic.advance(0.02)
    with pytest.raises(AgentUnreachable) as raised:
        await client.list_executions()
    assert not isinstance(raised.value, AgentConnectionDropped)
    assert (await redis_handle.circuits.read("a")).failures == 1


@pytest.fixture
async def proxied_runtime(start_runtime: StartRuntime) -> AsyncIterator[DroppingProxy]:
    runtime = await start_runtime("a", ["cat"])
    port = int(runtime.url.rsplit(":", 1)[1])
    async with dropping_proxy(port) as proxy:
        yield proxy


async def burst(client_calls: int, breaker_pool: AgentClientPool, url: str) -> list[object]:
    client = breaker_pool.client_for("a", url, AGENT_TOKEN)
    return await asyncio.gather(*(client.health() for _ in range(client_calls)),
                                return_exceptions=True)


@pytest.mark.parametrize("concurrency", [10, 100])
@pytest.mark.parametrize("share", [0.5, 1.0])
async def test_a_drop_burst_on_a_healthy_agent_records_no_failure(
    breaker_pool: AgentClientPool, redis_handle: RedisHandle, proxied_runtime: DroppingProxy,
    concurrency: int, share: float,
) -> None:
    proxy = proxied_runtime
    await burst(3, breaker_pool, proxy.url)  # warm keep-alive connections in the pool
    proxy.share = share
    proxy.drop_all()  # the pooled connections die under the burst
    results = await burst(concurrency, breaker_pool, proxy.url)
    unexpected = [r for r in results if not isinstance(r, Health | AgentConnectionDropped)]
    assert unexpected == []
    assert any(isinstance(r, AgentConnectionDropped) for r in results)
    circuit = await redis_handle.circuits.read("a")
    assert (circuit.state, circuit.failures) == (S.CLOSED, 0)
    assert await redis_handle.circuits.events("a") == []


async def test_siblings_refused_during_an_outage_right_after_a_drop_count_nothing(
    breaker_pool: AgentClientPool, redis_handle: RedisHandle, proxied_runtime: DroppingProxy,
) -> None:
    proxy = proxied_runtime
    client = breaker_pool.client_for("a", proxy.url, AGENT_TOKEN)
    polls = [asyncio.create_task(client.events(after=0, wait_s=5)) for _ in range(5)]
    while proxy.requests["/v1/events"] < 5:
        await asyncio.sleep(0.01)
    await proxy.outage()  # the long-polls are cut, and the port refuses for a moment
    dropped = await asyncio.gather(*polls, return_exceptions=True)
    assert all(isinstance(r, AgentConnectionDropped) for r in dropped), dropped
    results = await burst(100, breaker_pool, proxy.url)
    assert all(isinstance(r, AgentConnectionDropped) for r in results)
    assert (await redis_handle.circuits.read("a")).failures == 0


async def test_an_outage_opens_after_exactly_the_threshold_and_one_probe_closes_it(
    breaker_pool: AgentClientPool, fleet_breaker: RedisBreaker, redis_handle: RedisHandle,
    proxied_runtime: DroppingProxy, clock: ManualClock, telemetry: Telemetry,
) -> None:
    proxy = proxied_runtime
    client = breaker_pool.client_for("a", proxy.url, AGENT_TOKEN)
    await proxy.outage()
    states = []
    for _ in range(3):
        with pytest.raises(AgentUnreachable) as raised:
            await client.list_executions()
        assert not isinstance(raised.value, CircuitOpen)
        states.append((await redis_handle.circuits.read("a")).state)
    assert states == [S.CLOSED, S.CLOSED, S.OPEN]
    with pytest.raises(CircuitOpen, match="circuit open"):
        await client.list_executions()
    await proxy.resume()
    assert await fleet_breaker.probe("a", client) is None  # cooldown not over
    clock.advance(30)
    with pytest.raises(CircuitOpen):  # due, but ordinary calls never probe
        await client.list_executions()
    assert proxy.requests == {}
    assert await fleet_breaker.probe("a", client) is TransitionKind.CLOSED
    assert proxy.requests == {"/health": 1}
    assert (await redis_handle.circuits.read("a")).state is S.CLOSED
    await client.list_executions()
    kinds = [e.kind.value for e in reversed(await redis_handle.circuits.events("a"))]
    assert kinds == ["opened", "probing", "closed"]
    exposition = telemetry.registry.get_sample_value(
        "shepherd_circuit_transitions_total", {"agent": "a", "kind": "opened"})
    assert exposition == 1


async def test_failed_probes_lengthen_the_cooldown_then_park_the_circuit_dormant(
    breaker_pool: AgentClientPool, fleet_breaker: RedisBreaker, redis_handle: RedisHandle,
    clock: ManualClock,
) -> None:
    client = breaker_pool.client_for("a", closed_port(), "t")
    for _ in range(3):
        await fleet_breaker.record("a", V.FAILURE, "down")
    waits = []
    for _ in range(10):
        circuit = await redis_handle.circuits.read("a")
        clock.set(circuit.next_probe_at_ms or 0)
        waits.append((circuit.next_probe_at_ms or 0) - (circuit.changed_at_ms or 0))
        assert await fleet_breaker.probe("a", client) in (TransitionKind.REOPENED,
                                                         TransitionKind.DORMANT)
    assert waits == [30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000, 300_000,
                     300_000, 300_000]
    circuit = await redis_handle.circuits.read("a")
    assert (circuit.state, circuit.failed_probes) == (S.DORMANT, 10)
    assert (circuit.next_probe_at_ms or 0) - clock.now_ms() == 3_600_000


async def test_the_quorum_keeps_one_failing_replica_from_opening_the_circuit(
    redis_handle: RedisHandle, clock: ManualClock, monotonic: Monotonic,
) -> None:
    breakers = [RedisBreaker(redis_handle.circuits, redis_handle.replicas, clock, replica=r,
                             monotonic=monotonic) for r in ("r1", "r2")]
    assert [await b.heartbeat() for b in breakers] == [1, 2]  # r1 announced itself alone
    monotonic.advance(5)  # a third of the presence TTL later r1 beats again, and sees r2
    assert await breakers[0].heartbeat() == 2
    broken = AgentClientPool(breakers[0], monotonic=monotonic)
    fine = AgentClientPool(breakers[1], monotonic=monotonic)
    try:
        cut_off = broken.client_for("a", closed_port(), "t")
        for _ in range(5):
            with pytest.raises(AgentUnreachable) as raised:
                await cut_off.list_executions()
            assert not isinstance(raised.value, CircuitOpen)
        circuit = await redis_handle.circuits.read("a")
        assert (circuit.state, circuit.failures) == (S.CLOSED, 5)
        async with serve(healthy) as served:
            reachable = fine.client_for("a", served.url, "t")
            assert await breakers[1].confirm("a", reachable) is V.SUCCESS
        assert (await redis_handle.circuits.read("a")).failures == 0
        for _ in range(3):
            with pytest.raises(AgentUnreachable):
                await cut_off.list_executions()
        # the second replica cannot reach the agent either: now the fleet agrees
        assert await breakers[1].confirm("a", fine.client_for("a", closed_port(), "t")) is \
            V.FAILURE
        assert (await redis_handle.circuits.read("a")).state is S.OPEN
    finally:
        await broken.aclose()
        await fine.aclose()


async def test_the_gate_sees_another_replicas_change_once_its_cached_read_is_stale(
    redis_handle: RedisHandle, clock: ManualClock, monotonic: Monotonic,
) -> None:
    breaker = RedisBreaker(redis_handle.circuits, redis_handle.replicas, clock, replica="r1",
                           monotonic=monotonic)
    await breaker.before("a")
    for _ in range(3):  # another replica opens the circuit
        await redis_handle.circuits.record_failure(
            "a", replica="r2", now_ms=clock.now_ms(), live_replicas=1, policy=CircuitPolicy(),
            reason="down")
    await breaker.before("a")  # this replica's read is still fresh
    monotonic.advance(CACHE_S)
    with pytest.raises(CircuitOpen):
        await breaker.before("a")
    assert await breaker.admits("a") is False


@pytest.fixture
async def unreachable_redis(tmp_path: object) -> AsyncIterator[RedisHandle]:
    from redis.asyncio import Redis

    client = Redis(unix_socket_path="/nonexistent/shepherd-test.sock", decode_responses=True)
    handle = handle_for(client, "shepherd:")
    yield handle
    await client.aclose()


async def test_with_redis_unreachable_the_breaker_fails_open_and_says_so_once_a_minute(
    unreachable_redis: RedisHandle, clock: ManualClock, monotonic: Monotonic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    telemetry = Telemetry()
    breaker = RedisBreaker(unreachable_redis.circuits, unreachable_redis.replicas, clock,
                           replica="r1", telemetry=telemetry)
    pool = AgentClientPool(breaker, monotonic=monotonic)
    caplog.set_level(logging.WARNING, "shepherd.agent_client.breaker")
    try:
        async with serve(healthy) as served:
            client = pool.client_for("a", served.url, "t")
            for _ in range(3):
                await client.health()
            clock.advance(61)
            await client.health()
    finally:
        await pool.aclose()
    assert served.requests["/health"] == 4
    assert await breaker.admits("a") is True
    said = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(said) == 2
    let_through = telemetry.registry.get_sample_value(
        "shepherd_circuit_fail_open_total", {"operation": "read circuit"})
    assert let_through == 5


async def test_a_redis_that_hangs_is_unreachable_too(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis.asyncio import Redis

    monkeypatch.setattr(breaker_module, "REDIS_TIMEOUT_S", 0.1)
    async with serve(silent) as served:
        client = Redis(host="127.0.0.1", port=served.port, decode_responses=True)
        handle = handle_for(client, "shepherd:")
        breaker = RedisBreaker(handle.circuits, handle.replicas, clock, replica="r1")
        try:
            await breaker.before("a")  # let through, after the timeout
        finally:
            await client.aclose()


async def test_every_transition_this_replica_makes_is_a_circuit_event_for_live_viewers(
    redis_handle: RedisHandle, clock: ManualClock, db: Database, monotonic: Monotonic,
) -> None:
    await db.agents.create(name=AgentName("a"), url=None, command=None)
    breaker = RedisBreaker(redis_handle.circuits, redis_handle.replicas, clock, replica="r1",
                           events=db.fleet_events)
    pool = AgentClientPool(breaker, monotonic=monotonic)
    try:
        client = pool.client_for("a", closed_port(), "t")
        for _ in range(3):
            await breaker.record("a", V.FAILURE, "down")
        clock.advance(30)
        assert await breaker.probe("a", client) is TransitionKind.REOPENED
        await reset_circuit(db, redis_handle.circuits, "a", actor="ops", now_ms=clock.now_ms(),
                            telemetry=Telemetry())
    finally:
        await pool.aclose()
    events = [e for e in await db.fleet_events.read(0, 50) if e.type == "circuit.changed"]
    assert [(e.agent, e.data["kind"], e.data["state"], e.data["by"]) for e in events] == [
        ("a", "opened", "open", "r1"), ("a", "probing", "half_open", "r1"),
        ("a", "reopened", "open", "r1"), ("a", "reset", "closed", "ops")]
    assert "down" in events[0].data["reason"]
