"""Dispatcher: drains each agent's backlog into its free capacity slots.

Order per execution (DESIGN.md section 4): acquire the slot under the execution id, then CAS
``queued -> running`` (the rows of one agent's pass in one transaction); a lost CAS gives back a
slot this pass acquired. Then POST to the runtime (the rows of a pass in one ``POST /v1/starts``,
one request each to a runtime that predates it):
a runtime that never accepted (unreachable, 5xx) sends the row back to ``queued`` and frees the
slot; a 4xx fails it; a connection dropped mid-request leaves it ``running`` for the monitor to
settle, because the start is idempotent and may have been accepted. Rows queued longer than
``max_queue_age_s`` fail as expired. An agent whose circuit breaker does not admit calls is
skipped before any slot is taken: its backlog stays queued until the circuit closes. A queued
retry waits until its backoff has passed (``not_before_ms``), and nothing is dispatched to an
agent the watchdog fenced (declared lost and not yet reconciled), so a retry never starts beside
the attempt it replaces.

Every pass reads what it needs from Redis in one round trip (``RedisHandle.dispatch_view``:
the epoch, each agent's fence and held slots), then asks ``SlotRecovery.ensure()`` with that
reading whether Redis is still the one the slots were written to; if it lost its data the
slots are rebuilt from SQL before anything is acquired, and every acquire carries the verified
epoch, so a Redis flushed mid-pass refuses it (``STALE_EPOCH``) and the pass stops (``paused``)
instead of overbooking.

With ``hand_over_in_background`` (the control plane's setting) a pass ends once its rows are
claimed: their start requests run beside the next passes, so a slot freed while a runtime is
still answering is claimed at once (``report`` then lists the claims; the starts land in it
as they are answered), and the runtime's answers are written a moment later, together, by a
``StartRecorder`` (none for a run whose result came first). ``stop`` waits for the hand-overs
in flight and writes the answers it holds.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from shepherd.agent_client.breaker import BreakerHook, NullBreaker
from shepherd.agent_client.protocol import StartRequest, StartResponse
from shepherd.controllers.base import AGENTS_REREAD_S
from shepherd.controllers.claimed import ClaimedRows
from shepherd.controllers.directory import AgentDirectory
from shepherd.controllers.dispatch_metrics import DispatchMetrics, DispatchOutcome
from shepherd.controllers.slot_recovery import SlotRecovery
from shepherd.controllers.start_records import RECORD_AFTER_S, StartRecorder
from shepherd.core.clock import Clock
from shepherd.core.models import Agent, Execution, TransitionFields
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.errors import AgentConnectionDropped, AgentError, AgentRejected, StoreError
from shepherd.log_throttle import LogThrottle
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.redis.slots import AcquireResult, SlotRequest
from shepherd.stores.sql.database import Database
from shepherd.stores.sql.starts import RuntimeStart
from shepherd.telemetry import Telemetry

log = logging.getLogger("shepherd.controllers.dispatcher")
ACTOR = "dispatcher"
# How often a pass looks for rows queued past their age: well under any useful age.
EXPIRE_EVERY_MS = 1_000


@dataclass(slots=True)
class DispatchReport:
    """What one pass did. ``claimed`` is in decision order (FIFO per agent); the other lists
    fill as each runtime answers, so their order across concurrent starts is arbitrary."""

    claimed: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # agents whose open circuit kept work queued
    paused: bool = False  # Redis could not be trusted: nothing acquired (see SlotRecovery)


class Dispatcher:
    name = "dispatcher"

    def __init__(
        self,
        db: Database,
        redis: RedisHandle,
        directory: AgentDirectory,
        clock: Clock,
        *,
        max_queue_age_s: int,
        breaker: BreakerHook | None = None,
        recovery: SlotRecovery | None = None,
        telemetry: Telemetry | None = None,
        hand_over_in_background: bool = False,
        claimed: ClaimedRows | None = None,
        record_starts_after_s: float = RECORD_AFTER_S,
    ) -> None:
        self._db = db
        self._claimed = claimed if claimed is not None else ClaimedRows()
        self._starts = StartRecorder(db, self._claimed, record_starts_after_s)
        self._in_background = hand_over_in_background
        self._handing_over: set[asyncio.Task[None]] = set()
        self._in_flight: set[str] = set()  # execution ids whose hand-over has not ended
        self._quiet = LogThrottle(log)
        self._breaker = breaker or NullBreaker()
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self._max_queue_age_ms = max_queue_age_s * 1000
        self._recovery = recovery or SlotRecovery(db, redis, clock)
        self._metrics = DispatchMetrics(telemetry)
        self._next_expire_ms = 0

    async def run_once(self) -> DispatchReport:
        report = DispatchReport()
        await self._expire(report)
        enabled = [a for a in await self._db.agents.recent(AGENTS_REREAD_S)
                   if a.enabled and self._directory.client_for(a) is not None]
        view = await self._redis.dispatch_view([a.name for a in enabled])
        epoch = await self._recovery.ensure(view.epoch)
        if epoch is None:
            report.paused = True
            return report
        # After a rebuild the view's slot counts are stale: each agent's is read again.
        held = view.held if epoch == view.epoch.epoch else {}
        ready = [a for a in enabled if not view.health[a.name].fenced]
        # Agents are independent: one slow runtime must not hold back the others' backlogs.
        await asyncio.gather(*(self._drain(agent, epoch, report, held.get(agent.name))
                               for agent in ready))
        return report

    async def _expire(self, report: DispatchReport) -> None:
        """At most once per ``EXPIRE_EVERY_MS``: a pass per exit must not scan the backlog's
        age each time, and a row a second past its age is just as expired."""
        now = self._clock.now_ms()
        if now < self._next_expire_ms:
            return
        self._next_expire_ms = now + EXPIRE_EVERY_MS
        for row in await self._db.executions.queued_before(now - self._max_queue_age_ms):
            won = await self._db.executions.transition(
                row.id, ExecutionStatus.FAILED, Cause.EXPIRED, actor=ACTOR, now_ms=now,
                reason=f"queued longer than {self._max_queue_age_ms // 1000} s",
                fields=TransitionFields(error_class="expired", error="expired in the backlog"),
            )
            if won:
                report.expired.append(row.id)

    async def _drain(
        self, agent: Agent, epoch: str, report: DispatchReport, held_slots: int | None
    ) -> None:
        if not await self._breaker.admits(agent.name):
            report.held.append(agent.name)
            return
        if held_slots is None:
            held_slots = await self._redis.slots.count(agent.name)
        free = agent.max_parallel_tasks - held_slots
        if free <= 0:
            return
        rows = [row for row in
                await self._db.executions.peek_queued(agent.name, free, self._clock.now_ms())
                # A row its hand-over sends back is queued a moment before its slot goes:
                # claimed then, it would find that slot held and lose it to the release.
                if row.id not in self._in_flight]
        results = await self._redis.slots.acquire_many(
            agent.name, [SlotRequest(row.id, row.timeout_s) for row in rows],
            max_parallel=agent.max_parallel_tasks, now_ms=self._clock.now_ms(), holder=ACTOR,
            epoch=epoch,
        )
        held: list[tuple[Execution, AcquireResult]] = []
        for row, result in zip(rows, results, strict=True):
            if result is AcquireResult.STALE_EPOCH:
                report.paused = True  # Redis lost its data mid-pass: the next pass rebuilds
                break
            if result is AcquireResult.FULL:
                break
            held.append((row, result))
        if held:
            claimed, decided_at_ms = await self._claim(agent, held, report)
            if claimed and self._in_background:
                ids: set[str] = {row.id for row in claimed}
                self._in_flight |= ids
                task = asyncio.create_task(self._dispatch_logged(agent, claimed, decided_at_ms,
                                                                 report))
                self._handing_over.add(task)
                task.add_done_callback(lambda done: self._handed_over(done, ids))
            elif claimed:
                await self._dispatch(agent, claimed, decided_at_ms, report)

    def _handed_over(self, task: asyncio.Task[None], ids: set[str]) -> None:
        self._handing_over.discard(task)
        self._in_flight -= ids

    async def stop(self) -> None:
        """Wait for the hand-overs still in flight (each bounded by the runtime client's
        timeout): a claimed row is started, or sent back, before the process stops."""
        while self._handing_over:
            await asyncio.gather(*self._handing_over, return_exceptions=True)
        await self._starts.stop()

    async def _dispatch_logged(
        self, agent: Agent, rows: list[Execution], decided_at_ms: int, report: DispatchReport
    ) -> None:
        """``_dispatch`` beside the passes that follow it (its starts go to the
        ``StartRecorder``). What it cannot finish (a store that fails to send a refused row
        back) leaves the rows running for the monitor to settle, as a dropped connection
        does."""
        try:
            await self._dispatch(agent, rows, decided_at_ms, report)
        except StoreError as exc:  # one line a minute while a store stays down
            self._quiet.log("store", logging.WARNING, "dispatch of %d row(s) to %s: a store "
                            "failed after the hand-over; the monitor settles them (%s)",
                            len(rows), agent.name, exc.message)
        except Exception:
            log.exception("dispatch of %d row(s) to %s failed after the claim; the monitor "
                          "settles them", len(rows), agent.name)

    async def _claim(
        self, agent: Agent, held: list[tuple[Execution, AcquireResult]], report: DispatchReport
    ) -> tuple[list[Execution], int]:
        """``queued -> running`` for the rows whose slots we hold, in one transaction; a slot
        this pass acquired goes back when its row was lost, or when the claim failed."""
        decided_at_ms = self._clock.now_ms()
        try:
            won = await self._db.executions.claim_many([r.id for r, _ in held], decided_at_ms,
                                                       ACTOR)
        except BaseException:
            await self._redis.slots.release_many(
                agent.name, [r.id for r, result in held if result is AcquireResult.ACQUIRED])
            raise
        claimed, lost = [], []
        for (row, result), was_won in zip(held, won, strict=True):
            if was_won:
                self._metrics.claimed(row, decided_at_ms)
                claimed.append(row)
                report.claimed.append(row.id)
            elif result is AcquireResult.ACQUIRED:
                lost.append(row.id)
        await self._redis.slots.release_many(agent.name, lost)
        self._claimed.claimed(claimed, decided_at_ms)
        return claimed, decided_at_ms

    async def _dispatch(
        self, agent: Agent, rows: list[Execution], decided_at_ms: int, report: DispatchReport
    ) -> None:
        """Hand the claimed rows to the runtime: in one request when there are several and the
        runtime takes batches, else one request each, side by side."""
        if len(rows) > 1:
            outcome = await self._hand_over_batch(agent, rows, report)
            if outcome is not None:
                now_ms = self._clock.now_ms()
                for _ in rows:
                    self._metrics.answered(agent.name, outcome, decided_at_ms, now_ms)
                return
        await asyncio.gather(*(self._start(agent, row, decided_at_ms, report) for row in rows))

    async def _start(
        self, agent: Agent, row: Execution, decided_at_ms: int, report: DispatchReport
    ) -> bool:
        """Hand one claimed row to its runtime; False when the runtime refused it (the row is
        back in the backlog for the next pass)."""
        outcome = await self._hand_over(agent, row, report)
        self._metrics.answered(agent.name, outcome, decided_at_ms, self._clock.now_ms())
        return outcome is not DispatchOutcome.REFUSED

    async def _hand_over(
        self, agent: Agent, row: Execution, report: DispatchReport
    ) -> DispatchOutcome:
        client = self._directory.client_for(agent)
        assert client is not None  # checked by run_once
        try:
            started = await client.start(_request(row))
        except AgentError as exc:
            return await self._not_started(agent, [row], exc, report)
        await self._started([started], report)
        return DispatchOutcome.STARTED

    async def _hand_over_batch(
        self, agent: Agent, rows: list[Execution], report: DispatchReport
    ) -> DispatchOutcome | None:
        """One ``POST /v1/starts`` for ``rows``; None when the runtime predates it (404 on the
        route: nothing was started), so the caller starts them one by one."""
        client = self._directory.client_for(agent)
        assert client is not None  # checked by run_once
        try:
            started = await client.start_many([_request(row) for row in rows])
        except AgentRejected as exc:
            if exc.status_code == 404:
                return None
            return await self._not_started(agent, rows, exc, report)
        except AgentError as exc:
            return await self._not_started(agent, rows, exc, report)
        await self._started(started, report)
        return DispatchOutcome.STARTED

    async def _started(self, started: list[StartResponse], report: DispatchReport) -> None:
        """Record the runtime's answers: at once in the foreground; beside the passes, a moment
        later with the others that came meanwhile (``StartRecorder``)."""
        starts = [RuntimeStart(s.execution_id, s.pid, s.started_at_ms, s.boot_id)
                  for s in started]
        if self._in_background:
            self._starts.add(starts)
        else:
            await self._db.executions.record_starts(starts)
        report.dispatched.extend(s.execution_id for s in started)

    async def _not_started(
        self, agent: Agent, rows: list[Execution], exc: AgentError, report: DispatchReport
    ) -> DispatchOutcome:
        """A dropped connection leaves the rows running for the monitor to settle (the start
        is idempotent and may have been accepted); a 4xx fails them; anything else (unreachable,
        a 5xx) sends them back to the backlog."""
        if isinstance(exc, AgentConnectionDropped):
            log.warning("dispatch of %s to %s dropped mid-flight; monitor settles it",
                        ", ".join(r.id for r in rows), agent.name)
            report.ambiguous.extend(r.id for r in rows)
            return DispatchOutcome.AMBIGUOUS
        rejected = isinstance(exc, AgentRejected)
        cause = Cause.DISPATCH_REJECTED if rejected else Cause.DISPATCH_REFUSED
        for row in rows:
            await self._give_up(agent, row, cause, exc)
        (report.rejected if rejected else report.refused).extend(r.id for r in rows)
        return DispatchOutcome.REJECTED if rejected else DispatchOutcome.REFUSED

    async def _give_up(self, agent: Agent, row: Execution, cause: Cause, exc: Exception) -> None:
        """Back to the backlog (refused) or failed (rejected); the slot goes only if we won."""
        self._claimed.forget(row.id)
        refused = cause is Cause.DISPATCH_REFUSED
        to = ExecutionStatus.QUEUED if refused else ExecutionStatus.FAILED
        fields = (
            TransitionFields(reset_dispatch=True)
            if refused
            else TransitionFields(error_class="dispatch_rejected", error=str(exc))
        )
        won = await self._db.executions.transition(
            row.id, to, cause, actor=ACTOR, now_ms=self._clock.now_ms(), reason=str(exc),
            fields=fields,
        )
        if won:
            await self._redis.slots.release(agent.name, row.id)
        log.info("dispatch of %s to %s %s: %s", row.id, agent.name, cause.value, exc)


def _request(row: Execution) -> StartRequest:
    return StartRequest(execution_id=row.id, input=row.input, timeout_s=row.timeout_s,
                        attempt=row.attempt)
