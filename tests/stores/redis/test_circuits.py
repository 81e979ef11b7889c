"""Circuit scripts on a real redis-server: every return code, the event log written with each
transition, the exact keyspace, one probe winner among many, replica presence."""

from __future__ import annotations

import asyncio

from shepherd.core.circuit import (
    CircuitPolicy,
    CircuitState,
    ProbeOutcome,
    TransitionKind,
)
from shepherd.stores.redis.circuits import (
    EVENTS_CAP,
    CircuitStore,
    FailureResult,
    ProbeClaim,
    ProbeEnd,
    ResetResult,
    SuccessResult,
)
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.keys import Keys
from tests.stores.redis.helpers import keyspace, ttls_s

POLICY = CircuitPolicy()
NOW = 1_700_000_000_000
S, K = CircuitState, TransitionKind


async def fail(
    store: CircuitStore, agent: str = "a", *, replica: str = "r1", now_ms: int = NOW,
    live: int = 1,
) -> FailureResult:
    return await store.record_failure(agent, replica=replica, now_ms=now_ms, live_replicas=live,
                                      policy=POLICY, reason="3 failures")


async def opened(store: CircuitStore, agent: str = "a") -> None:
    for _ in range(POLICY.failure_threshold):
        await fail(store, agent)


async def claim(store: CircuitStore, replica: str = "r1", now_ms: int = NOW + 30_000) -> ProbeClaim:
    return await store.claim_probe("a", replica=replica, now_ms=now_ms, policy=POLICY,
                                   reason="cooldown over")


