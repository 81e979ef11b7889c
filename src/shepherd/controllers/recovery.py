"""Carrying out the watchdog's row decisions, each a side effect gated on a CAS or a terminate.

- TIME_OUT: terminate on the agent; only when the runtime says it terminated the child, CAS
  ``running -> failed`` (cause ``timed_out``) and release the slot. A terminate that fails leaves
  the row for the next cycle (and the reaper's backstop); ``already_finished`` leaves it to the
  monitor, because a run that finished must never be failed.
- HAND_OVER: ``running -> finalizing`` (``controllers.exits``) and wake the finalizer.
- ORPHAN, LOSE: CAS ``running -> failed`` with the cause, the next attempt queued in the same
  transaction when the policy grants one, then release-if-matches.
- STRAY: terminate on the agent; a note event on the row when it has one. A run the runtime
  reports finished, or no longer knows, by the time of the call is left alone
  (``finished_meanwhile``): a quick run can start after the cycle's SQL read and end before its
  statuses read, and look like a stray without being one.

Every write is a CAS whose loser does nothing more; every event has actor ``watchdog`` and the
decision's reason. Must not: decide anything (``core.watchdog`` did) or catch what it cannot
handle (``controllers.cycle.run_each`` isolates it per row).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shepherd.agent_client.protocol import TerminateResult
from shepherd.controllers.base import Wakeup
from shepherd.controllers.directory import AgentDirectory
from shepherd.controllers.exits import Exit, settle_exit
from shepherd.core.clock import Clock
from shepherd.core.models import TransitionFields
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.watchdog import Action, RowDecision
from shepherd.errors import AgentError, AgentNotFound, ExecutionNotFound
from shepherd.stores.redis.connection import RedisHandle
from shepherd.stores.sql.database import Database

log = logging.getLogger("shepherd.controllers.watchdog")
ACTOR = "watchdog"

# The causes and error classes of the decisions that fail a row.
FAILING: dict[Action, tuple[Cause, str]] = {
    Action.TIME_OUT: (Cause.TIMED_OUT, "timed_out"),
    Action.ORPHAN: (Cause.ORPHANED, "orphaned"),
    Action.LOSE: (Cause.AGENT_LOST, "agent_lost"),
}


@dataclass(slots=True)
class Outcomes:
    """What the row actions of one cycle did, by execution id."""

    done: dict[Action, list[str]] = field(default_factory=dict)
    retried: list[str] = field(default_factory=list)
    terminate_failed: list[str] = field(default_factory=list)
    finished_meanwhile: list[str] = field(default_factory=list)
    lost_race: list[str] = field(default_factory=list)  # the CAS found the row moved on
    unclean: set[str] = field(default_factory=set)  # agents with a stray still running

    def record(self, action: Action, execution_id: str) -> None:
        self.done.setdefault(action, []).append(execution_id)


class Recovery:
    def __init__(
        self, db: Database, redis: RedisHandle, directory: AgentDirectory, clock: Clock, *,
        finalizer_wakeup: Wakeup | None = None, dispatch_wakeup: Wakeup | None = None,
    ) -> None:
        self._db = db
        self._redis = redis
        self._directory = directory
        self._clock = clock
        self._finalizer_wakeup = finalizer_wakeup
        self._dispatch_wakeup = dispatch_wakeup

    async def act(self, decision: RowDecision, out: Outcomes) -> None:
        if decision.action is Action.HAND_OVER:
            await self._hand_over(decision, out)
        elif decision.action is Action.STRAY:
            await self._stray(decision, out)
        elif decision.action is Action.TIME_OUT:
            if await self._terminate(decision, out):
                await self._fail(decision, out)
        else:
            await self._fail(decision, out)

    async def _fail(self, decision: RowDecision, out: Outcomes) -> None:
        cause, error_class = FAILING[decision.action]
        won = await self._db.executions.transition(
            decision.execution_id, ExecutionStatus.FAILED, cause, actor=ACTOR,
            now_ms=self._clock.now_ms(), reason=decision.reason,
            fields=TransitionFields(error_class=error_class, error=decision.reason),
            retry=decision.retry,
        )
        if not won:
            out.lost_race.append(decision.execution_id)
            return
        await self._redis.slots.release(decision.agent, decision.execution_id)
        out.record(decision.action, decision.execution_id)
        log.info("watchdog: %s %s on %s: %s", decision.action.value, decision.execution_id,
                 decision.agent, decision.reason)
        if decision.retry is not None:
            out.retried.append(decision.execution_id)
            self._poke(self._dispatch_wakeup)

    async def _hand_over(self, decision: RowDecision, out: Outcomes) -> None:
        run = decision.run
        assert run is not None  # a HAND_OVER always carries the runtime's record
        exit = Exit(decision.agent, run.execution_id, run.finished_at_ms, run.exit_code,
                    run.error_class)
        if await settle_exit(self._db, self._redis, exit, actor=ACTOR,
                             now_ms=self._clock.now_ms(), reason=decision.reason):
            out.record(Action.HAND_OVER, decision.execution_id)
            self._poke(self._finalizer_wakeup)
        else:
            out.lost_race.append(decision.execution_id)

    async def _stray(self, decision: RowDecision, out: Outcomes) -> None:
        if not await self._terminate(decision, out):
            if decision.execution_id not in out.finished_meanwhile:
                out.unclean.add(decision.agent)
            return
        out.record(Action.STRAY, decision.execution_id)
        log.info("watchdog: stray %s on %s: %s", decision.execution_id, decision.agent,
                 decision.reason)
        if decision.status is not None:
            await self._db.executions.note(
                decision.execution_id, Cause.STRAY_TERMINATED, actor=ACTOR,
                now_ms=self._clock.now_ms(), reason=decision.reason,
            )

    async def _terminate(self, decision: RowDecision, out: Outcomes) -> bool:
        """True when the runtime terminated the child; False leaves the row as it is."""
        try:
            agent = await self._db.agents.get(decision.agent)
            client = self._directory.client_for(agent)
            if client is None:
                raise AgentNotFound(f"agent {decision.agent} has no runtime URL")
            answer = await client.terminate(decision.execution_id)
        except (AgentError, AgentNotFound, ExecutionNotFound) as exc:
            if isinstance(exc, ExecutionNotFound) and decision.action is Action.STRAY:
                # Its child ended and its result was acked since the registry was read (a
                # quick run that started after the snapshot's SQL read): nothing to terminate.
                out.finished_meanwhile.append(decision.execution_id)
                return False
            log.warning("watchdog: could not terminate %s on %s: %s", decision.execution_id,
                        decision.agent, exc)
            out.terminate_failed.append(decision.execution_id)
            return False
        if answer.result is TerminateResult.ALREADY_FINISHED:
            # The child ended on its own in the meantime: the monitor settles it (and a stray
            # that ended so was no stray: a quick run seen running just before its row ended).
            out.finished_meanwhile.append(decision.execution_id)
            return False
        return True

    @staticmethod
    def _poke(wakeup: Wakeup | None) -> None:
        if wakeup is not None:
            wakeup.poke()
