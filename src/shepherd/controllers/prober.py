"""Prober: the circuit breaker's own calls, on every replica.

Each pass: refresh this replica's presence (the quorum guard counts live replicas), read the
circuits of the enabled agents that have a runtime URL, and let ``core.circuit.decide_probes``
say what to do:

- an open or dormant circuit whose cooldown is over: try to win its half-open probe; the one
  replica that wins (fleet-wide, in Redis) calls ``/health`` and closes, re-opens or parks the
  circuit. Every replica runs this loop and races for the claim, so a replica whose own network
  broke delays nothing: the next cooldown goes to whoever wins it.
- a closed circuit at its failure threshold that the quorum keeps closed because only other
  replicas saw the failures: make this replica's own ``/health`` call, which either completes the
  quorum (the circuit opens) or proves the agent reachable (its failures are forgotten).

Runs as a non-singleton loop. Must not: send executions anywhere, or touch SQL rows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shepherd.agent_client.fleet_breaker import RedisBreaker
from shepherd.controllers.directory import AgentDirectory
from shepherd.core.circuit import decide_probes
from shepherd.core.clock import Clock
from shepherd.core.models import Agent
from shepherd.stores.sql.database import Database


@dataclass(slots=True)
class ProbeReport:
    live_replicas: int = 0
    watched: int = 0
    probed: list[str] = field(default_factory=list)  # "agent: outcome" for probes this replica won
    confirmed: list[str] = field(default_factory=list)  # "agent: verdict" of quorum looks


class Prober:
    name = "prober"

    def __init__(
        self, db: Database, breaker: RedisBreaker, directory: AgentDirectory, clock: Clock
    ) -> None:
        self._db = db
        self._breaker = breaker
        self._directory = directory
        self._clock = clock

    async def run_once(self) -> ProbeReport:
        report = ProbeReport(live_replicas=await self._breaker.heartbeat())
        agents: dict[str, Agent] = {
            a.name: a for a in await self._db.agents.list() if a.enabled and a.url
        }
        circuits = await self._breaker.circuits(agents)
        report.watched = len(circuits)
        plan = decide_probes(
            circuits.values(), self._breaker.replica, self._clock.now_ms(), self._breaker.policy
        )
        await asyncio.gather(
            *(self._probe(agents[name], report) for name in plan.probe),
            *(self._confirm(agents[name], report) for name in plan.confirm),
        )
        return report

    async def _probe(self, agent: Agent, report: ProbeReport) -> None:
        client = self._directory.client_for(agent)
        if client is None:
            return
        outcome = await self._breaker.probe(agent.name, client)
        if outcome is not None:
            report.probed.append(f"{agent.name}: {outcome.value}")

    async def _confirm(self, agent: Agent, report: ProbeReport) -> None:
        client = self._directory.client_for(agent)
        if client is None:
            return
        verdict = await self._breaker.confirm(agent.name, client)
        report.confirmed.append(f"{agent.name}: {verdict.value}")
