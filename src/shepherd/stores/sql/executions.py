"""Executions: admission, the status CAS, retries, the dispatcher's claim, and the queries
controllers and the API need.

Guarantees: ``submit`` decides queued-or-skipped (``core.admission``) inside the transaction that
inserts the row, with the agent row locked, so concurrent submitters never push a backlog past
``max_backlog_depth``; every status change goes through ``transition`` (a CAS, see
``transitions.py``); ``record_start`` only touches a row that is still ``running``. A retry is a
new row (attempt + 1, ``retry_of`` the attempt it replaces) that inherits the policy of the row it
replaces; when a transition carries a ``RetryPlan``, the new row is inserted in the same
transaction as the CAS that ended the old one, and only if that CAS won.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shepherd.core.admission import decide_admission
from shepherd.core.clock import Clock
from shepherd.core.ids import ENTROPY_BYTES, AgentName, ExecutionId, ScheduleId, format_execution_id
from shepherd.core.models import Execution, ExecutionEvent, OverlapPolicy, TransitionFields, Trigger
from shepherd.core.outbox import OutboxMessage
from shepherd.core.retry import RetryPlan
from shepherd.core.status import Cause, ExecutionStatus
from shepherd.core.timeouts import resolve_timeout_s
from shepherd.core.writes import StatusWrite, WriteChain
from shepherd.errors import AgentNotFound, ExecutionNotFound, ScheduleNotFound
from shepherd.stores.sql.engine import is_sqlite, one_statement
from shepherd.stores.sql.errors import translated
from shepherd.stores.sql.rows import to_event, to_execution
from shepherd.stores.sql.starts import RuntimeStart, record_starts
from shepherd.stores.sql.tables import agents, execution_events, executions, schedules
from shepherd.stores.sql.transitions import (
    TransitionResult,
    apply_chains,
    write_from_seen,
    write_seen_in,
)
from shepherd.telemetry import Telemetry

S = ExecutionStatus
ACTIVE = (S.QUEUED.value, S.RUNNING.value, S.FINALIZING.value)


@dataclass(frozen=True, slots=True)
class _Policy:
    """What a new row inherits instead of resolving it (a retry keeps its first attempt's)."""

    max_attempts: int
    retry_on_failure: bool


# ``list`` is also a method name below; this alias keeps annotations readable.
ExecutionList = list[Execution]


# Statements of the hot path, built once (building one costs about as much as running it).
_FIND = select(executions).where(executions.c.id == bindparam("id"))
_FIND_MANY = (select(executions).where(executions.c.id.in_(bindparam("ids", expanding=True)))
              .order_by(executions.c.id))
_PEEK = (select(executions)
         .where(executions.c.agent == bindparam("agent"),
                executions.c.status == S.QUEUED.value)
         .order_by(executions.c.queued_at_ms, executions.c.id).limit(bindparam("limit")))
_PEEK_DUE = _PEEK.where(or_(executions.c.not_before_ms.is_(None),
                            executions.c.not_before_ms <= bindparam("now_ms")))


class ExecutionRepository:
    def __init__(
        self, engine: AsyncEngine, clock: Clock, default_timeout_s: int,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._default_timeout_s = default_timeout_s
        telemetry = telemetry or Telemetry()
        self._refusals = telemetry.counter(
            "shepherd_integrity_refusals",
            "Status writes refused because the execution already has a terminal event.",
        )
        self._transitions = telemetry.counter(
            "shepherd_transitions",
            "Status writes this process won, by target status and cause.", ["to", "cause"],
        )

    # -- writes -------------------------------------------------------------------------------

    async def submit(
        self,
        *,
        agent: AgentName,
        input: str,
        trigger: Trigger,
        created_by: str,
        schedule_id: ScheduleId | None = None,
        timeout_s: int | None = None,
    ) -> Execution:
        """A new row, ``queued`` or ``skipped`` with the reason, and its first event."""
        async with translated("submit execution"), self._engine.begin() as conn:
            return await self.submit_in(
                conn, agent=agent, input=input, trigger=trigger, created_by=created_by,
                schedule_id=schedule_id, timeout_s=timeout_s, retry_of=None, attempt=1,
            )

    async def submit_in(
        self,
        conn: AsyncConnection,
        *,
        agent: AgentName,
        input: str,
        trigger: Trigger,
        created_by: str,
        schedule_id: ScheduleId | None,
        timeout_s: int | None,
        retry_of: ExecutionId | None,
        attempt: int,
        inherited: _Policy | None = None,
        not_before_ms: int | None = None,
        reason: str | None = None,
    ) -> Execution:
        now = self._clock.now_ms()
        agent_row = (await conn.execute(
            select(agents).where(agents.c.name == agent, agents.c.deleted_at_ms.is_(None))
            .with_for_update()
        )).mappings().first()
        if agent_row is None:
            raise AgentNotFound(f"agent {agent!r} does not exist")
        terms = await _schedule_terms(conn, schedule_id, missing_ok=retry_of is not None)
        admission = decide_admission(
            backlog_depth=await _count(conn, agent=agent, statuses=(S.QUEUED.value,)),
            max_backlog_depth=agent_row["max_backlog_depth"],
            overlap=terms.overlap,
            active_for_schedule=(
                await _count(conn, schedule_id=schedule_id, statuses=ACTIVE) if schedule_id else 0
            ),
            agent_enabled=bool(agent_row["enabled"]),
        )
        resolved = resolve_timeout_s(
            timeout_s if timeout_s is not None else terms.timeout_s,
            agent_row["execution_timeout_s"], self._default_timeout_s,
        )
        policy = inherited or _Policy(
            terms.max_attempts or agent_row["max_attempts"],
            bool(agent_row["retry_on_failure"] if terms.retry_on_failure is None
                 else terms.retry_on_failure),
        )
        queued = admission.status is S.QUEUED
        execution_id = format_execution_id(now, os.urandom(ENTROPY_BYTES))
        values: dict[str, Any] = {
            "id": execution_id, "agent": agent, "agent_generation": agent_row["generation"],
            "schedule_id": schedule_id,
            "trigger": trigger.value, "input": input, "status": admission.status.value,
            "attempt": attempt, "max_attempts": policy.max_attempts,
            "retry_on_failure": policy.retry_on_failure, "retry_of": retry_of,
            "timeout_s": resolved, "not_before_ms": not_before_ms if queued else None,
            "queued_at_ms": now if queued else None, "completed_at_ms": None if queued else now,
            "error_class": None if queued else "skipped", "error": admission.reason,
            "created_by": created_by, "created_at_ms": now,
        }
        await conn.execute(insert(executions).values(**values))
        await conn.execute(insert(execution_events).values(
            execution_id=execution_id, from_status=None, to_status=admission.status.value,
            cause=Cause.RETRY.value if retry_of else None, actor=created_by,
            reason="; ".join(r for r in (reason, admission.reason) if r) or None, at_ms=now,
        ))
        row = (await conn.execute(select(executions).where(executions.c.id == execution_id))
               ).mappings().one()
        return to_execution(row)

    async def transition(
        self,
        execution_id: str,
        to: ExecutionStatus,
        cause: Cause,
        *,
        actor: str,
        now_ms: int,
        reason: str | None = None,
        fields: TransitionFields | None = None,
        outbox: Sequence[OutboxMessage] = (),
        retry: RetryPlan | None = None,
    ) -> bool:
        """THE status write: a CAS plus its event; True only for the caller that won. The winner
        also enqueues ``outbox`` deliveries and, with ``retry``, queues the next attempt, in the
        same transaction."""
        write = StatusWrite(to, cause, reason, fields or TransitionFields(), outbox, retry)
        [won] = await self.write_chains([WriteChain(execution_id, [write])], actor=actor,
                                        now_ms=now_ms)
        return won

    async def write_chains(
        self, chains: Sequence[WriteChain], *, actor: str, now_ms: int
    ) -> list[bool]:
        """Several executions' status writes, each chain in order and stopping at its first
        lost CAS; True per chain that won every write. One transaction and a few statements for
        a batch (``apply_chains``) is what keeps a burst of exits from paying a commit, and
        three statements, each; on PostgreSQL the chains whose writer read their status
        (``WriteChain.seen``) go first, in one statement and no transaction around it
        (``write_from_seen``), and only the others pay the transaction's round trips; on SQLite
        the hinted rows that a statement can write unread go first in the transaction."""
        done: dict[str, list[TransitionResult]] = {}
        if not is_sqlite(self._engine) and any(c.seen is not None for c in chains):
            async with translated("transition execution"), one_statement(self._engine) as conn:
                done = await write_from_seen(conn, chains, actor=actor, now_ms=now_ms)
        rest = [c for c in chains if c.execution_id not in done]
        if rest:
            async with translated("transition execution"), self._engine.begin() as conn:
                done.update(await self._apply_in(conn, rest, actor=actor, now_ms=now_ms))
        outcomes = [done[c.execution_id] for c in chains]
        for chain, tried in zip(chains, outcomes, strict=True):  # counted once committed
            for write, outcome in zip(chain.writes, tried, strict=False):
                if outcome is TransitionResult.REFUSED:
                    self._refusals.inc()
                elif outcome is TransitionResult.WON:
                    self._transitions.labels(write.to.value, write.cause.value).inc()
        return [all(o is TransitionResult.WON for o in tried) for tried in outcomes]

    async def _apply_in(
        self, conn: AsyncConnection, chains: Sequence[WriteChain], *, actor: str, now_ms: int
    ) -> dict[str, list[TransitionResult]]:
        """``write_chains``' transaction: on SQLite the hinted chains a statement can write
        unread first (``write_seen_in``), then the others (``apply_chains``) and their retries."""
        done: dict[str, list[TransitionResult]] = {}
        if is_sqlite(self._engine) and any(c.seen is not None for c in chains):
            done = await write_seen_in(conn, chains, actor=actor, now_ms=now_ms)
            chains = [c for c in chains if c.execution_id not in done]
        tried_rest = await apply_chains(conn, chains, actor=actor, now_ms=now_ms)
        done.update((c.execution_id, t) for c, t in zip(chains, tried_rest, strict=True))
        for chain, tried in zip(chains, tried_rest, strict=True):
            for write, outcome in zip(chain.writes, tried, strict=False):
                if write.retry is not None and outcome is TransitionResult.WON:
                    old = await _read(conn, chain.execution_id)
                    await self._retry_in(conn, old, actor, write.retry.attempt,
                                         write.retry.not_before_ms, write.retry.reason)
        return done

    async def retry(self, execution_id: str, *, actor: str) -> Execution:
        """A new attempt of ``execution_id`` now (an operator's retry: no policy, no backoff)."""
        async with translated("retry execution"), self._engine.begin() as conn:
            old = await _read(conn, execution_id)
            return await self._retry_in(conn, old, actor, old.attempt + 1, None,
                                        f"retry of {old.id} asked by {actor}")

    async def _retry_in(
        self, conn: AsyncConnection, old: Execution, actor: str, attempt: int,
        not_before_ms: int | None, reason: str,
    ) -> Execution:
        return await self.submit_in(
            conn, agent=old.agent, input=old.input, trigger=Trigger.RETRY, created_by=actor,
            schedule_id=old.schedule_id, timeout_s=old.timeout_s, retry_of=old.id,
            attempt=attempt, inherited=_Policy(old.max_attempts, old.retry_on_failure),
            not_before_ms=not_before_ms, reason=reason,
        )

    async def note(
        self, execution_id: str, cause: Cause, *, actor: str, now_ms: int, reason: str
    ) -> bool:
        """An event that changes nothing (from == to == the current status), e.g. a stray child
        terminated on its runtime; False when there is no such row."""
        async with translated("note on execution"), self._engine.begin() as conn:
            status = await conn.scalar(
                select(executions.c.status).where(executions.c.id == execution_id)
            )
            if status is None:
                return False
            await conn.execute(insert(execution_events).values(
                execution_id=execution_id, from_status=status, to_status=status,
                cause=cause.value, actor=actor, reason=reason, at_ms=now_ms,
            ))
            return True

    async def claim_queued(self, execution_id: str, now_ms: int, actor: str) -> bool:
        """``queued -> running`` for the dispatcher, which already holds the slot."""
        [won] = await self.claim_many([execution_id], now_ms, actor)
        return won

    async def claim_many(self, ids: Sequence[str], now_ms: int, actor: str) -> list[bool]:
        """``queued -> running`` for each of ``ids`` in one transaction (one statement on
        PostgreSQL); True per row won."""
        claim = StatusWrite(S.RUNNING, Cause.DISPATCH,
                            fields=TransitionFields(dispatched_at_ms=now_ms))
        return await self.write_chains([WriteChain(i, [claim], S.QUEUED) for i in ids],
                                       actor=actor, now_ms=now_ms)

    async def record_start(
        self, execution_id: str, *, pid: int | None, started_at_ms: int, boot_id: str
    ) -> bool:
        """Record the runtime's ack on a row that is still running (not a status write)."""
        [recorded] = await self.record_starts([RuntimeStart(execution_id, pid, started_at_ms,
                                                            boot_id)])
        return recorded

    async def record_starts(self, starts: Sequence[RuntimeStart]) -> list[bool]:
        """``record_start`` for several rows at once (``starts.record_starts``); True per row
        still running."""
        return await record_starts(self._engine, starts)

    # -- reads --------------------------------------------------------------------------------

    async def find(self, execution_id: str) -> Execution | None:
        rows = await self._rows(_FIND, {"id": execution_id})
        return to_execution(rows[0]) if rows else None

    async def find_many(self, ids: Sequence[str]) -> ExecutionList:
        """The rows of ``ids`` that exist, in id order."""
        if not ids:
            return []
        return [to_execution(r) for r in await self._rows(_FIND_MANY, {"ids": list(ids)})]

    async def find_by_prefix(
        self, prefix: str, *, agent: AgentName | None = None, limit: int = 2
    ) -> ExecutionList:
        """Up to ``limit`` executions whose id starts with ``prefix`` (hex digits only), oldest
        first; callers resolve a short id with it and refuse an ambiguous one."""
        if not prefix or any(ch not in "0123456789abcdef" for ch in prefix):
            return []
        c = executions.c
        query = select(executions).where(c.id.like(f"{prefix}%"))
        if agent is not None:
            query = query.where(c.agent == agent)
        return [to_execution(r) for r in await self._rows(query.order_by(c.id).limit(limit))]

    async def get(self, execution_id: str) -> Execution:
        found = await self.find(execution_id)
        if found is None:
            raise ExecutionNotFound(f"execution {execution_id!r} does not exist")
        return found

    async def events(self, execution_id: str) -> list[ExecutionEvent]:
        query = (select(execution_events).where(execution_events.c.execution_id == execution_id)
                 .order_by(execution_events.c.id))
        return [to_event(r) for r in await self._rows(query)]

    async def list(
        self,
        *,
        status: ExecutionStatus | None = None,
        agent: AgentName | None = None,
        schedule_id: ScheduleId | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        before_id: ExecutionId | None = None,
        limit: int = 50,
        agent_generation: int | None = None,
    ) -> ExecutionList:
        """Newest first; ``before_id`` is the paging cursor (ids sort by creation time).

        ``agent`` means that agent as it is now: its current generation, unless
        ``agent_generation`` names an earlier one (an agent deleted and re-created under the same
        name does not inherit the old one's history)."""
        c = executions.c
        generation = (
            agent_generation if agent_generation is not None
            else select(agents.c.generation).where(agents.c.name == agent).scalar_subquery()
        )
        conditions = [
            cond for cond in (
                c.status == status.value if status else None,
                c.agent == agent if agent else None,
                c.agent_generation == generation if agent else None,
                c.schedule_id == schedule_id if schedule_id else None,
                c.created_at_ms >= since_ms if since_ms is not None else None,
                c.created_at_ms < until_ms if until_ms is not None else None,
                c.id < before_id if before_id else None,
            ) if cond is not None
        ]
        query = select(executions).where(and_(True, *conditions)).order_by(c.id.desc())
        return [to_execution(r) for r in await self._rows(query.limit(limit))]

    async def peek_queued(self, agent: str, limit: int, now_ms: int | None = None
                          ) -> ExecutionList:
        """The oldest queued rows of ``agent``, in dispatch order; with ``now_ms``, only those
        whose retry backoff (``not_before_ms``) has passed."""
        query = _PEEK if now_ms is None else _PEEK_DUE
        params = {"agent": agent, "limit": limit, "now_ms": now_ms}
        return [to_execution(r) for r in await self._rows(query, params)]

    async def list_by_status(
        self, status: ExecutionStatus, agent: str | None = None
    ) -> ExecutionList:
        c = executions.c
        query = select(executions).where(c.status == status.value)
        if agent is not None:
            query = query.where(c.agent == agent)
        return [to_execution(r) for r in await self._rows(query.order_by(c.id))]

    async def statuses(self, ids: Sequence[str]) -> dict[str, ExecutionStatus]:
        """The status of each id that has a row (absent ids are left out)."""
        if not ids:
            return {}
        c = executions.c
        query = select(c.id, c.status).where(c.id.in_(list(ids)))
        async with translated("read statuses"), one_statement(self._engine) as conn:
            return {eid: S(status) for eid, status in (await conn.execute(query)).all()}

    async def queued_before(self, cutoff_ms: int) -> ExecutionList:
        c = executions.c
        query = select(executions).where(c.status == S.QUEUED.value, c.queued_at_ms < cutoff_ms)
        return [to_execution(r) for r in await self._rows(query.order_by(c.id))]

    async def backlog_depth(self, agent: str) -> int:
        async with translated("count backlog"), one_statement(self._engine) as conn:
            return await _count(conn, agent=agent, statuses=(S.QUEUED.value,))

    async def count_active_for_schedule(self, schedule_id: str) -> int:
        async with translated("count active"), one_statement(self._engine) as conn:
            return await _count(conn, schedule_id=schedule_id, statuses=ACTIVE)

    async def count_by_agent_and_status(self) -> dict[tuple[str, str], int]:
        c = executions.c
        query = select(c.agent, c.status, func.count()).group_by(c.agent, c.status)
        async with translated("count executions"), one_statement(self._engine) as conn:
            return {(a, s): n for a, s, n in (await conn.execute(query)).all()}

    async def _rows(self, query: Any, params: dict[str, Any] | None = None) -> Sequence[Any]:
        async with translated("read executions"), one_statement(self._engine) as conn:
            return (await conn.execute(query, params)).mappings().all()


async def _count(
    conn: AsyncConnection,
    *,
    statuses: tuple[str, ...],
    agent: str | None = None,
    schedule_id: str | None = None,
) -> int:
    c = executions.c
    query = select(func.count()).select_from(executions).where(c.status.in_(statuses))
    if agent is not None:
        query = query.where(c.agent == agent)
    if schedule_id is not None:
        query = query.where(c.schedule_id == schedule_id)
    return int(await conn.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class _ScheduleTerms:
    overlap: OverlapPolicy | None = None
    timeout_s: int | None = None
    max_attempts: int | None = None
    retry_on_failure: bool | None = None


async def _schedule_terms(
    conn: AsyncConnection, schedule_id: ScheduleId | None, missing_ok: bool
) -> _ScheduleTerms:
    """What the schedule says; a retry of a run whose schedule was deleted since still runs."""
    if schedule_id is None:
        return _ScheduleTerms()
    c = schedules.c
    row = (await conn.execute(
        select(c.overlap, c.timeout_s, c.max_attempts, c.retry_on_failure)
        .where(c.id == schedule_id)
    )).first()
    if row is None:
        if missing_ok:
            return _ScheduleTerms()
        raise ScheduleNotFound(f"schedule {schedule_id!r} does not exist")
    return _ScheduleTerms(OverlapPolicy(row[0]), row[1], row[2], row[3])


async def _read(conn: AsyncConnection, execution_id: str) -> Execution:
    row = (await conn.execute(select(executions).where(executions.c.id == execution_id))
           ).mappings().first()
    if row is None:
        raise ExecutionNotFound(f"execution {execution_id!r} does not exist")
    return to_execution(row)