async def test_failures_below_the_threshold_are_counted_and_the_third_opens(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    store = redis_handle.circuits
    assert [await fail(store) for _ in range(3)] == [
        FailureResult.COUNTED, FailureResult.COUNTED, FailureResult.OPENED]
    circuit = await store.read("a")
    assert (circuit.state, circuit.failures, circuit.opened_at_ms, circuit.next_probe_at_ms) == (
        S.OPEN, 3, NOW, NOW + 30_000)
    assert circuit.failing_replicas == {"r1": NOW}
    [event] = await store.events("a")
    assert (event.kind, event.from_state, event.to_state, event.by, event.at_ms) == (
        K.OPENED, S.CLOSED, S.OPEN, "r1", NOW)
    # no TTL: an open circuit stays open until probed or reset
    assert await ttls_s(redis_handle) == {keys.circuit("a"): -1, keys.circuit_events("a"): -1}


async def test_a_failure_on_an_open_circuit_changes_nothing(redis_handle: RedisHandle) -> None:
    store = redis_handle.circuits
    await opened(store)
    before = await store.read("a")
    assert await fail(store, now_ms=NOW + 5) is FailureResult.NOT_CLOSED
    assert await store.read("a") == before
    assert len(await store.events("a")) == 1


async def test_one_replica_alone_is_held_by_the_quorum_while_another_is_live(
    redis_handle: RedisHandle,
) -> None:
    store = redis_handle.circuits
    results = [await fail(store, live=2) for _ in range(5)]
    assert results == [FailureResult.COUNTED] * 2 + [FailureResult.HELD_BY_QUORUM] * 3
    assert (await store.read("a")).state is S.CLOSED
    # a second replica's failure within the window completes the quorum
    assert await fail(store, replica="r2", live=2, now_ms=NOW + 1_000) is FailureResult.OPENED


async def test_a_failure_outside_the_window_does_not_count_for_the_quorum(
    redis_handle: RedisHandle,
) -> None:
    store = redis_handle.circuits
    await fail(store, replica="r2", live=2, now_ms=NOW)
    later = NOW + POLICY.quorum_window_ms + 1
    results = [await fail(store, live=2, now_ms=later) for _ in range(2)]
    assert results == [FailureResult.COUNTED, FailureResult.HELD_BY_QUORUM]
    assert (await store.read("a")).failing_replicas == {"r1": later}  # r2 forgotten


async def test_a_success_forgets_counted_failures_and_is_free_when_there_are_none(
    redis_handle: RedisHandle,
) -> None:
    store = redis_handle.circuits
    assert await store.record_success("a") is SuccessResult.CLEAN
    await fail(store)
    assert await store.record_success("a") is SuccessResult.RESET
    assert await keyspace(redis_handle) == set()


async def test_a_success_does_not_close_an_open_circuit(redis_handle: RedisHandle) -> None:
    store = redis_handle.circuits
    await opened(store)
    assert await store.record_success("a") is SuccessResult.NOT_CLOSED
    assert (await store.read("a")).state is S.OPEN


async def test_the_probe_claim_answers_closed_not_due_won_and_held(
    redis_handle: RedisHandle,
) -> None:
    store = redis_handle.circuits
    assert await claim(store) is ProbeClaim.CLOSED
    await opened(store)
    assert await claim(store, now_ms=NOW + 29_999) is ProbeClaim.NOT_DUE
    assert await claim(store, "r1") is ProbeClaim.WON
    assert await claim(store, "r2") is ProbeClaim.HELD
    circuit = await store.read("a")
    assert (circuit.state, circuit.probe_owner, circuit.probe_until_ms) == (
        S.HALF_OPEN, "r1", NOW + 30_000 + POLICY.probe_lease_ms)
    assert [e.kind for e in await store.events("a")] == [K.PROBING, K.OPENED]


async def test_a_probe_whose_owner_went_silent_is_retaken_after_its_lease(
    redis_handle: RedisHandle,
) -> None:
    store = redis_handle.circuits
    await opened(store)
    await claim(store, "r1")
    after_lease = NOW + 30_000 + POLICY.probe_lease_ms
    assert await claim(store, "r2", now_ms=after_lease) is ProbeClaim.WON
    outcome = ProbeOutcome(K.CLOSED, S.CLOSED, 0, None)
    ended = await store.finish_probe("a", replica="r1", now_ms=after_lease, outcome=outcome,
                                     reason="late")
    assert ended is ProbeEnd.NOT_OWNER
    assert (await store.read("a")).probe_owner == "r2"


async def test_of_fifty_replicas_claiming_at_once_exactly_one_wins(
    redis_handle: RedisHandle,
) -> None:
    store = redis_handle.circuits
    await opened(store)
    results = await asyncio.gather(*(claim(store, f"r{i}") for i in range(50)))
    assert results.count(ProbeClaim.WON) == 1
    assert results.count(ProbeClaim.HELD) == 49


async def test_a_successful_probe_closes_the_circuit_and_keeps_only_the_events(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    store = redis_handle.circuits
    await opened(store)
    await claim(store)
    outcome = ProbeOutcome(K.CLOSED, S.CLOSED, 0, None)
    ended = await store.finish_probe("a", replica="r1", now_ms=NOW + 30_010, outcome=outcome,
                                     reason="probe answered")
    assert ended is ProbeEnd.APPLIED
    assert (await store.read("a")).state is S.CLOSED
    assert [e.kind for e in await store.events("a")] == [K.CLOSED, K.PROBING, K.OPENED]
    assert await keyspace(redis_handle) == {keys.circuit_events("a")}


async def test_a_failed_probe_reopens_with_the_next_probe_time(redis_handle: RedisHandle) -> None:
    store = redis_handle.circuits
    await opened(store)
    await claim(store)
    outcome = ProbeOutcome(K.REOPENED, S.OPEN, 1, NOW + 90_000)
    assert await store.finish_probe("a", replica="r1", now_ms=NOW + 30_000, outcome=outcome,
                                    reason="probe failed") is ProbeEnd.APPLIED
    circuit = await store.read("a")
    assert (circuit.state, circuit.failed_probes, circuit.next_probe_at_ms) == (
        S.OPEN, 1, NOW + 90_000)
    assert circuit.probe_owner is None and circuit.probe_until_ms is None


async def test_only_the_owner_may_end_a_probe(redis_handle: RedisHandle) -> None:
    store = redis_handle.circuits
    outcome = ProbeOutcome(K.DORMANT, S.DORMANT, 10, NOW + 3_600_000)
    assert await store.finish_probe("a", replica="r1", now_ms=NOW, outcome=outcome,
                                    reason="x") is ProbeEnd.NOT_OWNER
    await opened(store)
    await claim(store, "r1")
    assert await store.finish_probe("a", replica="r2", now_ms=NOW, outcome=outcome,
                                    reason="x") is ProbeEnd.NOT_OWNER
    assert (await store.read("a")).state is S.HALF_OPEN


async def test_reset_answers_nothing_forgotten_and_closed(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    store = redis_handle.circuits
    assert await store.reset("a", actor="op", now_ms=NOW, reason="r") is ResetResult.NOTHING
    await fail(store)
    assert await store.reset("a", actor="op", now_ms=NOW, reason="r") is ResetResult.FORGOTTEN
    assert await keyspace(redis_handle) == set()
    await opened(store)
    assert await store.reset("a", actor="op", now_ms=NOW, reason="by op") is ResetResult.CLOSED
    [reset, _] = await store.events("a")
    assert (reset.kind, reset.from_state, reset.to_state, reset.by) == (
        K.RESET, S.OPEN, S.CLOSED, "op")
    assert await keyspace(redis_handle) == {keys.circuit_events("a")}


async def test_the_event_log_is_capped(redis_handle: RedisHandle) -> None:
    store = redis_handle.circuits
    for i in range(EVENTS_CAP):
        await opened(store)
        await store.reset("a", actor="op", now_ms=NOW + i, reason="r")
    assert len(await store.events("a")) == EVENTS_CAP
    assert (await store.events("a", limit=3))[0].kind is K.RESET


async def test_clear_forgets_state_and_events_of_a_name(redis_handle: RedisHandle) -> None:
    store = redis_handle.circuits
    await opened(store)
    await opened(store, "b")
    await store.clear("a")
    assert (await store.read("a")).state is S.CLOSED and await store.events("a") == []
    assert (await store.read("b")).state is S.OPEN


async def test_read_many_reads_every_named_circuit(redis_handle: RedisHandle) -> None:
    store = redis_handle.circuits
    await opened(store, "b")
    circuits = await store.read_many(["a", "b"])
    assert {n: c.state for n, c in circuits.items()} == {"a": S.CLOSED, "b": S.OPEN}
    assert await store.read_many([]) == {}


async def test_replicas_announce_themselves_for_a_ttl_and_withdraw(
    redis_handle: RedisHandle, keys: Keys
) -> None:
    replicas = redis_handle.replicas
    await replicas.announce("host:1:aa", NOW, 15_000)
    await replicas.announce("host:2:bb", NOW, 40)
    assert await replicas.live() == ["host:1:aa", "host:2:bb"]
    assert 0 < await redis_handle.client.pttl(keys.replica("host:1:aa")) <= 15_000
    await asyncio.sleep(0.1)
    assert await replicas.live() == ["host:1:aa"]
    await replicas.withdraw("host:1:aa")
    assert await replicas.live() == [] and await keyspace(redis_handle) == set()
