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
from shepherd.controllers.webhook import completion_messages
from shepherd.core.clock import Clock
from shepherd.core.models import Agent, Execution, Leftover, TransitionFields
from shepherd.core.outcome import decide_outcome
from shepherd.core.retry import Attempt, BackoffPolicy, decide_retry
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.errors import AgentError, AgentNotFound, ExecutionNotFound, StoreError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.controllers.finalizer")
ACTOR = "finalizer"
# Long enough for a result fetch; renewed by the heartbeat meanwhile.
LEASE_TTL_MS = 30_000
FINALIZE_CONCURRENCY = 16
# Matches the setting's default; ``app`` passes the configured value.
DEFAULT_WEBHOOK_MAX_AGE_S = 86_400
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
        telemetry: Telemetry | None = None,
    ) -> None:
        self._backoff = backoff or BackoffPolicy()
        self._db = db
        self._outbox_wakeup = outbox_wakeup or Wakeup()
        self._webhook_max_age_s = webhook_max_age_s
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self._owner = owner
        # Consecutive passes in which the store refused a row's result, by execution id.
        self._store_faults: dict[str, int] = {}
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
        async with self._redis.leases.hold(key, self._owner, LEASE_TTL_MS) as held:
            if not held:
                report.deferred.append(row.id)
                return
            if agent is None:
                with contextlib.suppress(AgentNotFound):
                    agent = await self._db.agents.get(row.agent)
            try:
                state = await self._fetch(agent, row)
            except AgentError as exc:
                log.info("finalizer: cannot read %s from %s: %s", row.id, row.agent, exc)
                report.deferred.append(row.id)  # try again next pass; the reaper is the backstop
                return
            won = await self._store(agent, row, state, report)
            (report.finalized if won else report.lost).append(row.id)
            if won:
                await self._after(agent, row.id)

    async def _store(
        self, agent: Agent | None, row: Execution, state: ExecutionState | None,
        report: FinalizeReport,
    ) -> bool:
        """Store the result; after ``MAX_STORE_ATTEMPTS`` refusals, end the row failed instead."""
        try:
            won = await self._complete(agent, row, state)
        except Exception as exc:
            attempts = self._store_faults.get(row.id, 0) + 1
            self._store_faults[row.id] = attempts
            if attempts < MAX_STORE_ATTEMPTS:
                raise
            report.unstorable.append(row.id)
            won = await self._give_up(row, exc)
        self._store_faults.pop(row.id, None)
        return won

    async def _give_up(self, row: Execution, exc: Exception) -> bool:
        reason = f"result could not be stored: {describe_fault(exc)}"[:REASON_CHARS]
        log.error("finalizer: %s ends failed: %s", row.id, reason)
        return await self._db.executions.transition(
            row.id, ExecutionStatus.FAILED, Cause.FINALIZED, actor=ACTOR,
            now_ms=self._clock.now_ms(), reason=reason,
            fields=TransitionFields(error_class="unstorable_result", error=reason),
        )

    async def _fetch(self, agent: Agent | None, row: Execution) -> ExecutionState | None:
        client = self._directory.client_for(agent) if agent else None
        if client is None:
            return None
        try:
            return await client.get(row.id)
        except ExecutionNotFound:
            return None  # the runtime forgot it (acked before, or lost on restart): use SQL

    async def _complete(
        self, agent: Agent | None, row: Execution, state: ExecutionState | None
    ) -> bool:
        exit_code = state.exit_code if state else row.exit_code
        error_class = state.error_class if state else row.error_class
        error = state.error if state else row.error
        codes = agent.success_exit_codes if agent else (0,)
        input_unread = state.input_unread if state else row.input_unread
        outcome = decide_outcome(
            exit_code, error_class, error, codes, input_unread=bool(input_unread),
            require_input_read=agent.require_input_read if agent else False,
        )
        now_ms = self._clock.now_ms()
        attempt = Attempt(row.id, row.attempt, row.max_attempts, row.retry_on_failure)
        retry = (decide_retry(attempt, outcome.error_class, now_ms, self._backoff)
                 if outcome.status is ExecutionStatus.FAILED else None)
        fields = TransitionFields(
            exit_code=exit_code,
            error_class=outcome.error_class,
            error=outcome.error,
            output_tail=state.output_tail if state else None,
            finished_at_ms=state.finished_at_ms if state else None,
            input_unread=input_unread,
            leftovers=_leftovers(state),
        )
        webhooks = completion_messages(agent, row, outcome.status, fields, now_ms,
                                       self._webhook_max_age_s)
        won = await self._db.executions.transition(
            row.id, outcome.status, Cause.FINALIZED, actor=ACTOR, now_ms=now_ms,
            reason=outcome.error, fields=fields, outbox=webhooks, retry=retry,
        )
        if won and webhooks:
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
            await client.ack(execution_id)
        except (ExecutionNotFound, AgentError) as exc:
            log.info("finalizer: ack of %s not delivered (%s); runtime retention covers it",
                     execution_id, exc)


def _leftovers(state: ExecutionState | None) -> tuple[Leftover, ...] | None:
    return tuple(Leftover(x.pid, x.name) for x in state.leftovers) if state else None


def describe_fault(exc: Exception) -> str:
    """The error, with the database driver's own words when the store's message lacks them."""
    said = f"{type(exc).__name__}: {exc}"
    driver = getattr(exc.__cause__, "orig", None)
    return said if driver is None or str(driver) in said else f"{said} ({driver})"
