"""The fleet-wide circuit breaker: one circuit per agent in Redis, shared by every replica.

``RedisBreaker`` is the ``BreakerHook`` every agent call goes through. The gate (``before``) reads
the agent's circuit and refuses with ``CircuitOpen`` unless it is closed. Verdicts (``record``)
count failures in Redis, where a script opens the circuit after ``failure_threshold`` in a row,
provided the quorum agrees: with more than one live replica (``heartbeat`` keeps this replica's
presence key and counts the others), failures from one replica alone never open it. A success
forgets the failures; it is only written when this replica knows failures were counted. The gate
reads a circuit from Redis at most every ``CACHE_S`` per agent (and again after any change this
replica makes), so the healthy path costs no Redis round trip at all; a change made by another
replica is seen within ``CACHE_S``, far less than any cooldown, so no replica can send a call into
a half-open circuit on stale news (a circuit is open a whole cooldown before it goes half-open).

Probing is the breaker's own business, driven by the prober controller: ``probe`` claims the one
half-open probe fleet-wide, makes a real ``/health`` call past the gate and applies the verdict
(``core.circuit.decide_probe_outcome``); ``confirm`` is this replica's own ``/health`` look at a
circuit the quorum holds closed. No execution is ever sent into a half-open circuit.

Every state change this replica makes is logged, counted and, given a fleet event log, recorded
as a ``circuit.changed`` event for live viewers (after the change, never failing it).

Fail-open: when Redis does not answer (or takes longer than ``REDIS_TIMEOUT_S``) every call goes
through, the breaker logs it at most once a minute and counts it in
``shepherd_circuit_fail_open_total``. Must not: decide what an outcome counts as
(``core.classification``) or what a probe leads to (``core.circuit``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from shepherd.agent_client.client import AgentClient
from shepherd.core.circuit import (
    Circuit,
    CircuitPolicy,
    CircuitState,
    TransitionKind,
    decide_probe_outcome,
    retry_after_s,
)
from shepherd.core.classification import Verdict
from shepherd.core.clock import Clock
from shepherd.core.fleet_events import circuit_changed
from shepherd.errors import CircuitOpen, RedisStoreError
from shepherd.stores.redis.circuits import (
    CircuitStore,
    FailureResult,
    ProbeClaim,
    ProbeEnd,
    SuccessResult,
)
from shepherd.stores.redis.replicas import ReplicaStore
from shepherd.stores.sql.fleet_events import FleetEventLog
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.agent_client.breaker")
T = TypeVar("T")

# Redis answers in well under a millisecond; one that takes a second is as good as gone, and an
# agent call must not hang behind it.
REDIS_TIMEOUT_S = 1.0
# An unreachable Redis (or a replica failing alone) is said once a minute, not once per call.
FAIL_OPEN_LOG_EVERY_MS = 60_000
# A replica that stopped heartbeating is not counted for the quorum after this long.
DEFAULT_PRESENCE_TTL_S = 15.0
# A monitor waiting on an open circuit looks again at least this often, to notice a reset or a
# closed probe soon, and well within its own lease (poll wait + 10 s).
RETRY_CEILING_S = 10.0
# How long the gate trusts a circuit it read: a quarter second keeps Redis off the hot path of
# every agent call, and is a hundred times shorter than the shortest sensible cooldown.
CACHE_S = 0.25


def count_transition(telemetry: Telemetry, agent: str, kind: TransitionKind) -> None:
    telemetry.counter(
        "shepherd_circuit_transitions", "Circuit state changes made by this process, by kind.",
        ["agent", "kind"],
    ).labels(agent=agent, kind=kind.value).inc()


class RedisBreaker:
    def __init__(
        self, circuits: CircuitStore, replicas: ReplicaStore, clock: Clock, *, replica: str,
        policy: CircuitPolicy | None = None, telemetry: Telemetry | None = None,
        presence_ttl_s: float = DEFAULT_PRESENCE_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
        events: FleetEventLog | None = None,
    ) -> None:
        self.replica = replica
        self._events = events
        self.policy = policy or CircuitPolicy()
        self._circuits = circuits
        self._replicas = replicas
        self._clock = clock
        self._telemetry = telemetry or Telemetry()
        self._presence_ttl_ms = round(presence_ttl_s * 1000)
        self._live_replicas = 1
        self._heartbeat_at: float | None = None  # monotonic: presence TTLs are real time
        # Agents with failures counted, as far as this replica has seen: only their successes
        # need a write.
        self._dirty: set[str] = set()
        self._fail_open_logged_ms: int | None = None
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Circuit]] = {}  # agent -> (read at, circuit)
        self._held_logged_ms: dict[str, int] = {}  # agent -> when "held by quorum" was said
        self._fail_open = self._telemetry.counter(
            "shepherd_circuit_fail_open",
            "Breaker operations let through (fail-open) because Redis did not answer.",
            ["operation"],
        )

    @property
    def live_replicas(self) -> int:
        return self._live_replicas

    # --- the gate -------------------------------------------------------------------------

    async def before(self, agent: str) -> None:
        circuit = await self._read(agent)
        if circuit is None or circuit.admits:
            return
        raise CircuitOpen(f"agent {agent}: {self._describe(circuit)}")

    async def admits(self, agent: str) -> bool:
        circuit = await self._read(agent)
        return circuit is None or circuit.admits

    async def retry_after_s(self, agent: str, floor_s: float) -> float:
        circuit = await self._read(agent)
        if circuit is None:
            return floor_s
        return retry_after_s(circuit, self._clock.now_ms(), floor_s, RETRY_CEILING_S)

    async def record(self, agent: str, verdict: Verdict, detail: str = "") -> None:
        if verdict is Verdict.FAILURE:
            await self._count_failure(agent, detail)
        elif verdict is Verdict.SUCCESS and agent in self._dirty:
            self._cache.pop(agent, None)
            result = await self._redis(
                "count success", self._circuits.record_success(agent), SuccessResult.NOT_CLOSED
            )
            if result is not SuccessResult.NOT_CLOSED:
                self._dirty.discard(agent)

    async def _read(self, agent: str) -> Circuit | None:
        """The agent's circuit, from the cache while it is fresh; None when Redis is away."""
        cached = self._cache.get(agent)
        if cached is not None and self._monotonic() - cached[0] < CACHE_S:
            return cached[1]
        circuit = await self._redis("read circuit", self._circuits.read(agent), None)
        if circuit is not None:
            self._remember(circuit)
        return circuit

    def _remember(self, circuit: Circuit) -> None:
        self._cache[circuit.agent] = (self._monotonic(), circuit)
        if circuit.failures:
            self._dirty.add(circuit.agent)
        else:
            self._dirty.discard(circuit.agent)

    async def _count_failure(self, agent: str, detail: str) -> None:
        self._dirty.add(agent)
        self._cache.pop(agent, None)
        threshold = self.policy.failure_threshold
        result = await self._redis("count failure", self._circuits.record_failure(
            agent, replica=self.replica, now_ms=self._clock.now_ms(),
            live_replicas=self._live_replicas, policy=self.policy,
            reason=f"failure threshold ({threshold} in a row) reached; last: {detail or '?'}",
        ), None)
        if result is FailureResult.OPENED:
            await self._transition(agent, TransitionKind.OPENED, CircuitState.OPEN,
                                   f"last failure: {detail}")
        elif result is FailureResult.HELD_BY_QUORUM:
            self._say_held(agent)

    def _say_held(self, agent: str) -> None:
        """A replica failing alone is worth a line (its own network may be broken), once a
        minute per agent rather than once per call."""
        now, last = self._clock.now_ms(), self._held_logged_ms.get(agent)
        if last is None or now - last >= FAIL_OPEN_LOG_EVERY_MS:
            self._held_logged_ms[agent] = now
            log.warning("circuit of %s: at its failure threshold, but only %s sees failures "
                        "while other replicas are live; waiting for one to confirm", agent,
                        self.replica)

    def _describe(self, circuit: Circuit) -> str:
        text = f"circuit {circuit.state.value}"
        if circuit.reason:
            text += f" ({circuit.reason})"
        if circuit.next_probe_at_ms is not None:
            wait_s = max(0.0, (circuit.next_probe_at_ms - self._clock.now_ms()) / 1000)
            text += f"; next probe in {wait_s:.0f} s"
        return text

    # --- the prober's side ----------------------------------------------------------------

    async def heartbeat(self) -> int:
        """Refresh this replica's presence (every third of its TTL) and count live replicas."""
        now = self._monotonic()
        last = self._heartbeat_at
        due = last is None or now - last >= self._presence_ttl_ms / 3000
        if due and await self._redis("heartbeat", self._announce(self._clock.now_ms()), False):
            self._heartbeat_at = now
        return self._live_replicas

    async def _announce(self, now_ms: int) -> bool:
        await self._replicas.announce(self.replica, now_ms, self._presence_ttl_ms)
        self._live_replicas = max(1, len(await self._replicas.live()))
        return True

    async def withdraw(self) -> None:
        """This replica stops: no longer count it for the quorum."""
        await self._redis("withdraw", self._replicas.withdraw(self.replica), None)

    async def circuits(self, agents: Iterable[str]) -> dict[str, Circuit]:
        """The named agents' circuits, read fresh; empty when Redis does not answer."""
        found = await self._redis("read circuits", self._circuits.read_many(agents), {})
        for circuit in found.values():
            self._remember(circuit)
        return found

    async def probe(self, agent: str, client: AgentClient) -> TransitionKind | None:
        """Claim the agent's half-open probe and, if this replica won it, make the ``/health``
        call and apply its verdict. None when there was nothing to do or another replica won."""
        claim = await self._redis("claim probe", self._circuits.claim_probe(
            agent, replica=self.replica, now_ms=self._clock.now_ms(), policy=self.policy,
            reason=f"cooldown over; {self.replica} probes GET /health",
        ), ProbeClaim.HELD)
        if claim is not ProbeClaim.WON:
            return None
        self._cache.pop(agent, None)
        await self._transition(agent, TransitionKind.PROBING, CircuitState.HALF_OPEN,
                               "probe claimed")
        circuit = await self._redis("read circuit", self._circuits.read(agent), None)
        if circuit is None:
            return None  # the claim expires; another replica probes after the lease
        exchange = await client.probe()
        now = self._clock.now_ms()
        outcome = decide_probe_outcome(circuit, exchange.verdict, now, self.policy)
        reason = _probe_reason(outcome.kind, exchange.detail, outcome.next_probe_at_ms, now)
        end = await self._redis("finish probe", self._circuits.finish_probe(
            agent, replica=self.replica, now_ms=now, outcome=outcome, reason=reason,
        ), ProbeEnd.NOT_OWNER)
        self._cache.pop(agent, None)
        if end is not ProbeEnd.APPLIED:
            return None
        self._dirty.discard(agent)
        await self._transition(agent, outcome.kind, outcome.state, reason)
        return outcome.kind

    async def confirm(self, agent: str, client: AgentClient) -> Verdict:
        """This replica's own ``/health`` look at a circuit other replicas' failures hold at its
        threshold: a failure completes the quorum and opens it, an answer forgets the failures."""
        exchange = await client.probe()
        self._dirty.add(agent)
        await self.record(agent, exchange.verdict, exchange.detail)
        return exchange.verdict

    # --- plumbing -------------------------------------------------------------------------

    async def _transition(
        self, agent: str, kind: TransitionKind, state: CircuitState, reason: str
    ) -> None:
        count_transition(self._telemetry, agent, kind)
        level = logging.INFO if kind in (TransitionKind.PROBING, TransitionKind.CLOSED) \
            else logging.WARNING
        log.log(level, "circuit of %s %s (%s, by %s)", agent, kind.value, reason, self.replica)
        if self._events is not None:
            await self._events.record(circuit_changed(agent, kind, state, reason, self.replica))

    async def _redis(self, operation: str, call: Awaitable[T], fallback: T) -> T:
        """Await a store call; if Redis fails or hangs, fail open with ``fallback``."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                return await call
        except (RedisStoreError, TimeoutError) as exc:
            self._fail_open.labels(operation=operation).inc()
            now = self._clock.now_ms()
            last = self._fail_open_logged_ms
            if last is None or now - last >= FAIL_OPEN_LOG_EVERY_MS:
                self._fail_open_logged_ms = now
                log.warning("circuit breaker: Redis unreachable, letting agent calls through "
                            "(%s: %s); said once a minute", operation, exc)
            return fallback


def _probe_reason(kind: TransitionKind, detail: str, next_at_ms: int | None, now_ms: int) -> str:
    if kind is TransitionKind.CLOSED:
        return f"probe answered: {detail}"
    wait_s = (next_at_ms - now_ms) / 1000 if next_at_ms is not None else 0
    what = "probe inconclusive" if kind is TransitionKind.INCONCLUSIVE else "probe failed"
    return f"{what}: {detail}; next probe in {wait_s:.0f} s"
