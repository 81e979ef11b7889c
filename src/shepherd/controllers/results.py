"""Storing a finished run's result: the terminal write the finalizer and the monitor share.

``ResultWriter.plan`` turns what a runtime recorded (``ExecutionState``) into the one terminal
write of a ``finalizing`` row: the outcome (``core.outcome``), the retry the policy grants
(``core.retry``), the completion webhook (``webhook``), all carried by the same CAS.
``finish_exits`` is the fast path for exits whose ``exited`` event carried the result: a page
of them goes ``running -> finalizing -> success|failed`` in one transaction (two CASes and two
events per row, as the state machine says), then their slots are freed, and the caller acks
them (the monitor, on its next poll: ``ack_results`` for a runtime that takes no acks there).
The result is committed before the ack, as in the finalizer, so a crash in between loses
nothing: the runtime still holds the result and the row is already terminal.

Must not: touch a row the CAS did not give it (a lost chain writes nothing, frees nothing), or
hold up a page for a store fault: a batch the store refuses is left to the per-exit path
(``settle_exit`` then the finalizer), which isolates the row at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from shepherd.agent_client.client import AgentClient
from shepherd.agent_client.protocol import ExecutionState
from shepherd.controllers.base import Wakeup
from shepherd.controllers.exits import Exit, exit_write
from shepherd.controllers.webhook import completion_messages
from shepherd.core.clock import Clock
from shepherd.core.models import Agent, Execution, Leftover, TransitionFields
from shepherd.core.outcome import decide_outcome
from shepherd.core.retry import Attempt, BackoffPolicy, decide_retry
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.writes import StatusWrite, WriteChain
from shepherd.errors import AgentError, StoreError
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.controllers.results")
# Matches the setting's default; ``app`` passes the configured value.
DEFAULT_WEBHOOK_MAX_AGE_S = 86_400


class ResultWriter:
    def __init__(
        self, db: Database, redis: RedisHandle, clock: Clock, *,
        backoff: BackoffPolicy | None = None, webhook_max_age_s: int = DEFAULT_WEBHOOK_MAX_AGE_S,
        outbox_wakeup: Wakeup | None = None,
    ) -> None:
        self._db = db
        self._redis = redis
        self._clock = clock
        self._backoff = backoff or BackoffPolicy()
        self._webhook_max_age_s = webhook_max_age_s
        self.outbox_wakeup = outbox_wakeup or Wakeup()

    def plan(
        self, agent: Agent | None, row: Execution, state: ExecutionState | None, now_ms: int,
        note: str | None = None,
    ) -> StatusWrite:
        """The terminal write for ``row``: from ``state``, or from what SQL recorded of the
        exit when the runtime has no record any more."""
        exit_code = state.exit_code if state else row.exit_code
        input_unread = state.input_unread if state else row.input_unread
        outcome = decide_outcome(
            exit_code, state.error_class if state else row.error_class,
            state.error if state else row.error, agent.success_exit_codes if agent else (0,),
            input_unread=bool(input_unread),
            require_input_read=agent.require_input_read if agent else False,
        )
        attempt = Attempt(row.id, row.attempt, row.max_attempts, row.retry_on_failure)
        retry = (decide_retry(attempt, outcome.error_class, now_ms, self._backoff)
                 if outcome.status is ExecutionStatus.FAILED else None)
        # A quick child's result can be stored before its start was recorded (which then finds
        # the row no longer running): the runtime's record says where and when it ran.
        start = state if state is not None and row.started_at_ms is None else None
        fields = TransitionFields(
            exit_code=exit_code, error_class=outcome.error_class, error=outcome.error,
            output_tail=state.output_tail if state else None,
            finished_at_ms=state.finished_at_ms if state else None,
            input_unread=input_unread, leftovers=_leftovers(state),
            started_at_ms=start.started_at_ms if start else None,
            pid=start.pid if start else None, runtime_boot_id=start.boot_id if start else None,
        )
        return StatusWrite(
            outcome.status, Cause.FINALIZED,
            reason="; ".join(part for part in (note, outcome.error) if part) or None,
            fields=fields, retry=retry,
            outbox=completion_messages(agent, row, outcome.status, fields, now_ms,
                                       self._webhook_max_age_s),
        )

    async def finish_exits(
        self, agent: Agent, results: Sequence[ExecutionState], actor: str,
        freed: Wakeup | None = None, rows: Sequence[Execution] | None = None,
    ) -> set[str]:
        """Settle and finalize ``results`` in one transaction, by ``agent`` as read once their
        page arrived; the ids it took care of (ended now, or already ended), whose results the
        caller acks (committed by now). The others are the per-exit path's. ``freed`` is poked
        as soon as slots were released: the backlog behind them need not wait for the ack.
        ``rows`` are the results' rows when the caller read them already (beside the agent, in
        the same round trip's time)."""
        by_id = {state.execution_id: state for state in results}
        try:
            if rows is None:
                rows = await self._db.executions.find_many(list(by_id))
            now_ms = self._clock.now_ms()
            running = [r for r in rows if r.status is ExecutionStatus.RUNNING]
            chains = [WriteChain(r.id, [exit_write(_exit(agent, by_id[r.id]), now_ms),
                                        self.plan(agent, r, by_id[r.id], now_ms)], r.status)
                      for r in running]
            won = await self._db.executions.write_chains(chains, actor=actor, now_ms=now_ms)
        except StoreError as exc:
            log.info("results: a page of %d exits of %s goes one by one (%s)", len(by_id),
                     agent.name, exc.message)
            return set()
        ended = [c for c, w in zip(chains, won, strict=True) if w]
        await self._redis.slots.release_many(agent.name, [c.execution_id for c in ended])
        if ended and freed is not None:
            freed.poke()
        if any(chain.writes[-1].outbox for chain in ended):
            self.outbox_wakeup.poke()
        done = {c.execution_id for c in ended} | {r.id for r in rows if r.status.is_terminal}
        return done | await self._ended_meanwhile(
            [c.execution_id for c, w in zip(chains, won, strict=True) if not w])

    async def _ended_meanwhile(self, lost: list[str]) -> set[str]:
        """Of the rows whose chain lost, those that ended by another path (cancelled, failed by
        the watchdog) since their reading: their results are acked with the others."""
        if not lost:
            return set()
        try:
            statuses = await self._db.executions.statuses(lost)
        except StoreError as exc:
            log.info("results: could not read what became of %d rows (%s); runtime retention "
                     "covers their results", len(lost), exc.message)
            return set()
        return {eid for eid, status in statuses.items() if status.is_terminal}


async def ack_results(client: AgentClient, agent: str, execution_ids: Sequence[str]) -> None:
    """Tell the runtime to forget stored results; a failure is logged, not raised."""
    if not execution_ids:
        return
    try:
        await client.ack_many(list(execution_ids))
    except AgentError as exc:
        log.info("results: ack of %d results not delivered to %s (%s); runtime retention "
                 "covers it", len(execution_ids), agent, exc)


def _exit(agent: Agent, state: ExecutionState) -> Exit:
    return Exit(agent.name, state.execution_id, state.finished_at_ms, state.exit_code,
                state.error_class)


def _leftovers(state: ExecutionState | None) -> tuple[Leftover, ...] | None:
    return tuple(Leftover(x.pid, x.name) for x in state.leftovers) if state else None
