"""Watchdog: no execution stays ``running`` on a lost, hung or forgetful agent.

Each cycle reads as collect -> decide -> apply:

- collect (``collect``): the SQL ``running`` rows, then every agent's registry
  (``GET /v1/executions``) side by side, each bounded by a probe timeout and isolated (an agent
  that does not answer is marked unreachable in Redis, its outage clock kept across restarts and
  replicas), then the SQL status of every run a registry holds that is not a running row. The
  result is a frozen ``core.watchdog.Snapshot``.
- decide: ``core.watchdog.decide_watchdog`` (pure, given ``now``).
- apply (``apply``): fence lost agents first (nothing is dispatched to them until a clean
  registry pass), then every row decision through ``Recovery`` side by side, each row's faults
  isolated, then lift the fence of agents whose strays are all terminated.

An agent's first miss and its first answer after one are ``agent.changed`` fleet events
(runtime_down, runtime_up); a fence set or lifted is a ``recovery.action`` (fenced, unfenced).

A full cycle probes every agent with a runtime and runs every ``watchdog_interval_s``, and at the
instant an unreachable agent would turn lost. A targeted cycle reconciles only the agents whose
reconcile request was heard (``controllers.triggers``): a broken stream, a changed ``boot_id``,
a running row the runtime did not know, an agent answering again. Either consumes the requests of
the agents it reconciled. The loop's lease keeps cycles from overlapping across replicas, and
every write is a CAS, so a second cycle on the same state acts on nothing.

Must not: import other controllers, or write a status other than through the store's CAS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from shepherd.agent_client.protocol import Registry, RunState
from shepherd.controllers.base import Wakeup
from shepherd.controllers.cycle import run_each
from shepherd.controllers.directory import AgentDirectory
from shepherd.controllers.recovery import ACTOR, Outcomes, Recovery
from shepherd.controllers.triggers import WatchdogTriggers
from shepherd.core.clock import Clock
from shepherd.core.fleet_events import AgentChange, RecoveryAction, agent_changed, recovery_action
from shepherd.core.models import Agent, Execution
from shepherd.core.status import ExecutionStatus
from shepherd.core.watchdog import (
    DEFAULT_PROBE_TIMEOUT_S,
    DEFAULT_WATCHDOG_INTERVAL_S,
    Action,
    AgentFacts,
    Judge,
    Plan,
    Reach,
    RowFacts,
    RuntimeRun,
    Snapshot,
    WatchdogPolicy,
    decide_watchdog,
)
from shepherd.errors import AgentError, AgentUnreachable
from shepherd.stores.redis.agent_health import AgentHealth
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.controllers.watchdog")
# Wake this long after a due instant: the clocks of the loop (monotonic) and the cycle (wall)
# must not make the woken pass find it a hair early.
WAKE_MARGIN_S = 0.05


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    interval_s: float = DEFAULT_WATCHDOG_INTERVAL_S
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
    policy: WatchdogPolicy = field(default_factory=WatchdogPolicy)


@dataclass(slots=True)
class WatchdogReport:
    scope: str = "full"  # full | targeted | idle (woken with nothing to do)
    agents: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    systemic: bool = False
    requests: list[str] = field(default_factory=list)  # reconcile requests consumed
    came_back: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    handed_over: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    terminate_failed: list[str] = field(default_factory=list)
    finished_meanwhile: list[str] = field(default_factory=list)
    lost_race: list[str] = field(default_factory=list)
    fenced: list[str] = field(default_factory=list)
    unfenced: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)


REPORTED: dict[Action, str] = {
    Action.TIME_OUT: "timed_out", Action.HAND_OVER: "handed_over", Action.ORPHAN: "orphaned",
    Action.LOSE: "lost", Action.STRAY: "strays",
}


class Watchdog:
    name = "watchdog"

    def __init__(
        self, db: Database, redis: RedisHandle, directory: AgentDirectory, clock: Clock, *,
        config: WatchdogConfig | None = None, triggers: WatchdogTriggers | None = None,
        finalizer_wakeup: Wakeup | None = None, dispatch_wakeup: Wakeup | None = None,
        telemetry: Telemetry | None = None, judge: Judge | None = None,
    ) -> None:
        self._db = db
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self.config = config or WatchdogConfig()
        self.triggers = triggers or WatchdogTriggers()
        self._recovery = Recovery(db, redis, directory, clock, finalizer_wakeup=finalizer_wakeup,
                                  dispatch_wakeup=dispatch_wakeup)
        self._judge = judge
        self._next_full_ms = 0
        # agent -> finished run -> when this watchdog first saw it finished (hand-over grace).
        self._seen_finished: dict[str, dict[str, int]] = {}
        self._metrics = _Metrics(telemetry or Telemetry())

    async def run_once(self) -> WatchdogReport:
        """A full cycle when one is due, else a targeted one for the agents requested."""
        requested = self.triggers.take()
        if self._clock.now_ms() >= self._next_full_ms:
            return await self.run_cycle()
        if not requested:
            return WatchdogReport(scope="idle")
        return await self.run_cycle(sorted(requested))

    async def run_cycle(self, only: Sequence[str] | None = None) -> WatchdogReport:
        """One cycle: every agent (``only`` None) or just the agents named."""
        started = time.perf_counter()
        full = only is None
        if full:
            self._next_full_ms = self._clock.now_ms() + round(self.config.interval_s * 900)
        snapshot, requests = await self.collect(only)
        plan = decide_watchdog(snapshot, self.config.policy, self._judge)
        report = await self.apply(plan, snapshot)
        report.requests = requests
        self._schedule(plan, full)
        duration_s = time.perf_counter() - started
        self._metrics.cycle(report, plan, duration_s)
        detail = {"at_ms": self._clock.now_ms(), **_detail(report, plan, duration_s)}
        await self._redis.reports.save_detail(self.name, detail)
        return report

    # -- collect ------------------------------------------------------------------------------

    async def collect(self, only: Sequence[str] | None = None) -> tuple[Snapshot, list[str]]:
        """The frozen snapshot, and the agents whose reconcile request it consumed (consumed
        before the probes, so a request made while they run is kept for the next cycle)."""
        rows = await self._db.executions.list_by_status(ExecutionStatus.RUNNING)
        busy = {r.agent for r in rows}
        agents = [a for a in await self._db.agents.list()
                  if (a.enabled or a.name in busy) and (only is None or a.name in only)]
        requests = await self._consume_requests([a.name for a in agents])
        health = await self._redis.health.read([a.name for a in agents])
        now = self._clock.now_ms()
        facts = await asyncio.gather(*(self._probe(a, health[a.name], now) for a in agents))
        by_name = {f.name: f for f in facts}
        running = tuple(_row_facts(r) for r in rows if r.agent in by_name)
        ids = {r.id for r in running}
        extras = [run.execution_id for f in facts for run in f.runs.values()
                  if not run.finished and run.execution_id not in ids]
        statuses = await self._db.executions.statuses(extras)
        others: dict[str, ExecutionStatus | None] = {eid: statuses.get(eid) for eid in extras}
        return Snapshot(now, only is None, by_name, running, others), requests

    async def _probe(self, agent: Agent, health: AgentHealth, now_ms: int) -> AgentFacts:
        """The agent's registry, or why there is none. Never raises for the agent's own faults."""
        client = self._directory.client_for(agent)
        if client is None:
            return AgentFacts(agent.name, Reach.NO_RUNTIME, fenced=health.fenced,
                              problem="no runtime URL")
        try:
            registry = await asyncio.wait_for(client.list_executions(),
                                              self.config.probe_timeout_s)
        except (AgentUnreachable, TimeoutError) as exc:
            problem = (exc.message if isinstance(exc, AgentUnreachable)
                       else f"no registry within {self.config.probe_timeout_s:g} s")
            since = await self._redis.health.mark_unreachable(agent.name, now_ms)
            if health.unreachable_since_ms is None:  # the first miss of this outage
                await self._db.fleet_events.record(agent_changed(
                    agent.name, AgentChange.RUNTIME_DOWN, ACTOR, since_ms=since, reason=problem))
            return AgentFacts(agent.name, Reach.UNREACHABLE, since, health.fenced,
                              problem=problem)
        except AgentError as exc:
            return AgentFacts(agent.name, Reach.UNUSABLE, fenced=health.fenced,
                              problem=exc.message)
        back_from = await self._redis.health.mark_reachable(agent.name)
        if back_from is not None:
            log.warning("watchdog: agent %s answers again after %.1f s", agent.name,
                        (now_ms - back_from) / 1000)
            await self._db.fleet_events.record(agent_changed(
                agent.name, AgentChange.RUNTIME_UP, ACTOR, down_since_ms=back_from))
        earlier = self._seen_finished.get(agent.name, {})
        seen = {e.execution_id: earlier.get(e.execution_id, now_ms)
                for e in registry.executions if e.state is RunState.FINISHED}
        self._seen_finished[agent.name] = seen
        return _reachable(agent.name, registry, health.fenced, seen,
                          came_back=back_from is not None)

    # -- apply --------------------------------------------------------------------------------

    async def apply(self, plan: Plan, snapshot: Snapshot) -> WatchdogReport:
        report = _report_of(plan, snapshot)
        if plan.systemic:
            await self._systemic(snapshot)
            return report
        now = self._clock.now_ms()
        for agent in plan.fence:
            if await self._redis.health.fence(agent, now):
                report.fenced.append(agent)
                log.error("watchdog: agent %s declared lost; no dispatch to it until its "
                          "registry is reconciled", agent)
                await self._db.fleet_events.record(recovery_action(
                    agent, RecoveryAction.FENCED, ACTOR,
                    "declared lost: unreachable past agent_lost_after_s"))
        out = Outcomes()
        _, faults = await run_each(
            plan.actions, lambda d: self._recovery.act(d, out), lambda d: d.execution_id,
            stage="apply", log=log,
        )
        for action, ids in out.done.items():
            getattr(report, REPORTED[action]).extend(ids)
            log.warning("watchdog: %d execution(s) %s (%s retried): %s", len(ids), action.value,
                        sum(1 for i in ids if i in out.retried), ", ".join(sorted(ids)[:5])
                        + (" ..." if len(ids) > 5 else ""))
        report.retried, report.lost_race = out.retried, out.lost_race
        report.terminate_failed = out.terminate_failed
        report.finished_meanwhile = out.finished_meanwhile
        report.faults.extend(f"{f.key}: {f.error}" for f in faults)
        unclean = out.unclean | {d.agent for d in plan.actions if d.execution_id in
                                 {f.key for f in faults}}
        for agent in plan.unfence:
            if agent not in unclean and await self._redis.health.unfence(agent):
                report.unfenced.append(agent)
                log.warning("watchdog: agent %s reconciled; dispatching to it again", agent)
                await self._db.fleet_events.record(recovery_action(
                    agent, RecoveryAction.UNFENCED, ACTOR,
                    "registry reconciled, strays terminated"))
        return report

    async def _systemic(self, snapshot: Snapshot) -> None:
        down = sorted(n for n, a in snapshot.agents.items() if a.reach is Reach.UNREACHABLE)
        log.error("watchdog: %d of %d agents unreachable at once (%s): the fault is this control "
                  "plane's network; recovering nothing", len(down), len(snapshot.agents),
                  ", ".join(down))
        for agent in down:  # their outage clocks start over once the fleet is reachable again
            await self._redis.health.restart_outage(agent, snapshot.now_ms)

    async def _consume_requests(self, agents: Sequence[str]) -> list[str]:
        consumed = []
        for agent in agents:
            request = await self._redis.reconcile.take(agent)
            if request is not None:
                consumed.append(agent)
                log.info("watchdog: reconciled %s on request (%s)", agent, request.reason)
        return consumed

    def _schedule(self, plan: Plan, full: bool) -> None:
        """Bring the next full cycle forward to when an unreachable agent would turn lost."""
        if full:
            self.triggers.wake_in(None)
        due = plan.next_check_ms
        if due is not None and due <= self._next_full_ms:
            self._next_full_ms = due
            # Just after the instant, so the pass it wakes finds the full cycle due.
            self.triggers.wake_in((due - self._clock.now_ms()) / 1000 + WAKE_MARGIN_S)


def _row_facts(row: Execution) -> RowFacts:
    return RowFacts(row.id, row.agent, row.dispatched_at_ms, row.timeout_s, row.attempt,
                    row.max_attempts, row.retry_on_failure, row.runtime_boot_id)


def _reachable(
    name: str, registry: Registry, fenced: bool, seen: dict[str, int], came_back: bool
) -> AgentFacts:
    runs = {
        e.execution_id: RuntimeRun(e.execution_id, e.state is RunState.FINISHED, e.exit_code,
                                   e.error_class, e.finished_at_ms, seen.get(e.execution_id))
        for e in registry.executions
    }
    return AgentFacts(name, Reach.REACHABLE, fenced=fenced, runs=runs, boot_id=registry.boot_id,
                      came_back=came_back)


def _detail(report: WatchdogReport, plan: Plan, duration_s: float) -> dict[str, object]:
    """The last cycle as the status view shows it: counts, and who was skipped and why."""
    values = {f.name: getattr(report, f.name) for f in fields(report)}
    counts = {name: len(value) for name, value in values.items()
              if isinstance(value, list) and name not in ("agents", "skipped", "requests")}
    return {
        "scope": report.scope, "systemic": report.systemic, "duration_ms": round(
            duration_s * 1000, 3), "agents": report.agents, "requests": report.requests,
        "counts": counts,
        "skipped": [{"agent": s.agent, "reach": s.reach.value, "reason": s.reason,
                     "unreachable_since_ms": s.unreachable_since_ms} for s in plan.skipped],
    }


def _report_of(plan: Plan, snapshot: Snapshot) -> WatchdogReport:
    return WatchdogReport(
        scope="full" if snapshot.full else "targeted",
        agents=sorted(snapshot.agents),
        skipped=[s.agent for s in plan.skipped],
        systemic=plan.systemic,
        came_back=sorted(n for n, a in snapshot.agents.items() if a.came_back),
        ok=list(plan.ok),
        waiting=list(plan.waiting),
        faults=[f"{f.key}: {f.error}" for f in plan.faults],
    )


class _Metrics:
    def __init__(self, telemetry: Telemetry) -> None:
        self._actions = telemetry.counter(
            "shepherd_watchdog_actions", "Watchdog actions by kind.", ["kind"])
        self._cycle = telemetry.histogram(
            "shepherd_watchdog_cycle_seconds", "Duration of a watchdog cycle.", ["scope"])
        self._systemic = telemetry.counter(
            "shepherd_watchdog_systemic",
            "Cycles that found most of the fleet unreachable at once and recovered nothing.")
        self._skipped = telemetry.counter(
            "shepherd_watchdog_skipped_agents", "Agents a cycle could not reconcile.", ["reach"])
        self._faults = telemetry.counter(
            "shepherd_watchdog_faults", "Rows or agents whose handling raised.")

    def cycle(self, report: WatchdogReport, plan: Plan, duration_s: float) -> None:
        self._cycle.labels(scope=report.scope).observe(duration_s)
        for kind in ("timed_out", "handed_over", "orphaned", "lost", "strays", "retried",
                     "terminate_failed", "fenced", "unfenced"):
            count = len(getattr(report, kind))
            if count:
                self._actions.labels(kind=kind).inc(count)
        if report.systemic:
            self._systemic.inc()
        for skip in plan.skipped:
            self._skipped.labels(reach=skip.reach.value).inc()
        if report.faults:
            self._faults.inc(len(report.faults))
