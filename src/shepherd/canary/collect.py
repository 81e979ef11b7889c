"""Collect one canary snapshot: SQL once, Redis once (pipelined), every runtime once, in parallel.

A source that fails is named in ``sources_unavailable`` and the snapshot carries what the others
gave; the checks that need the missing source stay silent. The collector never writes and never
raises a store error (an unexpected bug still raises: the service logs and counts it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from shepherd.canary.snapshot import (
    REDIS,
    SQL,
    AgentFacts,
    CanarySettings,
    Reversal,
    RowFacts,
    RuntimeFacts,
    ScheduleFacts,
    SlotHash,
    Snapshot,
    runtime_source,
)
from shepherd.controllers.directory import AgentDirectory
from shepherd.core.circuit import CircuitState
from shepherd.core.clock import Clock
from shepherd.core.models import Agent
from shepherd.core.status import ExecutionStatus
from shepherd.errors import AgentError, StoreError
from shepherd.stores.redis.canary_view import RedisFacts
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.canary_facts import SqlFacts, SqlRow
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.canary")
# Finished rows this recent are checked for their instants, slots and stored text.
RECENT_WINDOW_MS = 10 * 60_000
# A runtime that does not list its registry within this is unavailable for this cycle.
RUNTIME_TIMEOUT_S = 5.0
_REFUSING = (CircuitState.OPEN, CircuitState.DORMANT)


@dataclass(frozen=True, slots=True)
class CollectConfig:
    settings: CanarySettings
    controller_intervals_s: Mapping[str, float]


class Collector:
    def __init__(
        self, db: Database, redis: RedisHandle, directory: AgentDirectory, clock: Clock,
        config: CollectConfig,
    ) -> None:
        self._db = db
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self._config = config

    def controller_intervals(self) -> dict[str, float]:
        return dict(self._config.controller_intervals_s)

    async def collect(self) -> Snapshot:
        """Redis before the rest of SQL: a slot acquired between the two reads shows as a fresh
        running row without its member (within the race grace), one released between them as a
        member of a row that just ended (also within it); the other order would show a released
        slot as a long-running row without its member."""
        now = self._clock.now_ms()
        unavailable: list[str] = []
        listed = await self._agents(unavailable)
        live: list[str] = sorted(a.name for a in listed if a.deleted_at_ms is None)
        deleted: list[str] = sorted(a.name for a in listed if a.deleted_at_ms is not None)
        redis, refusing = await self._redis_facts(live, deleted, unavailable)
        sql = await self._sql(now, deleted, unavailable) if SQL not in unavailable else None
        agents: dict[str, AgentFacts] = {
            a.name: AgentFacts(a.name, a.enabled, a.url, a.max_parallel_tasks,
                               a.max_backlog_depth, a.deleted_at_ms)
            for a in (listed if sql else ())
        }
        runtimes = await self._runtimes([a for a in listed if a.deleted_at_ms is None
                                         and a.enabled and a.url], unavailable)
        return _snapshot(now, self._config, agents, sql, redis, refusing, runtimes,
                         tuple(unavailable))

    async def _agents(self, unavailable: list[str]) -> list[Agent]:
        """Every agent, deleted ones included."""
        try:
            return await self._db.agents.list(include_deleted=True)
        except StoreError as exc:
            log.warning("canary: SQL unavailable this cycle: %s", exc)
            unavailable.append(SQL)
            return []

    async def _sql(
        self, now: int, deleted: list[str], unavailable: list[str]
    ) -> SqlFacts | None:
        try:
            return await self._db.canary.read(now - RECENT_WINDOW_MS, deleted)
        except StoreError as exc:
            log.warning("canary: SQL unavailable this cycle: %s", exc)
            unavailable.append(SQL)
            return None

    async def _redis_facts(
        self, live: list[str], deleted: list[str], unavailable: list[str]
    ) -> tuple[RedisFacts | None, frozenset[str]]:
        try:
            facts = await self._redis.canary.read(live, deleted,
                                                  sorted(self._config.controller_intervals_s))
            circuits = await self._redis.circuits.read_many(live)
        except StoreError as exc:
            log.warning("canary: Redis unavailable this cycle: %s", exc)
            unavailable.append(REDIS)
            return None, frozenset()
        return facts, frozenset(n for n, c in circuits.items() if c.state in _REFUSING)

    async def _runtimes(
        self, agents: list[Agent], unavailable: list[str]
    ) -> dict[str, RuntimeFacts]:
        answers = await asyncio.gather(*(self._runtime(a) for a in agents))
        found: dict[str, RuntimeFacts] = {}
        for agent, answer in zip(agents, answers, strict=True):
            if answer is None:
                unavailable.append(runtime_source(agent.name))
            else:
                found[agent.name] = answer
        return found

    async def _runtime(self, agent: Agent) -> RuntimeFacts | None:
        client = self._directory.client_for(agent)
        if client is None:
            return None
        try:
            async with asyncio.timeout(RUNTIME_TIMEOUT_S):
                registry, health = await asyncio.gather(client.list_executions(),
                                                        client.health())
        except (AgentError, TimeoutError):
            return None
        return RuntimeFacts(frozenset(e.execution_id for e in registry.executions),
                            health.zombies, health.running)



def _row(r: SqlRow) -> RowFacts:
    return RowFacts(
        id=r.id, agent=r.agent, status=ExecutionStatus(r.status), timeout_s=r.timeout_s,
        created_at_ms=r.created_at_ms, queued_at_ms=r.queued_at_ms,
        dispatched_at_ms=r.dispatched_at_ms, started_at_ms=r.started_at_ms,
        finished_at_ms=r.finished_at_ms, completed_at_ms=r.completed_at_ms, pid=r.pid,
        boot_id=r.boot_id, schedule_id=r.schedule_id, retry_of=r.retry_of,
        retry_agent=r.retry_agent, retry_schedule=r.retry_schedule, input_ok=r.input_ok,
        holds_credential=r.holds_credential,
    )


def _snapshot(
    now: int, config: CollectConfig, agents: dict[str, AgentFacts], sql: SqlFacts | None,
    redis: RedisFacts | None, refusing: frozenset[str], runtimes: dict[str, RuntimeFacts],
    unavailable: tuple[str, ...],
) -> Snapshot:
    references = dict(sql.references) if sql else {}
    if redis is not None:
        for agent, keys in redis.leftover_keys.items():
            references[agent] = (*references.get(agent, ()), *(f"key {k}" for k in keys))
    return Snapshot(
        now_ms=now, agents=agents,
        active=tuple(_row(r) for r in sql.active) if sql else (),
        recent=tuple(_row(r) for r in sql.recent) if sql else (),
        reversals=tuple(Reversal(r.id, r.agent, ExecutionStatus(r.ended_as),
                                 ExecutionStatus(r.now)) for r in sql.reversals) if sql else (),
        schedules=tuple(ScheduleFacts(s.id, s.agent, s.enabled, s.next_run_at_ms)
                        for s in sql.schedules) if sql else (),
        queued_counted=sql.queued_counted if sql else {},
        references=references,
        slot_members=redis.slot_members if redis else {},
        slot_hashes=tuple(SlotHash(h.agent, h.execution_id, h.ttl_s, h.timeout_s,
                                   h.acquired_at_ms) for h in redis.slot_hashes) if redis else (),
        runtimes=runtimes,
        unreachable_since_ms=redis.unreachable_since_ms if redis else {},
        fenced=redis.fenced if redis else frozenset(),
        circuits_refusing=refusing,
        controller_ticks_ms=redis.controller_ticks_ms if redis else {},
        controller_intervals_s=dict(config.controller_intervals_s),
        drain_tick_ms=redis.drain_tick_ms if redis else None,
        sql_instance_id=sql.instance_id if sql else None,
        redis_instance_id=redis.instance_id if redis else None,
        sources_unavailable=unavailable, settings=config.settings,
    )
