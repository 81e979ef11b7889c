"""The fleet at a glance: what the dashboard's fleet and schedules pages (and ``/api/overview``)
show, gathered in a fixed number of store round trips whatever the size of the fleet.

Fleet: the agents (one query), work in flight per agent (one query over queued, running and
finalizing rows), completions per minute over the last hour (one query an index answers), and
slots, last seen and boot time of every agent (one pipelined Redis round trip) and their circuit
breakers (one more); ``agent_overview`` is one agent's row alone. Schedules: the
schedules (one query) and the newest run of each (one query).

Guarantees: a token scoped to an agent sees that agent only, totals and chart included.
Must not: write anything, or ask an agent runtime anything (the page must render when agents
are down).
"""

from __future__ import annotations

from dataclasses import dataclass

from shepherd.core.circuit import Circuit
from shepherd.core.models import Agent, Execution, Schedule
from shepherd.core.presence import AgentState, decide_agent_state
from shepherd.core.status import ExecutionStatus
from shepherd.core.throughput import (
    MinuteCounts,
    bucket_completions,
    per_minute,
    window_start_ms,
)
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.presence import RuntimePresence
from shepherd.stores.sql.database import Database

S = ExecutionStatus


@dataclass(frozen=True, slots=True)
class AgentOverview:
    agent: Agent
    state: AgentState
    slots_in_use: int
    queued: int
    running: int
    finalizing: int
    seen_at_ms: int | None
    booted_at_ms: int | None
    circuit: Circuit | None = None  # its breaker as Redis holds it (None: closed, never failed)


@dataclass(frozen=True, slots=True)
class FleetTotals:
    running: int
    queued: int
    failed_last_hour: int
    succeeded_last_hour: int
    per_minute: float


@dataclass(frozen=True, slots=True)
class FleetOverview:
    now_ms: int
    agents: tuple[AgentOverview, ...]
    totals: FleetTotals
    minutes: tuple[MinuteCounts, ...]


@dataclass(frozen=True, slots=True)
class ScheduleOverview:
    schedule: Schedule
    last: Execution | None  # its newest execution, whatever started it


async def fleet_overview(
    db: Database, redis: RedisHandle, *, now_ms: int, silent_after_ms: int,
    scope: str | None = None,
) -> FleetOverview:
    agents = [a for a in await db.agents.list() if scope is None or a.name == scope]
    in_flight = await db.summaries.in_flight_counts()
    presence = await redis.presence.read([a.name for a in agents])
    circuits = await redis.circuits.read_many([a.name for a in agents])
    rows = await db.summaries.completions_by_minute(window_start_ms(now_ms), agent=scope)
    minutes = bucket_completions(rows, now_ms)
    overviews = tuple(
        _agent_overview(a, in_flight, presence[a.name], now_ms, silent_after_ms,
                        circuits.get(a.name))
        for a in agents
    )
    totals = FleetTotals(
        running=sum(o.running + o.finalizing for o in overviews),
        queued=sum(o.queued for o in overviews),
        failed_last_hour=sum(m.failed for m in minutes),
        succeeded_last_hour=sum(m.succeeded for m in minutes),
        per_minute=per_minute(minutes, now_ms),
    )
    return FleetOverview(now_ms, overviews, totals, minutes)


async def agent_overview(
    db: Database, redis: RedisHandle, name: str, *, now_ms: int, silent_after_ms: int,
) -> AgentOverview:
    """One agent's row of the fleet overview (what the page re-renders on an agent's change):
    ``AgentNotFound`` for an unknown or deleted agent."""
    agent = await db.agents.get(name)
    in_flight = await db.summaries.in_flight_counts()
    presence = await redis.presence.read([agent.name])
    circuits = await redis.circuits.read_many([agent.name])
    return _agent_overview(agent, in_flight, presence[agent.name], now_ms, silent_after_ms,
                           circuits.get(agent.name))


def _agent_overview(
    agent: Agent, in_flight: dict[tuple[str, str], int], presence: RuntimePresence,
    now_ms: int, silent_after_ms: int, circuit: Circuit | None = None,
) -> AgentOverview:
    state = decide_agent_state(
        enabled=agent.enabled, has_url=bool(agent.url), seen_at_ms=presence.seen_at_ms,
        now_ms=now_ms, silent_after=silent_after_ms,
    )
    return AgentOverview(
        agent=agent, state=state, slots_in_use=presence.slots_in_use,
        queued=in_flight.get((agent.name, S.QUEUED), 0),
        running=in_flight.get((agent.name, S.RUNNING), 0),
        finalizing=in_flight.get((agent.name, S.FINALIZING), 0),
        seen_at_ms=presence.seen_at_ms, booted_at_ms=presence.booted_at_ms, circuit=circuit,
    )


async def schedule_overview(db: Database, scope: str | None = None) -> list[ScheduleOverview]:
    schedules = await db.schedules.list(agent=scope)
    latest = await db.summaries.latest_of_schedules([s.id for s in schedules])
    return [ScheduleOverview(s, latest.get(s.id)) for s in schedules]
