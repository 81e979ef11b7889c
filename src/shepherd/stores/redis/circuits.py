"""Circuit state per agent in Redis: ``circuit:{agent}`` and its capped event log.

Guarantees: every state change is one script (``lua/circuit_*.lua``) that also appends the event
describing it, so the log can never disagree with the state; failures are counted and the circuit
opened atomically, so concurrent failures from several replicas open it once; exactly one replica
holds the half-open probe at a time (a claim is a lease: a probe whose owner died is retaken
after ``probe_lease_s``), and only that owner may end it. A closed circuit with no failures is
stored as nothing at all, so the keyspace only holds agents that are failing.

Must not: decide what a probe's verdict means (``core.circuit``), nor call agents.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import IntEnum
from typing import cast

from redis.asyncio import Redis

from shepherd.core.circuit import (
    Circuit,
    CircuitEvent,
    CircuitPolicy,
    CircuitState,
    ProbeOutcome,
    TransitionKind,
    first_probe_at_ms,
)
from shepherd.stores.redis.errors import translated
from shepherd.stores.redis.keys import Keys
from shepherd.stores.redis.scripts import Scripts

# Fifty transitions cover days of a flapping agent; older history lives in logs and metrics.
EVENTS_CAP = 50
FAIL_AT = "fail_at:"


class FailureResult(IntEnum):
    """Return codes of circuit_failure.lua."""

    COUNTED = 0
    OPENED = 1
    HELD_BY_QUORUM = 2
    NOT_CLOSED = 3


class SuccessResult(IntEnum):
    """Return codes of circuit_success.lua."""

    CLEAN = 0
    RESET = 1
    NOT_CLOSED = 2


class ProbeClaim(IntEnum):
    """Return codes of circuit_probe_begin.lua."""

    CLOSED = 0
    WON = 1
    NOT_DUE = 2
    HELD = 3


class ProbeEnd(IntEnum):
    """Return codes of circuit_probe_end.lua."""

    NOT_OWNER = 0
    APPLIED = 1


class ResetResult(IntEnum):
    """Return codes of circuit_reset.lua."""

    NOTHING = 0
    FORGOTTEN = 1
    CLOSED = 2


class CircuitStore:
    def __init__(self, client: Redis, keys: Keys, scripts: Scripts) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts

    def _both(self, agent: str) -> list[str]:
        return [self._keys.circuit(agent), self._keys.circuit_events(agent)]

    async def read(self, agent: str) -> Circuit:
        async with translated(f"read circuit of {agent}"):
            raw = await self._client.hgetall(self._keys.circuit(agent))
        return to_circuit(agent, cast("dict[str, str]", raw))

    async def read_many(self, agents: Iterable[str]) -> dict[str, Circuit]:
        """Every named agent's circuit, in one round trip."""
        names = list(agents)
        if not names:
            return {}
        async with translated("read circuits"), self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self._keys.circuit(name))
            raws = await pipe.execute()
        return {name: to_circuit(name, raw) for name, raw in zip(names, raws, strict=True)}

    async def record_failure(
        self, agent: str, *, replica: str, now_ms: int, live_replicas: int,
        policy: CircuitPolicy, reason: str,
    ) -> FailureResult:
        async with translated(f"count a failure of {agent}"):
            code = await self._scripts.run("circuit_failure", self._both(agent), [
                replica, now_ms, policy.failure_threshold, policy.quorum_window_ms,
                live_replicas, first_probe_at_ms(now_ms, policy), reason, EVENTS_CAP,
            ])
        return FailureResult(int(code))

    async def record_success(self, agent: str) -> SuccessResult:
        async with translated(f"count a success of {agent}"):
            code = await self._scripts.run("circuit_success", [self._keys.circuit(agent)], [])
        return SuccessResult(int(code))

    async def claim_probe(
        self, agent: str, *, replica: str, now_ms: int, policy: CircuitPolicy, reason: str
    ) -> ProbeClaim:
        async with translated(f"claim the probe of {agent}"):
            code = await self._scripts.run("circuit_probe_begin", self._both(agent), [
                replica, now_ms, now_ms + policy.probe_lease_ms, reason, EVENTS_CAP,
            ])
        return ProbeClaim(int(code))

    async def finish_probe(
        self, agent: str, *, replica: str, now_ms: int, outcome: ProbeOutcome, reason: str
    ) -> ProbeEnd:
        next_at = outcome.next_probe_at_ms if outcome.next_probe_at_ms is not None else 0
        async with translated(f"finish the probe of {agent}"):
            code = await self._scripts.run("circuit_probe_end", self._both(agent), [
                replica, now_ms, outcome.state.value, outcome.failed_probes, next_at,
                outcome.kind.value, reason, EVENTS_CAP,
            ])
        return ProbeEnd(int(code))

    async def reset(self, agent: str, *, actor: str, now_ms: int, reason: str) -> ResetResult:
        async with translated(f"reset the circuit of {agent}"):
            code = await self._scripts.run(
                "circuit_reset", self._both(agent), [actor, now_ms, reason, EVENTS_CAP]
            )
        return ResetResult(int(code))

    async def clear(self, agent: str) -> None:
        """Forget everything stored under ``agent``'s name: a new agent starts closed."""
        async with translated(f"clear the circuit of {agent}"):
            await self._client.delete(*self._both(agent))

    async def events(self, agent: str, limit: int = EVENTS_CAP) -> list[CircuitEvent]:
        """The latest state changes, newest first."""
        async with translated(f"read circuit events of {agent}"):
            raws = await self._client.lrange(
                self._keys.circuit_events(agent), 0, limit - 1
            )
        return [to_event(json.loads(raw)) for raw in cast("list[str]", raws)]


def _int(raw: dict[str, str], name: str) -> int | None:
    value = raw.get(name)
    return int(value) if value not in (None, "") else None


def to_circuit(agent: str, raw: dict[str, str]) -> Circuit:
    if not raw:
        return Circuit(agent)
    return Circuit(
        agent=agent,
        state=CircuitState(raw.get("state", CircuitState.CLOSED.value)),
        failures=_int(raw, "failures") or 0,
        failed_probes=_int(raw, "failed_probes") or 0,
        opened_at_ms=_int(raw, "opened_at_ms"),
        next_probe_at_ms=_int(raw, "next_probe_at_ms"),
        probe_owner=raw.get("probe_owner"),
        probe_until_ms=_int(raw, "probe_until_ms"),
        changed_at_ms=_int(raw, "changed_at_ms"),
        reason=raw.get("reason"),
        failing_replicas={k.removeprefix(FAIL_AT): int(v) for k, v in raw.items()
                          if k.startswith(FAIL_AT)},
    )


def to_event(raw: dict[str, str]) -> CircuitEvent:
    return CircuitEvent(
        at_ms=int(raw["at_ms"]), kind=TransitionKind(raw["kind"]),
        from_state=CircuitState(raw["from"]), to_state=CircuitState(raw["to"]),
        reason=raw.get("reason", ""), by=raw.get("by", ""),
    )
