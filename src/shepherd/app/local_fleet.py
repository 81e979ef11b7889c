"""The local runtimes of ``shepherd up``, kept in step with the agents the control plane knows.

Desired state: every enabled or disabled agent in SQL with a ``command`` has one runtime running
that command with the agent's ``env`` (from the manifests applied through this process; SQL does
not keep environments). ``apply`` converges on it: it adopts or starts missing runtimes and
records their URLs on the agents, stops the runtimes of agents that were deleted or lost their
command, and restarts runtimes whose command or env changed, but only once the agent has no
running execution (a restart would terminate it): until then the restart is reported as pending
and retried by the periodic pass. A runtime that fails to start is retried with backoff (and at
once by the next explicit apply). Passes never overlap.

It is the ``LocalRuntimeHost`` the API calls after a fleet apply, and runs every
``RECONCILE_INTERVAL_S`` to catch agents created or deleted through the agents API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from shepherd.api.hosting import RuntimeChanges
from shepherd.app.runtime_records import RuntimeSpec
from shepherd.app.runtimes import LocalRuntimes
from shepherd.core.backoff import compute_backoff
from shepherd.core.ids import AgentName
from shepherd.core.models import Agent
from shepherd.core.status import ExecutionStatus
from shepherd.errors import ConfigError, ShepherdError
from shepherd.manifest.schema import Manifest
from shepherd.services.circuits import reset_for_new_url
from shepherd.stores.redis.circuits import CircuitStore
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.app.local_fleet")

# Agents created or deleted through the API get or lose their runtime within this long.
RECONCILE_INTERVAL_S = 2.0
# A runtime that failed to start is tried again after 2, 4, 8 ... seconds, at most 5 minutes.
RETRY_BASE_S = 2.0
RETRY_MAX_S = 300.0


@dataclass
class _Failure:
    spec: RuntimeSpec
    attempts: int
    retry_at: float  # monotonic seconds


class LocalFleet:
    def __init__(
        self, db: Database, runtimes: LocalRuntimes, circuits: CircuitStore | None = None,
    ) -> None:
        self._db = db
        self._runtimes = runtimes
        self._circuits = circuits
        self._envs: dict[str, dict[str, str]] = {}
        self._failures: dict[str, _Failure] = {}
        self._lock = asyncio.Lock()

    async def apply(self, manifest: Manifest | None) -> RuntimeChanges:
        async with self._lock:
            if manifest is not None:  # an explicit apply tries failed starts again at once
                self._envs.update({a.name: dict(a.env) for a in manifest.agents})
                self._failures.clear()
            changes = RuntimeChanges()
            agents = {a.name: a for a in await self._db.agents.list() if a.command}
            for name in sorted(self._runtimes.runtimes.keys() - agents.keys()):
                await self._runtimes.stop_one(name)
                changes.stopped.append(name)
            # Runtimes start in parallel: each takes a second or two to import and listen.
            await asyncio.gather(*(self._converge_one(a, changes) for a in agents.values()))
            changes.stopped += await self._runtimes.stop_unclaimed()
            return changes

    async def run_forever(self) -> None:
        """The periodic pass (a guarded task): log what changed, never die of a store error."""
        while True:
            await asyncio.sleep(RECONCILE_INTERVAL_S)
            try:
                changes = await self.apply(None)
            except ShepherdError as exc:
                log.warning("local runtimes: %s", exc.message)
                continue
            for name, why in changes.failed.items():
                log.warning("agent %s: %s (retried in %.0f s)", name, why,
                            self._failures[name].retry_at - time.monotonic())

    async def _converge_one(self, agent: Agent, changes: RuntimeChanges) -> None:
        assert agent.command is not None
        spec = RuntimeSpec.of(agent.name, agent.command, self._envs.get(agent.name, {}))
        failure = self._failures.get(agent.name)
        if failure is not None and failure.spec == spec and time.monotonic() < failure.retry_at:
            return  # failed before, not due yet: one warning per attempt, not one per pass
        try:
            await self._converge(agent, spec, changes)
        except ConfigError as exc:
            attempts = failure.attempts + 1 if failure and failure.spec == spec else 1
            delay = compute_backoff(attempts - 1, RETRY_BASE_S, RETRY_MAX_S, 0.0, 0.0)
            self._failures[agent.name] = _Failure(spec, attempts, time.monotonic() + delay)
            changes.failed[agent.name] = exc.message
        else:
            self._failures.pop(agent.name, None)

    async def _converge(self, agent: Agent, spec: RuntimeSpec, changes: RuntimeChanges) -> None:
        current = self._runtimes.runtimes.get(agent.name)
        if current is not None and current.spec == spec:
            return
        runtime = await self._runtimes.adopt(spec) if current is None else None
        if runtime is not None:
            changes.adopted.append(agent.name)
        elif current is None:
            runtime = await self._runtimes.start(spec)
            changes.started.append(agent.name)
        elif await self._busy(agent.name):
            changes.pending[agent.name] = "restart waits for running executions to end"
            return
        else:
            await self._runtimes.stop_one(agent.name)
            runtime = await self._runtimes.start(spec)
            changes.restarted.append(agent.name)
        if agent.url != runtime.url:
            await self._db.agents.update(AgentName(agent.name), actor="up", url=runtime.url)
            if self._circuits is not None:
                await reset_for_new_url(self._db, self._circuits, agent.name, actor="up",
                                        now_ms=self._db.clock.now_ms())

    async def _busy(self, name: str) -> bool:
        running = await self._db.executions.list(
            status=ExecutionStatus.RUNNING, agent=AgentName(name), limit=1)
        return bool(running)
