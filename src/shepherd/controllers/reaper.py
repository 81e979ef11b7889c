"""Reaper: no execution is immortal, none is finalized twice, none is re-run while its owner lives.

Each pass reads as collect -> decide -> apply:

- collect (``collect``): the SQL ``running`` and ``finalizing`` rows, the agents (with their
  watchdog fences), and in one pipelined round trip each, the monitor lease of every agent with
  running rows and the finalize lease of every finalizing row, each read on its own (a lease that
  cannot be read is a fault of its row, never of the pass). The result is a frozen
  ``core.reaper.Snapshot``.
- decide: ``core.reaper.decide_reaper`` (pure, given ``now``; its table lists the tiers).
- apply (``apply``): tier 1 asks the monitor to watch the agent now (``Watcher.attach``). Tier 2
  DEFER counts the defer and does nothing else; FINALIZE takes the row's finalize lease (under
  an owner token of its own) and has the finalizer finalize it as ``reaper``, asking for the
  runtime's result (``Finishing.complete``); a result the runtime no longer has, or an agent
  declared lost or deleted, ends the row ``failed`` (``result_lost``), never ``success``. Tier 3
  CASes the row ``failed`` (``backstop``) whatever its leases, releases its slot
  (release-if-matches) and terminates its child if the runtime still runs it. Every write is a
  CAS whose loser does nothing more; every event has actor ``reaper`` and its tier in the reason;
  a terminal write carries the completion webhook, as the finalizer's does. A tier 1 attach
  outside startup is a ``recovery.action`` fleet event (``attached``) for live viewers.

Never raise per row: a fault while judging or applying one row is logged with its id, counted
(``shepherd_reaper_row_faults_total``) and the pass goes on. ``run_startup`` is the same pass,
run once before the other loops start. With ``finalizer_liveness`` off, tier 2 neither reads nor
takes the finalize lease: the unsafe behaviour of a reaper that judges a finalizer by its age.

Must not: import other controllers (the monitor and the finalizer are reached through the
``Watcher`` and ``Finishing`` protocols ``app`` wires), or write a status other than by CAS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Protocol

from shepherd.agent_client.protocol import TerminateResult
from shepherd.controllers.base import Wakeup
from shepherd.controllers.cycle import run_each
from shepherd.controllers.directory import AgentDirectory
from shepherd.controllers.webhook import completion_messages
from shepherd.core.clock import Clock
from shepherd.core.finalization import (
    DEFAULT_FINALIZE_LEASE_TTL_S,
    RESULT_LOST,
    Completion,
    CompletionBudget,
)
from shepherd.core.fleet_events import RecoveryAction, recovery_action
from shepherd.core.models import Agent, Execution, TransitionFields
from shepherd.core.reaper import (
    DEFAULT_REAPER_INTERVAL_S,
    Action,
    AgentFacts,
    LeaseFact,
    Plan,
    ReaperPolicy,
    RowDecision,
    RowFacts,
    Snapshot,
    decide_reaper,
)
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.errors import AgentError, AgentNotFound, ExecutionNotFound
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.controllers.reaper")
ACTOR = "reaper"
# Matches the setting's default; ``app`` passes the configured value.
DEFAULT_WEBHOOK_MAX_AGE_S = 86_400
# The status view keeps this many ids per list: enough to act on, small enough to read.
DETAIL_IDS = 50


class Watcher(Protocol):
    """The monitor: start watching an agent now (False: this replica already does)."""

    async def attach(self, name: str) -> bool: ...


class Finishing(Protocol):
    """The finalizer: finalize a row now, as ``actor``, the caller holding its lease."""

    budget: CompletionBudget

    async def complete(
        self, row: Execution, *, agent: Agent | None = None, actor: str = ...,
        note: str | None = None, require_result: bool = False,
    ) -> Completion: ...


@dataclass(frozen=True, slots=True)
class ReaperConfig:
    interval_s: float = DEFAULT_REAPER_INTERVAL_S
    policy: ReaperPolicy = field(default_factory=ReaperPolicy)
    lease_ttl_ms: int = round(DEFAULT_FINALIZE_LEASE_TTL_S * 1000)
    webhook_max_age_s: int = DEFAULT_WEBHOOK_MAX_AGE_S


@dataclass(slots=True)
class ReaperReport:
    startup: bool = False
    attached: list[str] = field(default_factory=list)  # tier 1: agents now watched here
    deferred: list[str] = field(default_factory=list)  # tier 2: a live finalizer owns them
    finalized: list[str] = field(default_factory=list)  # tier 2: finalized on its behalf
    result_lost: list[str] = field(default_factory=list)  # tier 2: ended failed, result gone
    unreachable: list[str] = field(default_factory=list)  # tier 2: result not readable now
    waiting: list[str] = field(default_factory=list)  # tier 2: no runtime URL yet
    backstopped: list[str] = field(default_factory=list)  # tier 3
    terminated: list[str] = field(default_factory=list)  # tier 3: children stopped on runtimes
    lost_race: list[str] = field(default_factory=list)  # the CAS found the row moved on
    faults: list[str] = field(default_factory=list)


# Report list -> the (tier, action) it is counted under in shepherd_reaper_actions_total.
COUNTED: dict[str, tuple[str, str]] = {
    "attached": ("1", "attached"), "deferred": ("2", "deferred"),
    "finalized": ("2", "finalized"), "result_lost": ("2", "result_lost"),
    "unreachable": ("2", "unreachable"), "waiting": ("2", "waiting"),
    "backstopped": ("3", "backstopped"), "terminated": ("3", "terminated"),
}


class Reaper:
    name = "reaper"

    def __init__(
        self, db: Database, redis: RedisHandle, directory: AgentDirectory, clock: Clock, *,
        finisher: Finishing, watcher: Watcher, owner: str, config: ReaperConfig | None = None,
        dispatch_wakeup: Wakeup | None = None, outbox_wakeup: Wakeup | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._db = db
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self._finisher = finisher
        self._watcher = watcher
        # Its own token: a lease the reaper took is never renewed or released by the finalizer
        # of the same process, nor the other way round.
        self._owner = f"{owner}:reaper"
        self.config = config or ReaperConfig()
        self._dispatch_wakeup = dispatch_wakeup or Wakeup()
        self._outbox_wakeup = outbox_wakeup or Wakeup()
        self._metrics = _Metrics(telemetry or Telemetry())

    @property
    def policy(self) -> ReaperPolicy:
        return self.config.policy

    async def run_once(self) -> ReaperReport:
        return await self.run_pass()

    async def run_startup(self) -> ReaperReport:
        """The pass a control plane runs once before its loops start (startup recovery)."""
        return await self.run_pass(startup=True)

    async def run_pass(self, startup: bool = False) -> ReaperReport:
        started = time.perf_counter()
        snapshot, rows = await self.collect()
        plan = decide_reaper(snapshot, self.policy)
        report = await self.apply(plan, rows, startup)
        duration_s = time.perf_counter() - started
        self._metrics.count(report)
        self._log(report)
        await self._redis.reports.save_detail(self.name, self._detail(report, plan, duration_s))
        return report

    # -- collect ------------------------------------------------------------------------------

    async def collect(self) -> tuple[Snapshot, dict[str, Execution]]:
        """The frozen snapshot, and the rows it was taken from (apply finalizes those)."""
        executions = self._db.executions
        rows = [*await executions.list_by_status(ExecutionStatus.RUNNING),
                *await executions.list_by_status(ExecutionStatus.FINALIZING)]
        agents = await self._db.agents.list()
        names = [a.name for a in agents]
        health = await self._redis.health.read(names)
        keys, leases = self._redis.keys, self._redis.leases
        busy = sorted({r.agent for r in rows if r.status is ExecutionStatus.RUNNING}
                      & set(names))
        monitors = dict(zip(busy, await leases.read([keys.monitor_lease(a) for a in busy]),
                            strict=True))
        ending = [r for r in rows if r.status is ExecutionStatus.FINALIZING]
        owners = dict(zip([r.id for r in ending],
                          await leases.read([keys.finalize_lease(r.id) for r in ending]),
                          strict=True))
        facts: dict[str, AgentFacts] = {
            a.name: AgentFacts(a.name, bool(a.url), health[a.name].fenced,
                               monitors.get(a.name) or LeaseFact())
            for a in agents
        }
        snapshot = Snapshot(self._clock.now_ms(), tuple(
            RowFacts(r.id, r.agent, r.status, r.timeout_s,
                     r.dispatched_at_ms if r.dispatched_at_ms is not None else r.created_at_ms,
                     r.finished_at_ms, owners.get(r.id) or LeaseFact())
            for r in rows
        ), facts)
        return snapshot, {r.id: r for r in rows}

    # -- apply --------------------------------------------------------------------------------

    async def apply(
        self, plan: Plan, rows: Mapping[str, Execution], startup: bool = False
    ) -> ReaperReport:
        report = ReaperReport(startup, faults=[f"{f.key}: {f.error}" for f in plan.faults])
        for attach in plan.attach:
            if await self._watcher.attach(attach.agent):
                report.attached.append(attach.agent)
                # At startup nobody watches anything yet: routine, not news.
                log.log(logging.INFO if startup else logging.WARNING, "reaper: %s", attach.reason)
                if not startup:
                    await self._db.fleet_events.record(recovery_action(
                        attach.agent, RecoveryAction.ATTACHED, ACTOR, attach.reason))
        _, faults = await run_each(
            plan.rows, lambda d: self._act(d, rows[d.execution_id], report),
            lambda d: d.execution_id, stage="apply", log=log,
        )
        report.faults.extend(f"{f.key}: {f.error}" for f in faults)
        return report

    async def _act(self, decision: RowDecision, row: Execution, report: ReaperReport) -> None:
        if decision.action is Action.DEFER:
            report.deferred.append(row.id)
            log.info("reaper: %s: %s", row.id, decision.reason)
        elif decision.action is Action.WAIT:
            report.waiting.append(row.id)
        elif decision.action is Action.BACKSTOP:
            await self._backstop(decision, row, report)
        else:
            async with self._finalize_lease(row.id) as held:
                if not held:  # a finalizer took it between the look and now: its owner lives
                    report.deferred.append(row.id)
                    return
                await self._take_over(decision, row, report)

    @contextlib.asynccontextmanager
    async def _finalize_lease(self, execution_id: str) -> AsyncIterator[bool]:
        """The row's finalize lease, held while the reaper finalizes; not even looked at with
        the liveness check off."""
        if not self.policy.finalizer_liveness:
            yield True
            return
        key = self._redis.keys.finalize_lease(execution_id)
        async with self._redis.leases.hold(key, self._owner, self.config.lease_ttl_ms) as held:
            yield held

    async def _take_over(self, decision: RowDecision, row: Execution,
                         report: ReaperReport) -> None:
        """Tier 2, the lease held: finalize as the reaper, or end it failed if the result is
        gone."""
        if decision.action is Action.GIVE_UP:
            await self._end_result_lost(row, decision.reason, report)
            return
        done = await self._finisher.complete(row, actor=ACTOR, note=decision.reason,
                                             require_result=True)
        if done is Completion.RESULT_GONE:
            why = (f"tier 2: the result can no longer be fetched: the runtime of {row.agent} "
                   "has no record of it (it restarted without its state, or let it go)")
            await self._end_result_lost(row, why, report)
        elif done is Completion.UNREACHABLE:
            report.unreachable.append(row.id)
        elif done is Completion.LOST:
            report.lost_race.append(row.id)
        else:
            report.finalized.append(row.id)

    async def _end_result_lost(self, row: Execution, reason: str, report: ReaperReport) -> None:
        fields = TransitionFields(error_class=RESULT_LOST, error=reason)
        if await self._end(row, ExecutionStatus.FAILED, Cause.RESULT_LOST, reason, fields):
            report.result_lost.append(row.id)
            log.info("reaper: %s ends failed: %s", row.id, reason)
        else:
            report.lost_race.append(row.id)

    async def _backstop(self, decision: RowDecision, row: Execution,
                        report: ReaperReport) -> None:
        fields = TransitionFields(error_class="backstop", error=decision.reason)
        if not await self._end(row, ExecutionStatus.FAILED, Cause.BACKSTOP, decision.reason,
                               fields):
            report.lost_race.append(row.id)
            return
        report.backstopped.append(row.id)
        log.info("reaper: %s on %s ends failed: %s", row.id, row.agent, decision.reason)
        if await self._redis.slots.release(row.agent, row.id):
            self._dispatch_wakeup.poke()
        if row.status is ExecutionStatus.RUNNING and await self._terminate(row):
            report.terminated.append(row.id)

    async def _end(
        self, row: Execution, to: ExecutionStatus, cause: Cause, reason: str,
        fields: TransitionFields,
    ) -> bool:
        """A terminal CAS as ``reaper``, with the completion webhook a finalization sends."""
        now_ms = self._clock.now_ms()
        agent = await self._agent(row.agent)
        webhooks = completion_messages(agent, row, to, fields, now_ms,
                                       self.config.webhook_max_age_s)
        won = await self._db.executions.transition(
            row.id, to, cause, actor=ACTOR, now_ms=now_ms, reason=reason, fields=fields,
            outbox=webhooks,
        )
        if won and webhooks:
            self._outbox_wakeup.poke()
        return won

    async def _terminate(self, row: Execution) -> bool:
        """Stop the child if its runtime still runs it; True only when it did."""
        agent = await self._agent(row.agent)
        client = self._directory.client_for(agent) if agent else None
        if client is None:
            return False
        try:
            async with asyncio.timeout(self._finisher.budget.ack_s):
                answer = await client.terminate(row.id)
        except (AgentError, ExecutionNotFound, TimeoutError) as exc:
            log.warning("reaper: could not terminate %s on %s (%s); the watchdog stops it as a "
                        "stray once its runtime answers", row.id, row.agent,
                        exc if str(exc) else "no answer")
            return False
        return answer.result is TerminateResult.TERMINATED

    async def _agent(self, name: str) -> Agent | None:
        with contextlib.suppress(AgentNotFound):
            return await self._db.agents.get(name)
        return None

    # -- visibility ---------------------------------------------------------------------------

    def _log(self, report: ReaperReport) -> None:
        """One line per pass that ended or took over anything, naming a few of the rows."""
        for name in ("finalized", "result_lost", "backstopped"):
            ids = sorted(getattr(report, name))
            if ids:
                log.warning("reaper: %s pass: %d execution(s) %s: %s%s",
                            "startup" if report.startup else "periodic", len(ids),
                            name.replace("_", " "), ", ".join(ids[:5]),
                            " ..." if len(ids) > 5 else "")

    def _detail(self, report: ReaperReport, plan: Plan, duration_s: float) -> dict[str, object]:
        """The last pass as ``/api/reaper`` shows it: counts by tier, and who was deferred."""
        counts: dict[str, dict[str, int]] = {}
        for name, (tier, action) in COUNTED.items():
            counts.setdefault(tier, {})[action] = len(getattr(report, name))
        ids = {f.name: getattr(report, f.name)[:DETAIL_IDS] for f in fields(report)
               if f.name not in ("startup", "deferred", "faults")}
        deferred = [{"execution_id": d.execution_id, "agent": d.agent, "owner": d.lease_owner,
                     "reason": d.reason}
                    for d in plan.of(Action.DEFER)][:DETAIL_IDS]
        return {
            "at_ms": self._clock.now_ms(), "startup": report.startup,
            "duration_ms": round(duration_s * 1000, 3),
            "finalizer_liveness": self.policy.finalizer_liveness, "counts": counts,
            "lost_race": len(report.lost_race), "faults": report.faults[:DETAIL_IDS],
            "deferred": deferred, "ids": ids,
        }


class _Metrics:
    def __init__(self, telemetry: Telemetry) -> None:
        self._actions = telemetry.counter(
            "shepherd_reaper_actions", "What the reaper did, by tier and action.",
            ["tier", "action"])
        self._defers = telemetry.counter(
            "shepherd_reaper_defers",
            "Finalizing rows past their grace left to the live finalizer holding their lease.")
        self._faults = telemetry.counter(
            "shepherd_reaper_row_faults", "Rows or agents whose judging or handling raised.")

    def count(self, report: ReaperReport) -> None:
        for name, (tier, action) in COUNTED.items():
            done = len(getattr(report, name))
            if done:
                self._actions.labels(tier=tier, action=action).inc(done)
        if report.deferred:
            self._defers.inc(len(report.deferred))
        if report.faults:
            self._faults.inc(len(report.faults))
