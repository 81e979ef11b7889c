"""Finalizer: turns ``finalizing`` rows into ``success`` or ``failed``, exactly once.

For each row it holds ``lease:finalize:{eid}`` (with a heartbeat) while it reads the result from
the runtime (exit code, output tail), applies the success criteria (``core.outcome``), CASes
``finalizing -> success|failed`` storing the result, with the completion webhook enqueued in the
outbox by that same transaction, then acks the runtime. It never waits for a webhook receiver: the
outbox sender delivers it (woken by ``outbox_wakeup``). The CAS comes before the ack so a crash in
between never loses a result: the runtime still holds it and the row is already terminal. Every
step is idempotent; a lost CAS means another finalizer already did the work, and this one does
nothing more (and enqueued nothing). A failure the retry policy grants another attempt
(``core.retry``: the runtime restarted under it, or its own failure with ``retry_on_failure``)
queues that attempt in the same transaction as the CAS.

Each completion step has a budget (``core.finalization.CompletionBudget``): a result read or an
ack that takes longer is abandoned for this pass, a store that takes longer counts as a store
fault; so a healthy finalization holds its lease at most the budget's total, and the reaper's
grace (checked against it at startup) never mistakes a slow finalizer for a dead one. ``complete``
is the same finalization for a caller that manages the lease itself: the reaper finalizing a row
on a silent finalizer's behalf, under its own name and asking for the runtime's result (a result
the runtime no longer has is reported, never replaced by what SQL recorded).

Never raise per row: a fault on one row (a store that refuses its result, a bug) is logged with
the execution id and counted (``shepherd_finalizer_row_faults_total``), and the pass goes on with
the other rows. A result the store refuses ``MAX_STORE_ATTEMPTS`` passes in a row is given up: the
row ends ``failed`` (error class ``unstorable_result``) with the store's reason, so it never stays
``finalizing``. Texts from the runtime are made storable by the store (``core.text``), so a NUL in
a child's output is not such a fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from shepherd.agent_client.protocol import ExecutionState
from shepherd.controllers.base import Wakeup
from shepherd.controllers.directory import AgentDirectory
from shepherd.controllers.results import DEFAULT_WEBHOOK_MAX_AGE_S, ResultWriter
from shepherd.core.clock import Clock
from shepherd.core.finalization import DEFAULT_FINALIZE_LEASE_TTL_S, Completion, CompletionBudget
from shepherd.core.models import Agent, Execution, TransitionFields
from shepherd.core.retry import BackoffPolicy
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.writes import WriteChain
from shepherd.errors import AgentError, AgentNotFound, ExecutionNotFound, SqlStoreError, StoreError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.controllers.finalizer")
ACTOR = "finalizer"
# Renewed by the heartbeat while a row is finalized; ``app`` passes the configured value.
LEASE_TTL_MS = round(DEFAULT_FINALIZE_LEASE_TTL_S * 1000)
FINALIZE_CONCURRENCY = 16
# Three passes (about three seconds) tell a result the store will never take from a blip.
MAX_STORE_ATTEMPTS = 3
# The store's reason is kept on the row; enough to say what refused the result.
REASON_CHARS = 500


@dataclass(slots=True)
class FinalizeReport:
    finalized: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    faulted: list[str] = field(default_factory=list)  # raised this pass; logged, retried next
    unstorable: list[str] = field(default_factory=list)  # result refused: ended failed


class Finalizer:
    name = "finalizer"

    def __init__(
        self, db: Database, redis: RedisHandle, directory: AgentDirectory, clock: Clock, *,
        owner: str, outbox_wakeup: Wakeup | None = None,
        webhook_max_age_s: int = DEFAULT_WEBHOOK_MAX_AGE_S, backoff: BackoffPolicy | None = None,
        telemetry: Telemetry | None = None, budget: CompletionBudget | None = None,
        lease_ttl_ms: int = LEASE_TTL_MS,
    ) -> None:
        self.budget = budget or CompletionBudget()
        self._lease_ttl_ms = lease_ttl_ms
        self._db = db
        self._outbox_wakeup = outbox_wakeup or Wakeup()
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self._owner = owner
        # Consecutive passes in which the store refused a row's result, by execution id.
        self._store_faults: dict[str, int] = {}
        self._results = ResultWriter(db, redis, clock, backoff=backoff,
                                     webhook_max_age_s=webhook_max_age_s,
                                     outbox_wakeup=self._outbox_wakeup)
        self._quiet = LogThrottle(log)
        self._row_faults = (telemetry or Telemetry()).counter(
            "shepherd_finalizer_row_faults", "Finalizations of one row that raised in a pass."
        )

    async def run_once(self) -> FinalizeReport:
        report = FinalizeReport()
        rows = await self._db.executions.list_by_status(ExecutionStatus.FINALIZING)
        if not rows:
            return report
        agents = {a.name: a for a in await self._db.agents.list()}
        # Each row waits on its runtime and on SQL; finishing them side by side is what keeps
        # a burst of exits from queueing behind one another. Bounded, to spare both.
        limit = asyncio.Semaphore(FINALIZE_CONCURRENCY)

        async def one(row: Execution) -> None:
            async with limit:
                try:
                    await self.finalize(row, report, agents.get(row.agent))
                except Exception as exc:  # one row's fault never ends the pass for the others
                    self._row_faults.inc()
                    report.faulted.append(row.id)
                    self._log_fault(row.id, exc)

        await asyncio.gather(*(one(row) for row in rows))
        pending = {row.id for row in rows}
        self._store_faults = {k: v for k, v in self._store_faults.items() if k in pending}
        return report

    def _log_fault(self, execution_id: str, exc: Exception) -> None:
        """A store that is down fails every row alike: one line a minute says so. Anything
        else is this row's own fault: logged with its traceback, every time."""
        if isinstance(exc, StoreError):
            self._quiet.log("store", logging.WARNING, "finalizer: %s not finalized this pass, "
                            "a store is unavailable (%s)", execution_id, exc.message)
            return
        log.error("finalizer: %s not finalized this pass: %s: %s", execution_id,
                  type(exc).__name__, exc, exc_info=exc)

    async def finalize(
        self, row: Execution, report: FinalizeReport, agent: Agent | None = None
    ) -> None:
        key = self._redis.keys.finalize_lease(row.id)
        async with self._redis.leases.hold(key, self._owner, self._lease_ttl_ms) as held:
            if not held:
                report.deferred.append(row.id)
                return
            done = await self.complete(row, agent=agent)
        for name in REPORTED[done]:
            getattr(report, name).append(row.id)

    async def complete(
        self, row: Execution, *, agent: Agent | None = None, actor: str = ACTOR,
        note: str | None = None, require_result: bool = False,
    ) -> Completion:
        """Finalize ``row`` now, as ``actor``; the caller holds its finalize lease. ``note``
        leads the event's reason; with ``require_result`` a result the runtime no longer has
        is ``RESULT_GONE`` (nothing written) instead of the exit SQL recorded."""
        if agent is None:
            with contextlib.suppress(AgentNotFound):
                agent = await self._db.agents.get(row.agent)
        try:
            state = await self._fetch(agent, row)
        except ExecutionNotFound:
            if require_result:
                return Completion.RESULT_GONE
            state = None  # the runtime forgot it (acked before, or lost on restart): use SQL
        except (AgentError, TimeoutError) as exc:
            log.info("finalizer: cannot read %s from %s: %s", row.id, row.agent,
                     exc if str(exc) else f"no answer within {self.budget.fetch_s:g} s")
            return Completion.UNREACHABLE  # try again next pass; the reaper is the backstop
        done = await self._store(agent, row, state, actor, note)
        if done is Completion.FINALIZED:
            await self._after(agent, row.id)
        return done

    async def _store(
        self, agent: Agent | None, row: Execution, state: ExecutionState | None, actor: str,
        note: str | None,
    ) -> Completion:
        """Store the result; after ``MAX_STORE_ATTEMPTS`` refusals, end the row failed instead."""
        try:
            async with asyncio.timeout(self.budget.store_s):
                won = await self._complete(agent, row, state, actor, note)
            done = Completion.FINALIZED if won else Completion.LOST
        except Exception as exc:
            attempts = self._store_faults.get(row.id, 0) + 1
            self._store_faults[row.id] = attempts
            fault = _over_budget(exc, self.budget.store_s)
            if attempts < MAX_STORE_ATTEMPTS:
                if fault is exc:
                    raise
                raise fault from exc
            gave_up = await self._give_up(row, fault, actor)
            done = Completion.UNSTORABLE if gave_up else Completion.LOST
        self._store_faults.pop(row.id, None)
        return done

    async def _give_up(self, row: Execution, exc: Exception, actor: str) -> bool:
        reason = f"result could not be stored: {describe_fault(exc)}"[:REASON_CHARS]
        log.error("finalizer: %s ends failed: %s", row.id, reason)
        return await self._db.executions.transition(
            row.id, ExecutionStatus.FAILED, Cause.FINALIZED, actor=actor,
            now_ms=self._clock.now_ms(), reason=reason,
            fields=TransitionFields(error_class="unstorable_result", error=reason),
        )

    async def _fetch(self, agent: Agent | None, row: Execution) -> ExecutionState | None:
        """The runtime's record of the run; raises ``ExecutionNotFound`` when it has none."""
        client = self._directory.client_for(agent) if agent else None
        if client is None:
            return None
        async with asyncio.timeout(self.budget.fetch_s):
            return await client.get(row.id)

    async def _complete(
        self, agent: Agent | None, row: Execution, state: ExecutionState | None, actor: str,
        note: str | None,
    ) -> bool:
        now_ms = self._clock.now_ms()
        write = self._results.plan(agent, row, state, now_ms, note)
        [won] = await self._db.executions.write_chains([WriteChain(row.id, [write], row.status)],
                                                       actor=actor, now_ms=now_ms)
        if won and write.outbox:
            self._outbox_wakeup.poke()
        return won

    async def _after(self, agent: Agent | None, execution_id: str) -> None:
        """After the result (and its webhook) is safe in SQL: ack the runtime."""
        if agent is None:
            return
        client = self._directory.client_for(agent)
        if client is None:
            return
        try:
            async with asyncio.timeout(self.budget.ack_s):
                await client.ack(execution_id)
        except (ExecutionNotFound, AgentError, TimeoutError) as exc:
            log.info("finalizer: ack of %s not delivered (%s); runtime retention covers it",
                     execution_id, exc if str(exc) else f"over {self.budget.ack_s:g} s")


# How each completion is counted in a pass's report.
REPORTED: dict[Completion, tuple[str, ...]] = {
    Completion.FINALIZED: ("finalized",),
    Completion.LOST: ("lost",),
    Completion.UNREACHABLE: ("deferred",),
    Completion.RESULT_GONE: ("deferred",),  # only asked for by the reaper
    Completion.UNSTORABLE: ("unstorable", "finalized"),
}


def _over_budget(exc: Exception, budget_s: float) -> Exception:
    """A store that outlasted its budget is a store fault that says so."""
    if isinstance(exc, TimeoutError):
        return SqlStoreError(f"the store did not finish within its budget ({budget_s:g} s)")
    return exc


def describe_fault(exc: Exception) -> str:
    """The error, with the database driver's own words when the store's message lacks them."""
    said = f"{type(exc).__name__}: {exc}"
    driver = getattr(exc.__cause__, "orig", None)
    return said if driver is None or str(driver) in said else f"{said} ({driver})"
